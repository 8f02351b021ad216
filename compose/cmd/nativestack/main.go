// Command nativestack runs glasshouse's stack without Docker: the API,
// Prometheus, Alertmanager and the Slack sink as local processes on loopback.
// compose/stack.sh calls it when no Docker engine answers (or STACK_MODE=native):
//
//	nativestack [-repo DIR] up|down|status
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
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "nativestack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nativestack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "repository root (holds go.mod, alerts/, compose/)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: nativestack [-repo DIR] up|down|status")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want exactly one command: up, down or status")
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
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q: want up, down or status", cmd)
	}
}
