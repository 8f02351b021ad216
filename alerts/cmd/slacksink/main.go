// Command slacksink pretends to be Slack's incoming-webhook endpoint so that
// Alertmanager's Slack notifications can be seen without a Slack workspace:
// it answers "ok", prints every message readably on stdout, and lists them as
// JSON at GET /messages. Point Alertmanager's slack_api_url at
// http://127.0.0.1:9095/hooks/glasshouse.
//
// Usage:
//
//	slacksink [-addr 127.0.0.1:9095] [-max 1000] [-quiet]
//
// The listen address also comes from SLACKSINK_ADDR. On start it prints
// "slacksink listening on http://ADDR" (the real port when ADDR ends in :0).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/glasshouse-dev/glasshouse/alerts/slacksink"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "slacksink:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("slacksink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defAddr := "127.0.0.1:9095"
	if v := getenv("SLACKSINK_ADDR"); v != "" {
		defAddr = v
	}
	addr := fs.String("addr", defAddr, "listen address (env SLACKSINK_ADDR)")
	maxMsgs := fs.Int("max", 1000, "messages kept for GET /messages (oldest dropped first)")
	quiet := fs.Bool("quiet", false, "do not print messages on stdout")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see -h)", fs.Args())
	}
	if *maxMsgs < 1 {
		return fmt.Errorf("-max: %d must be at least 1", *maxMsgs)
	}
	out := stdout
	if *quiet {
		out = nil
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           slacksink.New(slacksink.Options{Out: out, Max: *maxMsgs}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
	}
	fmt.Fprintf(stdout, "slacksink listening on http://%s (POST /hooks/..., GET /messages)\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
