// Package errtrack counts, groups and reports the API's server errors: every
// 5xx and recovered panic increments app_errors_total{route,error_type}, is
// grouped by a fingerprint (its error type and top stack frames), and the
// first occurrence of a fingerprint, then at most one per fingerprint per
// Options.Interval, is posted to a Slack incoming webhook. With a Sentry DSN
// every error and panic is also sent to Sentry, tagged with its trace ID.
//
// Reporting never blocks a request: webhook posts wait in a bounded queue
// served by one goroutine, and a full queue drops the alert (counted in
// app_error_alerts_total{result="dropped"}); Sentry's SDK has its own
// bounded asynchronous transport.
//
// It imports the Prometheus client, the Sentry SDK and the standard
// library; never app or an adapter (TestImports).
package errtrack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/getsentry/sentry-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Error types: the only values of app_errors_total's error_type label.
const (
	TypeInternal    = "internal"    // an unexpected error answered 500
	TypeUnavailable = "unavailable" // a dependency failed; answered 503
	TypeTimeout     = "timeout"     // a dependency call ran out of time; answered 503
	TypePanic       = "panic"       // a recovered handler panic; answered 500
)

var errorTypes = map[string]bool{TypeInternal: true, TypeUnavailable: true, TypeTimeout: true, TypePanic: true}

// Defaults for Options.
const (
	DefaultInterval  = 10 * time.Minute
	DefaultQueueSize = 64
	// topFrames is how many stack frames, innermost first, a fingerprint
	// covers: enough to tell call sites apart, few enough that a change
	// far up the stack does not split a group.
	topFrames = 5
	// maxFingerprints bounds the per-fingerprint alert state; past it,
	// state older than Interval is forgotten first.
	maxFingerprints = 10000
)

