// Package loadtest is a load-testing engine with k6's semantics and output
// formats, for tests written in Go.
//
// A Test is a Go value: named Scenarios, each an executor (how iterations are
// scheduled: SharedIterations, PerVUIterations, ConstantVUs, RampingVUs,
// ConstantArrivalRate, RampingArrivalRate) and an Exec function that runs one
// iteration on a virtual user (*VU). A VU makes HTTP requests through a
// shared keep-alive transport, runs checks and groups, and records custom
// metrics. Samples are aggregated in place into fixed-memory sinks per
// (metric, tag set); percentiles come from a mergeable log-bucketed
// histogram (package histogram), never from stored samples. Thresholds use
// k6's grammar (package threshold), are checked before the run, evaluated
// every two seconds and at the end. Results print as k6's end-of-test summary
// and JSON summary; samples can stream as k6's JSON lines.
//
// Open-model executors never queue: an iteration that finds every VU busy at
// maxVUs is dropped and counted in dropped_iterations. Every HTTP request
// reports both http_req_duration (from the actual send, as k6) and
// http_req_latency (from the intended start, including the generator's
// schedule lag), so a stalled target cannot hide behind a slowed generator.
//
// This package must not import go.k6.io/k6 (AGPL) or anything under app/:
// it reproduces k6's behaviour and formats, not its code.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Exit codes, as k6's.
const (
	ExitThresholdsFailed = 99
	ExitSetupTimeout     = 100
	ExitTeardownTimeout  = 101
	ExitInvalidConfig    = 104
	ExitExternalAbort    = 105
	ExitScriptException  = 107
	ExitScriptAborted    = 108
)

// Test is a whole load test.
type Test struct {
	// Scenarios run concurrently, each from its StartTime. Names must be
	// unique and valid tag values.
	Scenarios []Scenario
	// Thresholds maps a metric selector ("http_req_duration",
	// "http_req_duration{scenario:browse}") to its thresholds.
	Thresholds map[string][]Threshold
	// Metrics declares custom metrics (so thresholds can refer to them).
	Metrics []Metric
	// Setup runs once before the scenarios on a VU with ID 0; its result is
	// every VU's Data(). An error aborts the test (exit code 107).
	Setup func(ctx context.Context, vu *VU) (any, error)
	// Teardown runs once after the scenarios (also after an abort) with
	// Setup's data.
	Teardown func(ctx context.Context, vu *VU, data any) error
	// Options tune the run.
	Options Options
}

// Options tune a run. The zero value gives k6's defaults.
type Options struct {
	// Tags are added to every sample (k6's global tags).
	Tags map[string]string
	// UserAgent of every request; default "glasshouse-load/1 (k6-compatible)".
	UserAgent string
	// HTTPTimeout limits each request; default 60s (as k6).
	HTTPTimeout time.Duration
	// ResponseCallback decides which statuses are expected (not failed) for
	// http_req_failed and the expected_response tag; default 200..399.
	ResponseCallback func(status int) bool
	// DiscardResponseBodies reads and counts bodies without keeping them.
	DiscardResponseBodies bool
	// NoConnectionReuse disables keep-alive.
	NoConnectionReuse bool
	// InsecureSkipTLSVerify accepts any server certificate (k6's
	// insecureSkipTLSVerify), e.g. a test server's self-signed one.
	InsecureSkipTLSVerify bool
	// NoHTTPPhases skips the per-request trace: http_req_blocked,
	// connecting, tls_handshaking, sending, waiting and receiving are not
	// recorded, http_req_duration then spans the whole round trip, and
	// data_sent/data_received are recorded once a second without request
	// tags. It saves about a microsecond per request.
	NoHTTPPhases bool
	// SummaryTrendStats are the trend columns of the summary; default avg,
	// min, med, max, p(90), p(95), p(99) (k6's plus p(99), the tail SLOs
	// are written against).
	SummaryTrendStats []string
	// SetupTimeout and TeardownTimeout default to 60s (as k6).
	SetupTimeout, TeardownTimeout time.Duration
	// OnResponse, when set, is called after every HTTP response's metrics
	// are recorded (for example to add an SLO metric); it runs on the VU's
	// goroutine.
	OnResponse func(vu *VU, res *Response)
	// CoarseSchedule makes arrival-rate executors wait on Go's timers
	// alone. By default the engine also arms a kernel timer for each
	// arrival (Linux), so an idle generator starts iterations within tens
	// of microseconds of their intended start; Go's timers alone wake an
	// idle process up to a millisecond late (schedule_lag), but once a
	// millisecond instead of once per arrival, which costs less CPU at
	// thousands of iterations per second.
	CoarseSchedule bool
	// MaxSeries caps how many distinct tag sets one metric may hold
	// (default 10,000): beyond it new tag sets are folded into one with
	// url="[overflow]" and a warning is logged once, so memory stays flat.
	MaxSeries int
}

