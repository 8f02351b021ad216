// Command glasshouse-load runs the glasshouse API's load tests (or a plain
// single-URL load) with the loadtest engine and prints k6's end-of-test
// summary. Its exit codes are k6's: 0 pass, 99 a threshold failed, 104 bad
// configuration, 105 interrupted, 107 setup failed, 108 aborted by the test.
//
//	glasshouse-load -scenario average -target http://127.0.0.1:8080
//	glasshouse-load -url http://127.0.0.1:8080/health/live -rate 5000 -duration 10s
//
// Run glasshouse-load -h for every flag.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/glasshouse-dev/glasshouse/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first interrupt stops the test gracefully; restoring the
		// default handling lets a second one end the process at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "glasshouse-load: %v\n", err)
		os.Exit(loadtest.ExitCode(err))
	}
}
