// Command dashgen regenerates the committed Grafana dashboards under
// dashboards/json/ from the Go definitions in package dashboards and the SLO
// spec alerts/slo.yaml. Run it from the repository root (`make dashboards`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/glasshouse-dev/glasshouse/alerts/slo"
	"github.com/glasshouse-dev/glasshouse/dashboards"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dashgen:", err)
		os.Exit(1)
	}
}

func run(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dashgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	specPath := fs.String("slo", "alerts/slo.yaml", "SLO spec the SLO dashboard is derived from")
	out := fs.String("out", "dashboards/json", "directory the dashboard JSON files are written to")
	loadtest := fs.Bool("loadtest", true, "also write the load-test dashboard (false for another service's set)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags only: -slo, -out)", fs.Args())
	}
	spec, err := slo.Load(*specPath)
	if err != nil {
		return err
	}
	ds := dashboards.All(spec)
	if !*loadtest {
		ds = dashboards.Service(spec)
	}
	names, err := dashboards.Write(*out, ds)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintf(stdout, "wrote %s/%s\n", *out, n)
	}
	return nil
}