// Scenario is one workload of a Test.
type Scenario struct {
	// Name identifies the scenario in tags (scenario=Name) and output.
	Name string
	// Executor schedules the iterations.
	Executor Executor
	// Exec runs one iteration. A returned error is logged (rate-limited)
	// and the iteration counts as interrupted; an error wrapping ErrAbort
	// stops the whole test (exit code 108).
	Exec func(ctx context.Context, vu *VU) error
	// StartTime delays the scenario from the test's start.
	StartTime time.Duration
	// GracefulStop is how long running iterations may finish after the
	// scenario's end before they are interrupted. Zero means k6's default,
	// 30s; use NoGrace for none.
	GracefulStop time.Duration
	// Tags are added to every sample of the scenario.
	Tags map[string]string
}

// NoGrace, as a GracefulStop or GracefulRampDown, interrupts running
// iterations immediately.
const NoGrace time.Duration = -1

func graceOr(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return 30 * time.Second
	case d < 0:
		return 0
	}
	return d
}

// Threshold is one pass/fail criterion on a metric: an expression in k6's
// grammar ("p(95)<300", "rate<0.01"), with k6's abortOnFail and
// delayAbortEval.
type Threshold struct {
	Expr string
	// AbortOnFail stops the test as soon as the threshold fails during the
	// run (exit code 99), but not before DelayAbortEval has elapsed.
	AbortOnFail    bool
	DelayAbortEval time.Duration
}

// T is shorthand for Threshold{Expr: expr}.
func T(expr string) Threshold { return Threshold{Expr: expr} }

// ErrAbort, wrapped in an iteration's or Setup's error, stops the test
// (k6's exec.test.abort(); exit code 108).
var ErrAbort = errors.New("test aborted")

// Abort returns an error that stops the test with reason.
func Abort(reason string) error { return fmt.Errorf("%w: %s", ErrAbort, reason) }

// ConfigError is an invalid Test; Run returns it before starting anything.
type ConfigError struct{ Err error }

// Error lists every problem, one per line.
func (e *ConfigError) Error() string { return "invalid load test: " + e.Err.Error() }

// Unwrap returns the joined problems.
func (e *ConfigError) Unwrap() error { return e.Err }

// ErrThresholdsFailed is returned (wrapped) by Run when a threshold failed.
var ErrThresholdsFailed = errors.New("thresholds failed")

// ErrExternalAbort is returned (wrapped) by Run when its context was
// cancelled before the test finished.
var ErrExternalAbort = errors.New("test interrupted")

// ErrSetup is returned (wrapped) by Run when Setup failed.
var ErrSetup = errors.New("setup failed")

// ExitCode maps an error returned by Run to k6's process exit code: 0 for
// nil, 99 thresholds, 100/101 setup/teardown timeout, 104 invalid
// configuration, 105 external abort, 107 setup error, 108 test aborted, 1
// otherwise.
func ExitCode(err error) int {
	var ce *ConfigError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ce):
		return ExitInvalidConfig
	case errors.Is(err, ErrAbort):
		return ExitScriptAborted
	case errors.Is(err, ErrThresholdsFailed):
		return ExitThresholdsFailed
	case errors.Is(err, ErrExternalAbort):
		return ExitExternalAbort
	case errors.Is(err, errSetupTimeout):
		return ExitSetupTimeout
	case errors.Is(err, errTeardownTimeout):
		return ExitTeardownTimeout
	case errors.Is(err, ErrSetup):
		return ExitScriptException
	}
	return 1
}

var (
	errSetupTimeout    = errors.New("setup timed out")
	errTeardownTimeout = errors.New("teardown timed out")
)

// RunOptions say where a run's outputs go. The zero value prints nothing.
type RunOptions struct {
	// Log receives warnings and errors (rate-limited), one per line.
	Log io.Writer
	// Progress receives the live one-line progress display (use a terminal;
	// leave nil in CI).
	Progress io.Writer
	// JSON receives every sample as k6's JSON lines (--out json).
	JSON io.Writer
	// Timeline records Result.Timeline: request rate, VUs, latency
	// quantiles, failures, drops and schedule lag once a second (for the
	// HTML report).
	Timeline bool
}
