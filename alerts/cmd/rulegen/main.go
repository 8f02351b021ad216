// Command rulegen renders alerts/slo.yaml into Prometheus recording and
// burn-rate alerting rules (alerts/generated/slo-rules.yaml). `make rules`
// runs it from the repository root; a test in alerts/ fails when the
// committed output is stale.
//
// With -dir it renders another service's spec into a folder of its own
// (package kit): rules, symptom alerts, promtool tests, runbooks,
// dashboards and load-test thresholds (`make rules SLO=... OUT=...`).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/glasshouse-dev/glasshouse/alerts/kit"
	"github.com/glasshouse-dev/glasshouse/alerts/rules"
	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

func main() {
	if err := run(os.Args, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "rulegen:", err)
		}
		os.Exit(2)
	}
}

// run is the whole command: it reads only its arguments and the files they
// name, so it takes no context, environment or stdin.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rulegen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	specPath := fs.String("spec", "alerts/slo.yaml", "SLO spec to read")
	out := fs.String("out", "alerts/generated/slo-rules.yaml", `rule file to write ("-" for stdout)`)
	dir := fs.String("dir", "", "render the spec's complete set (rules, symptom alerts, promtool tests, runbooks, dashboards, load thresholds) into this folder; -out is then ignored")
	compress := fs.Int("compress", 0, "divide every window and for-duration by N (gameday only; 60 turns minutes into seconds)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: rulegen [flags]\n\nRenders the SLO spec into Prometheus recording and burn-rate alerting rules.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see -h)", fs.Args())
	}
	spec, err := slo.Load(*specPath)
	if err != nil {
		return err
	}
	if *dir != "" {
		if *compress > 1 {
			return errors.New("-compress applies to -out only: a folder holds the real windows its promtool tests check")
		}
		files, err := kit.Render(spec, kit.Options{Source: filepath.ToSlash(*specPath)})
		if err != nil {
			return fmt.Errorf("%s: %w", *specPath, err)
		}
		names, err := kit.Write(*dir, files)
		if err != nil {
			return err
		}
		for _, n := range names {
			fmt.Fprintf(stdout, "wrote %s\n", filepath.ToSlash(n))
		}
		return nil
	}
	b, err := rules.Generate(spec, rules.Options{Compress: *compress, Source: filepath.ToSlash(*specPath)})
	if err != nil {
		return fmt.Errorf("%s: %w", *specPath, err)
	}
	if *out == "-" {
		_, err := stdout.Write(b)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", *out, len(b))
	return nil
}
