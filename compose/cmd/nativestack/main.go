// Command nativestack runs glasshouse's stack without Docker: the API,
// Prometheus, Alertmanager and the Slack sink as local processes on loopback.
// compose/stack.sh calls it when no Docker engine answers (or STACK_MODE=native):
//
//	nativestack [-repo DIR] up|down|status
//	nativestack [-repo DIR] load -- glasshouse-load [FLAGS]
//
// load runs the load generator and, while a native stack with Prometheus
// runs, has Prometheus scrape it for exactly as long as it runs (`make load`
// calls it); it exits with the load generator's exit code.
//
// Configuration comes from the environment (STACK_RUN_DIR, STACK_*_PORT,
// PROMETHEUS_BIN, ALERTMANAGER_BIN, SLACK_WEBHOOK_URL; VOLUMES=1 makes down
// delete the data too). See compose/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/glasshouse-dev/glasshouse/compose/internal/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if exit := (*stack.ExitError)(nil); errors.As(err, &exit) {
		os.Exit(exit.Code) // the load generator already said why
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nativestack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nativestack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "repository root (holds go.mod, alerts/, compose/)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nativestack [-repo DIR] up|down|status\n       nativestack [-repo DIR] load -- glasshouse-load [FLAGS]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	load := fs.Arg(0) == "load"
	if !load && fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want exactly one command: up, down, status or load")
	}
	loadCmd := fs.Args()[min(1, fs.NArg()):]
	if len(loadCmd) > 0 && loadCmd[0] == "--" {
		loadCmd = loadCmd[1:]
	}
	if load && len(loadCmd) == 0 {
		fs.Usage()
		return errors.New("load: want the load generator command after --")
	}
	if _, err := os.Stat(*repo + "/go.mod"); err != nil {
		return fmt.Errorf("-repo %s: not the repository root (no go.mod)", *repo)
	}
	cfg, err := stack.FromEnv(*repo, getenv)
	if err != nil {
		return err
	}
	switch cmd := fs.Arg(0); cmd {
	case "up":
		return stack.Up(ctx, cfg, stdout, stderr)
	case "down":
		return stack.Down(ctx, cfg, stdout, getenv("VOLUMES") == "1")
	case "status":
		return stack.Status(cfg, stdout)
	case "load":
		return stack.RunLoad(ctx, cfg, loadCmd, stdout, stderr)
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q: want up, down, status or load", cmd)
	}
}