// Options configures New. Registry is required; the rest is optional.
type Options struct {
	// Registry receives the tracker's metrics (telemetry's tel.Registry).
	Registry prometheus.Registerer
	// Logger logs failed webhook posts; nil discards them.
	Logger *slog.Logger
	// WebhookURL is a Slack incoming-webhook URL; empty posts nothing.
	WebhookURL string
	// Interval is the least time between two alerts for one fingerprint;
	// default DefaultInterval.
	Interval time.Duration
	// QueueSize bounds the alerts waiting to be posted; default
	// DefaultQueueSize.
	QueueSize int
	// Client posts the webhook; default a client with a 10 s timeout.
	Client *http.Client
	// Service names the sender in alerts (default "glasshouse-api").
	Service string
	// SentryDSN, when set, sends every error and panic to Sentry too.
	SentryDSN string
	// Environment and Release tag Sentry events.
	Environment, Release string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Event is one server error as the HTTP layer saw it. Route must be a route
// template, ErrorType one of the Type constants (anything else is counted
// as TypeInternal).
type Event struct {
	Route     string
	ErrorType string
	Err       error // what went wrong; for a panic, the panic value as an error
	RequestID string
	TraceID   string
	// Stack is the program counters of the failing call, innermost first
	// (runtime.Callers); for a panic, taken in the deferred recover, so it
	// holds the panicking frames.
	Stack []uintptr
}

// Tracker counts and reports server errors. Its methods are safe for
// concurrent use; a nil *Tracker does nothing.
type Tracker struct {
	opts    Options
	errors  *prometheus.CounterVec
	alerts  *prometheus.CounterVec
	queue   chan alert
	done    chan struct{}
	sentry  *sentry.Client
	closing sync.Once

	mu     sync.Mutex
	seen   map[string]*group // by fingerprint
	closed bool              // queue closed: Report queues nothing more
}

// group is the alert state of one fingerprint.
type group struct {
	lastAlert  time.Time
	suppressed int // occurrences since lastAlert that were not alerted
}

type alert struct {
	ev          Event
	fingerprint string
	suppressed  int
	at          time.Time
}

// New returns a Tracker and starts its webhook sender. Close stops it.
func New(o Options) (*Tracker, error) {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Service == "" {
		o.Service = "glasshouse-api"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	reg := promauto.With(o.Registry)
	t := &Tracker{
		opts: o,
		errors: reg.NewCounterVec(prometheus.CounterOpts{Name: "app_errors_total",
			Help: "Server errors (5xx answers and recovered panics) by route template and error type (internal, unavailable, timeout, panic)."},
			[]string{"route", "error_type"}),
		alerts: reg.NewCounterVec(prometheus.CounterOpts{Name: "app_error_alerts_total",
			Help: "Error alerts for the webhook: sent, failed (the webhook did not answer 2xx) or dropped (the queue was full)."},
			[]string{"result"}),
		queue: make(chan alert, o.QueueSize),
		done:  make(chan struct{}),
		seen:  map[string]*group{},
	}
	for _, r := range []string{"sent", "failed", "dropped"} {
		t.alerts.WithLabelValues(r)
	}
	if o.SentryDSN != "" {
		// The classic HTTP transport: a bounded queue (events past it are
		// dropped) and a Flush that waits for every event captured before
		// it, which the newer telemetry buffer did not always do in tests.
		c, err := sentry.NewClient(sentry.ClientOptions{Dsn: o.SentryDSN, AttachStacktrace: true,
			Environment: o.Environment, Release: o.Release, DisableTelemetryBuffer: true})
		if err != nil {
			return nil, fmt.Errorf("sentry: %w", err)
		}
		t.sentry = c
	}
	go t.send()
	return t, nil
}

// Report counts ev, sends it to Sentry when configured, and queues a
// webhook alert for its fingerprint's first occurrence or the first after
// Interval. It never blocks.
func (t *Tracker) Report(ev Event) {
	if t == nil {
		return
	}
	if !errorTypes[ev.ErrorType] {
		ev.ErrorType = TypeInternal
	}
	if ev.Err == nil {
		ev.Err = errors.New("unknown error")
	}
	t.errors.WithLabelValues(ev.Route, ev.ErrorType).Inc()
	fp := Fingerprint(ev.ErrorType, ev.Stack)
	if t.sentry != nil {
		t.toSentry(ev, fp)
	}
	if t.opts.WebhookURL == "" {
		return
	}
	now := t.opts.Now()
	a, ok := t.due(fp, now)
	if !ok {
		return
	}
	a.ev = ev
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	select {
	case t.queue <- a:
	default:
		t.alerts.WithLabelValues("dropped").Inc()
	}
}

// due reports whether fingerprint fp should alert now, and the alert with
// the count of occurrences it stands for.
func (t *Tracker) due(fp string, now time.Time) (alert, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.seen[fp]
	if g == nil {
		if len(t.seen) >= maxFingerprints {
			for k, old := range t.seen {
				if now.Sub(old.lastAlert) >= t.opts.Interval {
					delete(t.seen, k)
				}
			}
			if len(t.seen) >= maxFingerprints {
				return alert{}, false // as many live groups as we keep: already alerting
			}
		}
		g = &group{lastAlert: now}
		t.seen[fp] = g
		return alert{fingerprint: fp, at: now}, true
	}
	if now.Sub(g.lastAlert) < t.opts.Interval {
		g.suppressed++
		return alert{}, false
	}
	a := alert{fingerprint: fp, suppressed: g.suppressed, at: now}
	g.lastAlert, g.suppressed = now, 0
	return a, true
}

// Fingerprint groups errors: the error type and the function and line of
// the top stack frames, skipping the Go runtime's and this package's. The
// error message is left out, so one bug with varying messages is one group.
func Fingerprint(errorType string, stack []uintptr) string {
	h := sha256.New()
	h.Write([]byte(errorType))
	n := 0
	for _, f := range Frames(stack) {
		if n == topFrames {
			break
		}
		fmt.Fprintf(h, "\n%s:%d", f.Function, f.Line)
		n++
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Frames are stack's frames, innermost first, without the Go runtime's
// (the panic machinery) and this package's.
func Frames(stack []uintptr) []runtime.Frame {
	var out []runtime.Frame
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		if f.Function != "" && !strings.HasPrefix(f.Function, "runtime.") &&
			!strings.HasPrefix(f.Function, "github.com/glasshouse-dev/glasshouse/app/errtrack.") {
			out = append(out, f)
		}
		if !more {
			return out
		}
	}
}

// Callers returns the program counters of the function calling it and its
// callers, innermost first, leaving out the skip innermost: the Stack of an
// Event. Callers(0) starts at the caller; Callers(1) at the caller's caller.
func Callers(skip int) []uintptr {
	pcs := make([]uintptr, 32)
	return pcs[:runtime.Callers(skip+2, pcs)]
}

func (t *Tracker) toSentry(ev Event, fp string) {
	scope := sentry.NewScope()
	scope.SetTags(map[string]string{"route": ev.Route, "error_type": ev.ErrorType, "fingerprint": fp})
	if ev.TraceID != "" {
		scope.SetTag("trace_id", ev.TraceID)
	}
	if ev.RequestID != "" {
		scope.SetTag("request_id", ev.RequestID)
	}
	scope.SetFingerprint([]string{ev.ErrorType, fp})
	event := t.sentry.EventFromException(ev.Err, sentry.LevelError)
	if ev.ErrorType == TypePanic {
		event.Level = sentry.LevelFatal
	}
	if st := sentryStack(ev.Stack); st != nil && len(event.Exception) > 0 {
		event.Exception[len(event.Exception)-1].Stacktrace = st
	}
	t.sentry.CaptureEvent(event, nil, scope) // queued by the SDK's transport
}

// sentryStack is stack in Sentry's order (outermost first).
func sentryStack(stack []uintptr) *sentry.Stacktrace {
	frames := Frames(stack)
	if len(frames) == 0 {
		return nil
	}
	st := &sentry.Stacktrace{}
	for i := len(frames) - 1; i >= 0; i-- {
		f := frames[i]
		st.Frames = append(st.Frames, sentry.NewFrame(f))
	}
	return st
}

// send posts queued alerts one at a time until Close.
func (t *Tracker) send() {
	defer close(t.done)
	for a := range t.queue {
		if err := t.post(a); err != nil {
			t.alerts.WithLabelValues("failed").Inc()
			t.opts.Logger.LogAttrs(context.Background(), slog.LevelWarn, "error alert not delivered",
				slog.String("fingerprint", a.fingerprint), slog.String("err", err.Error()))
			continue
		}
		t.alerts.WithLabelValues("sent").Inc()
	}
}

// slackMessage is a Slack incoming-webhook body: text for notifications,
// one attachment with the details.
type slackMessage struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Color  string       `json:"color"`
	Title  string       `json:"title"`
	Text   string       `json:"text"`
	Fields []slackField `json:"fields"`
	Footer string       `json:"footer"`
	TS     int64        `json:"ts"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

func (t *Tracker) post(a alert) error {
	ev := a.ev
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fields := []slackField{
		{"route", dash(ev.Route), true},
		{"error_type", ev.ErrorType, true},
		{"request_id", dash(ev.RequestID), true},
		{"trace_id", dash(ev.TraceID), true},
		{"fingerprint", a.fingerprint, true},
	}
	if a.suppressed > 0 {
		fields = append(fields, slackField{"since the last alert", strconv.Itoa(a.suppressed) + " more, not alerted", true})
	}
	msg := slackMessage{
		Text: fmt.Sprintf("%s: %s on %s", t.opts.Service, ev.ErrorType, dash(ev.Route)),
		Attachments: []slackAttachment{{
			Color: "danger", Title: fmt.Sprintf("[%s] %s", ev.ErrorType, dash(ev.Route)),
			Text: truncate(ev.Err.Error(), 1000), Fields: fields,
			Footer: fmt.Sprintf("%s; at most one alert per fingerprint per %s", t.opts.Service, t.opts.Interval),
			TS:     a.at.Unix(),
		}},
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	resp, err := t.opts.Client.Post(t.opts.WebhookURL, "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post alert: %w", redactURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post alert: webhook answered %s", resp.Status)
	}
	return nil
}

// redactURL drops the URL from a client error: a webhook URL is a secret.
func redactURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Close stops taking alerts, posts those queued (until ctx ends) and
// flushes Sentry's queue.
func (t *Tracker) Close(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.closing.Do(func() {
		t.mu.Lock()
		t.closed = true
		close(t.queue)
		t.mu.Unlock()
	})
	var err error
	select {
	case <-t.done:
	case <-ctx.Done():
		err = fmt.Errorf("error alerts not all posted: %w", ctx.Err())
	}
	if t.sentry != nil && !t.sentry.FlushWithContext(ctx) {
		err = errors.Join(err, errors.New("sentry: events not all sent"))
	}
	return err
}
