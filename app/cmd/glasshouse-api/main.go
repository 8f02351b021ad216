// Command glasshouse-api serves the glasshouse API.
//
//	glasshouse-api [flags]              serve (flags and env: glasshouse-api -h)
//	glasshouse-api health [-url URL]    GET /health/live; exit 0 when it answers 200 (Docker HEALTHCHECK)
//	glasshouse-api import -file F -user NAME [-chunk N] [-concurrency N]
//	                                    create the items of a JSON Lines file for a user, in chunks
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "glasshouse-api: %v\n", err)
		stop()
		os.Exit(1)
	}
}
