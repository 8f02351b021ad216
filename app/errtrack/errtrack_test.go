package errtrack_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glasshouse-dev/glasshouse/alerts/slacksink"
	"github.com/glasshouse-dev/glasshouse/app/errtrack"
)

// clock is a settable clock for the alert interval.
type clock struct{ now atomic.Pointer[time.Time] }

func newClock() *clock {
	c := &clock{}
	c.set(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return c
}
func (c *clock) set(t time.Time)         { c.now.Store(&t) }
func (c *clock) Now() time.Time          { return *c.now.Load() }
func (c *clock) advance(d time.Duration) { c.set(c.Now().Add(d)) }
func stackHere() []uintptr               { return errtrack.Callers(0) }
func otherStack() []uintptr              { return errtrack.Callers(0) }

// waitMessages waits until the sink holds n messages; the deadline is a
// hang guard, not a timing assertion.
func waitMessages(t *testing.T, sink *slacksink.Sink, n int) []slacksink.Message {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m := sink.Messages(0); len(m) >= n {
			return m
		}
	}
	t.Fatalf("the sink got %d messages, want %d", len(sink.Messages(0)), n)
	return nil
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestAlertsToSlack posts to the repository's Slack sink: the first
// occurrence of a fingerprint alerts, repeats within the interval are
// counted but not alerted, and the first after the interval alerts again
// saying how many were held back.
func TestAlertsToSlack(t *testing.T) {
	sink := slacksink.New(slacksink.Options{})
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	clk := newClock()
	tr, err := errtrack.New(errtrack.Options{Registry: reg, WebhookURL: srv.URL + "/hooks/T0/B0/secret", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })

	first := errtrack.Event{Route: "GET /api/v1/items/{id}", ErrorType: errtrack.TypeInternal, Err: errors.New("scan item: boom"),
		RequestID: "req-1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Stack: stackHere()}
	tr.Report(first)
	msgs := waitMessages(t, sink, 1)
	text := msgs[0].Text()
	for _, want := range []string{"GET /api/v1/items/{id}", "scan item: boom", "req-1", "4bf92f3577b34da6a3ce929d0e0e4736", "internal"} {
		if !strings.Contains(text, want) {
			t.Errorf("alert does not show %q:\n%s", want, text)
		}
	}
	// Same fingerprint (type and stack), other message and request: held back.
	for i := range 3 {
		clk.advance(time.Minute)
		again := first
		again.Err, again.RequestID = errors.New("scan item: other"), "req-again-"+string(rune('a'+i))
		tr.Report(again)
	}
	// A new fingerprint alerts at once.
	tr.Report(errtrack.Event{Route: "POST /api/v1/items", ErrorType: errtrack.TypePanic, Err: errors.New("nil map"), Stack: otherStack()})
	msgs = waitMessages(t, sink, 2)
	if !strings.Contains(msgs[1].Text(), "nil map") {
		t.Errorf("second alert is not the new fingerprint's:\n%s", msgs[1].Text())
	}
	// After the interval the first fingerprint alerts again, counting the
	// occurrences held back.
	clk.advance(errtrack.DefaultInterval)
	tr.Report(first)
	msgs = waitMessages(t, sink, 3)
	if !strings.Contains(msgs[2].Text(), "3 more, not alerted") || !strings.Contains(msgs[2].Text(), "req-1") {
		t.Errorf("alert after the interval:\n%s", msgs[2].Text())
	}
	if err := tr.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(sink.Messages(0)); got != 3 {
		t.Errorf("%d alerts, want 3", got)
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"app_errors_total", map[string]string{"route": "GET /api/v1/items/{id}", "error_type": "internal"}, 5},
		{"app_errors_total", map[string]string{"route": "POST /api/v1/items", "error_type": "panic"}, 1},
		{"app_error_alerts_total", map[string]string{"result": "sent"}, 3},
		{"app_error_alerts_total", map[string]string{"result": "dropped"}, 0},
	} {
		if got := metricValue(t, reg, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}

// TestReportNeverBlocks: with the webhook hung, Report returns at once;
// past the queue, alerts are dropped and counted.
func TestReportNeverBlocks(t *testing.T) {
	got := make(chan struct{}, 10)
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- struct{}{}
		<-release
	}))
	t.Cleanup(hook.Close)
	t.Cleanup(func() { close(release) })
	reg := prometheus.NewRegistry()
	tr, err := errtrack.New(errtrack.Options{Registry: reg, WebhookURL: hook.URL, QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	types := []string{errtrack.TypeInternal, errtrack.TypeUnavailable, errtrack.TypeTimeout, errtrack.TypePanic}
	tr.Report(errtrack.Event{Route: "/r", ErrorType: types[0], Stack: stackHere()})
	<-got // the sender is now stuck in the webhook
	for _, typ := range types[1:] {
		tr.Report(errtrack.Event{Route: "/r", ErrorType: typ, Stack: stackHere()})
	}
	if got, want := metricValue(t, reg, "app_error_alerts_total", map[string]string{"result": "dropped"}), 2.0; got != want {
		t.Errorf("dropped alerts = %v, want %v (one in flight, one queued)", got, want)
	}
	if got := metricValue(t, reg, "app_errors_total", map[string]string{"route": "/r", "error_type": "timeout"}); got != 1 {
		t.Errorf("a dropped alert's error is still counted: app_errors_total{timeout} = %v, want 1", got)
	}
}

// TestWebhookFailureCounted: a webhook that answers 5xx is counted as failed
// and logged without its URL (a secret).
func TestWebhookFailureCounted(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	t.Cleanup(hook.Close)
	reg := prometheus.NewRegistry()
	tr, err := errtrack.New(errtrack.Options{Registry: reg, WebhookURL: hook.URL})
	if err != nil {
		t.Fatal(err)
	}
	tr.Report(errtrack.Event{Route: "/r", ErrorType: "made-up", Stack: stackHere()})
	if err := tr.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, reg, "app_error_alerts_total", map[string]string{"result": "failed"}); got != 1 {
		t.Errorf("failed alerts = %v, want 1", got)
	}
	if got := metricValue(t, reg, "app_errors_total", map[string]string{"route": "/r", "error_type": "internal"}); got != 1 {
		t.Errorf("an unknown error type is counted as internal: %v, want 1", got)
	}
	tr.Report(errtrack.Event{Route: "/r", ErrorType: errtrack.TypePanic}) // after Close: counted, not queued, no panic
}

func TestFingerprint(t *testing.T) {
	a, b := stackHere(), otherStack()
	for _, tt := range []struct {
		name     string
		x, y     string
		wantSame bool
	}{
		{"same type and stack", errtrack.Fingerprint("panic", a), errtrack.Fingerprint("panic", a), true},
		{"other type", errtrack.Fingerprint("panic", a), errtrack.Fingerprint("internal", a), false},
		{"other call site", errtrack.Fingerprint("panic", a), errtrack.Fingerprint("panic", b), false},
	} {
		if got := tt.x == tt.y; got != tt.wantSame {
			t.Errorf("%s: %s vs %s, same = %v, want %v", tt.name, tt.x, tt.y, got, tt.wantSame)
		}
	}
}

// sentryIngest stands in for Sentry's ingest: it keeps the events of every
// envelope posted to /api/<project>/envelope/.
type sentryIngest struct {
	mu     sync.Mutex
	events []map[string]any
	paths  []string
}

func (s *sentryIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths = append(s.paths, r.URL.Path)
	// An envelope: a header line, then per item a header line and a
	// payload (length-prefixed or up to the newline).
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<22)
	sc.Scan() // envelope header
	for sc.Scan() {
		var item struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(sc.Bytes(), &item); err != nil {
			http.Error(w, "bad item header: "+err.Error(), 400)
			return
		}
		if !sc.Scan() {
			break
		}
		if item.Type == "event" {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				http.Error(w, "bad event: "+err.Error(), 400)
				return
			}
			s.events = append(s.events, ev)
		}
	}
	w.Write([]byte(`{}`))
}

