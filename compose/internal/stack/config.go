// Package stack runs glasshouse's native stack: when no Docker engine answers,
// `make stack-up` starts the API, Prometheus, Alertmanager and the Slack sink
// as local processes on loopback, configured from the same files the compose
// stack mounts, and `make stack-down` stops exactly those processes.
//
// Everything lives under one run directory (default .run/stack): built
// binaries, rendered configs, data, logs and a state file recording each
// process's PID together with its start time, so a PID reused by an unrelated
// process is never signalled.
//
// It imports nothing from the rest of the repository (TestImports); it
// builds and runs the other programs as a user would.
package stack

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
)

// Config says where the native stack lives and which loopback ports it uses.
// FromEnv fills it from the same STACK_* variables compose reads.
type Config struct {
	RepoDir string // repository root (holds go.mod, alerts/, compose/)
	RunDir  string // binaries, configs, data, logs and state; default RepoDir/.run/stack
	Host    string // listen host for every process; loopback only

	APIPort          int
	APIAdminPort     int
	PrometheusPort   int
	AlertmanagerPort int
	SlackSinkPort    int
	LoadPort         int // where `make load` exposes the load generator's metrics

	// PrometheusBin and AlertmanagerBin name the binaries to run; empty means
	// look them up on PATH (Debian: prometheus, prometheus-alertmanager).
	PrometheusBin   string
	AlertmanagerBin string

	// SlackWebhookURL, when set, replaces the local sink as Alertmanager's
	// Slack destination (a real incoming webhook).
	SlackWebhookURL string

	// APIEnv holds extra environment for the API (DATABASE_URL, REDIS_URL,
	// JWT_SECRET, OTEL_* passed through from the caller's environment).
	APIEnv []string
}

// Default ports match the ports compose publishes, so the README has one table.
const (
	DefaultAPIPort          = 8080
	DefaultAPIAdminPort     = 8081
	DefaultPrometheusPort   = 9090
	DefaultAlertmanagerPort = 9093
	DefaultSlackSinkPort    = 9095
	DefaultLoadPort         = 9096
)

// passThrough lists the caller's variables the native API inherits: the
// backing services a user may already run, and OpenTelemetry settings.
var passThrough = []string{
	"DATABASE_URL", "REDIS_URL", "JWT_SECRET", "LOG_LEVEL",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
}

// FromEnv builds a Config for the repository at repoDir from getenv. Every
// problem (a malformed port, a non-loopback host, two services on one port)
// is reported at once.
func FromEnv(repoDir string, getenv func(string) string) (Config, error) {
	abs, err := filepath.Abs(repoDir)
	if err != nil {
		return Config{}, fmt.Errorf("repository directory: %w", err)
	}
	c := Config{
		RepoDir:         abs,
		RunDir:          getenv("STACK_RUN_DIR"),
		Host:            getenv("STACK_HOST"),
		PrometheusBin:   getenv("PROMETHEUS_BIN"),
		AlertmanagerBin: getenv("ALERTMANAGER_BIN"),
		SlackWebhookURL: getenv("SLACK_WEBHOOK_URL"),
	}
	if c.RunDir == "" {
		c.RunDir = filepath.Join(abs, ".run", "stack")
	} else if !filepath.IsAbs(c.RunDir) {
		c.RunDir = filepath.Join(abs, c.RunDir)
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	var errs []error
	if ip := net.ParseIP(c.Host); ip == nil || !ip.IsLoopback() {
		errs = append(errs, fmt.Errorf("STACK_HOST=%q: the native stack listens on a loopback address only (127.0.0.1 or ::1)", c.Host))
	}
	port := func(name string, def int) int {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s=%q: want a TCP port number (1-65535)", name, v))
			return def
		}
		return n
	}
	c.APIPort = port("STACK_API_PORT", DefaultAPIPort)
	c.APIAdminPort = port("STACK_API_ADMIN_PORT", DefaultAPIAdminPort)
	c.PrometheusPort = port("STACK_PROMETHEUS_PORT", DefaultPrometheusPort)
	c.AlertmanagerPort = port("STACK_ALERTMANAGER_PORT", DefaultAlertmanagerPort)
	c.SlackSinkPort = port("STACK_SLACKSINK_PORT", DefaultSlackSinkPort)
	c.LoadPort = port("STACK_LOAD_PORT", DefaultLoadPort)

	seen := map[int]string{}
	for _, p := range []struct {
		name string
		port int
	}{
		{"STACK_API_PORT", c.APIPort},
		{"STACK_API_ADMIN_PORT", c.APIAdminPort},
		{"STACK_PROMETHEUS_PORT", c.PrometheusPort},
		{"STACK_ALERTMANAGER_PORT", c.AlertmanagerPort},
		{"STACK_SLACKSINK_PORT", c.SlackSinkPort},
		{"STACK_LOAD_PORT", c.LoadPort},
	} {
		if other, ok := seen[p.port]; ok {
			errs = append(errs, fmt.Errorf("%s and %s are both %d: each process needs its own port", other, p.name, p.port))
		}
		seen[p.port] = p.name
	}
	for _, k := range passThrough {
		if v := getenv(k); v != "" {
			c.APIEnv = append(c.APIEnv, k+"="+v)
		}
	}
	return c, errors.Join(errs...)
}

// addr returns host:port on the configured loopback host.
func (c Config) addr(port int) string {
	return net.JoinHostPort(c.Host, strconv.Itoa(port))
}

// url returns the http:// URL of port with path appended.
func (c Config) url(port int, path string) string {
	return "http://" + c.addr(port) + path
}

// Paths under the run directory.
func (c Config) binDir() string    { return filepath.Join(c.RunDir, "bin") }
func (c Config) logDir() string    { return filepath.Join(c.RunDir, "logs") }
func (c Config) statePath() string { return filepath.Join(c.RunDir, "stack.json") }
func (c Config) targetsDir() string {
	return filepath.Join(c.RunDir, "prometheus", "targets")
}

// rel shows p relative to the repository when it is inside it, for
// friendlier messages.
func (c Config) rel(p string) string {
	if r, err := filepath.Rel(c.RepoDir, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
