package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LoadJob is the Prometheus job that scrapes the load generator; compose
// finds it by DNS, the native stack by a file RunLoad writes.
const LoadJob = "glasshouse-load"

// ExitError reports that the command RunLoad ran exited with Code, so the
// caller can exit with the same code (a load test whose thresholds fail
// exits non-zero on purpose).
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// RunLoad runs the load generator command args (glasshouse-load and its
// flags) and, while it runs, makes the native stack's Prometheus scrape it.
// When a native stack with Prometheus is running, it serves the generator's
// metrics (-prometheus, at the native load address unless args say
// otherwise), writes a file-based discovery target naming that address
// before the command starts, and removes it when the command ends, whatever
// the outcome; so Prometheus has a glasshouse-load target only during a load
// and shows none, rather than a down one, in between. Without a running
// native stack it runs args unchanged. Notes go to stderr. A command that
// exits non-zero is reported as *ExitError. When ctx is cancelled (Ctrl-C),
// the command is sent SIGINT and waited for, so it can print its summary;
// every further interrupt is passed on too.
func RunLoad(ctx context.Context, c Config, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("load: no command to run")
	}
	st, err := loadState(c.statePath())
	if err != nil {
		return err
	}
	scraped := false
	for _, p := range st.running() {
		scraped = scraped || p.Name == "prometheus"
	}
	var target string
	if scraped {
		args, target = loadArgs(args, c)
		if target == "" {
			fmt.Fprintf(stderr, "native stack: the load generator's metrics are off (-prometheus=false): Prometheus will not scrape this run\n")
			scraped = false
		}
	}
	if scraped {
		remove, path, err := writeTarget(c.targetsDir(), target)
		if err != nil {
			return err
		}
		defer remove()
		fmt.Fprintf(stderr, "native stack: Prometheus scrapes this load at %s while it runs (target file %s)\n", target, c.rel(path))
	}

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// In its own process group the command does not get the terminal's
	// Ctrl-C as well as the one passed on below: glasshouse-load stops
	// gracefully on the first interrupt and at once on a second.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		more := make(chan os.Signal, 1)
		signal.Notify(more, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(more)
		_ = cmd.Process.Signal(os.Interrupt)
	wait:
		for {
			select {
			case err = <-done:
				break wait
			case sig := <-more:
				_ = cmd.Process.Signal(sig)
			}
		}
	}
	if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
		code := exit.ExitCode()
		if code < 0 { // killed by a signal
			code = 1
		}
		return &ExitError{Code: code}
	}
	return err
}

// loadArgs returns args with the flags that make glasshouse-load serve its
// metrics where the native Prometheus looks, and the address to scrape
// ("" when args switch the endpoint off). Flags already in args win: only the
// missing ones are added, right after the program name.
func loadArgs(args []string, c Config) ([]string, string) {
	on, hasOn, addr, hasAddr := true, false, "", false
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "prometheus":
			hasOn = true
			if hasVal {
				b, err := strconv.ParseBool(val)
				on = err != nil || b // a bad value is glasshouse-load's to report
			} else {
				on = true
			}
		case "prometheus-addr":
			hasAddr = true
			if hasVal {
				addr = val
			} else if i+1 < len(args) {
				addr = args[i+1]
				i++
			}
		}
	}
	if hasOn && !on {
		return args, ""
	}
	var extra []string
	if !hasOn {
		extra = append(extra, "-prometheus")
	}
	if !hasAddr {
		addr = c.addr(c.LoadPort)
		extra = append(extra, "-prometheus-addr="+addr)
	}
	out := append([]string{args[0]}, extra...)
	out = append(out, args[1:]...)
	return out, scrapeAddr(addr, c.Host)
}

// scrapeAddr turns a listen address into one Prometheus can scrape: a
// wildcard or empty host becomes the stack's loopback host.
func scrapeAddr(listen, host string) string {
	h, p, err := net.SplitHostPort(listen)
	if err != nil {
		return listen // glasshouse-load rejects it and exits
	}
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		h = host
	}
	return net.JoinHostPort(h, p)
}

// writeTarget writes a file-based discovery file naming target under
// dir/LoadJob, atomically (Prometheus watches the directory), and returns a
// function that removes it. Each run has its own file, so two loads at once
// do not remove each other's target.
func writeTarget(dir, target string) (func(), string, error) {
	jobDir := filepath.Join(dir, LoadJob)
	if err := os.MkdirAll(jobDir, 0o755); err != nil {
		return nil, "", fmt.Errorf("load target: %w", err)
	}
	b, err := json.Marshal([]map[string]any{{"targets": []string{target}}})
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(jobDir, fmt.Sprintf("load-%d.json", os.Getpid()))
	tmp := path + ".tmp" // not *.json: Prometheus never reads a half-written file
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return nil, "", fmt.Errorf("load target: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, "", fmt.Errorf("load target: %w", err)
	}
	return func() { _ = os.Remove(path) }, path, nil
}