// TestSentry sends an error and a panic to a local stand-in for Sentry's
// ingest, through the real SDK, and decodes the envelopes it gets.
func TestSentry(t *testing.T) {
	ingest := &sentryIngest{}
	srv := httptest.NewServer(ingest)
	t.Cleanup(srv.Close)
	dsn := strings.Replace(srv.URL, "http://", "http://publickey@", 1) + "/42"
	tr, err := errtrack.New(errtrack.Options{Registry: prometheus.NewRegistry(), SentryDSN: dsn, Release: "v1.2.3", Environment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	tr.Report(errtrack.Event{Route: "GET /api/v1/items", ErrorType: errtrack.TypeInternal, Err: errors.New("list items: boom"),
		RequestID: "req-9", TraceID: "0af7651916cd43dd8448eb211c80319c", Stack: stackHere()})
	tr.Report(errtrack.Event{Route: "POST /api/v1/items", ErrorType: errtrack.TypePanic, Err: errors.New("panic: assignment to entry in nil map"),
		TraceID: "1af7651916cd43dd8448eb211c80319c", Stack: otherStack()})
	if err := tr.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	ingest.mu.Lock()
	defer ingest.mu.Unlock()
	if len(ingest.events) != 2 {
		t.Fatalf("ingest got %d events (paths %v), want 2", len(ingest.events), ingest.paths)
	}
	for _, p := range ingest.paths {
		if p != "/api/42/envelope/" {
			t.Errorf("posted to %s, want /api/42/envelope/", p)
		}
	}
	byTrace := map[string]map[string]any{}
	for _, ev := range ingest.events {
		tags, _ := ev["tags"].(map[string]any)
		byTrace[tags["trace_id"].(string)] = ev
	}
	for _, tt := range []struct {
		trace, level, route, value, requestID string
	}{
		{"0af7651916cd43dd8448eb211c80319c", "error", "GET /api/v1/items", "list items: boom", "req-9"},
		{"1af7651916cd43dd8448eb211c80319c", "fatal", "POST /api/v1/items", "panic: assignment to entry in nil map", ""},
	} {
		ev := byTrace[tt.trace]
		if ev == nil {
			t.Errorf("no event tagged trace_id %s", tt.trace)
			continue
		}
		tags := ev["tags"].(map[string]any)
		if ev["level"] != tt.level || tags["route"] != tt.route || ev["release"] != "v1.2.3" || ev["environment"] != "test" {
			t.Errorf("event %s: level %v route %v release %v environment %v", tt.trace, ev["level"], tags["route"], ev["release"], ev["environment"])
		}
		if tt.requestID != "" && tags["request_id"] != tt.requestID {
			t.Errorf("event %s: request_id %v, want %s", tt.trace, tags["request_id"], tt.requestID)
		}
		exc := ev["exception"].([]any)
		last := exc[len(exc)-1].(map[string]any)
		if last["value"] != tt.value {
			t.Errorf("event %s: exception value %v, want %q", tt.trace, last["value"], tt.value)
		}
		frames := last["stacktrace"].(map[string]any)["frames"].([]any)
		top := frames[len(frames)-1].(map[string]any)
		if fn, _ := top["function"].(string); fn != "stackHere" && fn != "otherStack" {
			t.Errorf("event %s: innermost frame %v, want the reporting call site", tt.trace, top)
		}
	}
}
