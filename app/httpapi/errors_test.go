package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/alerts/slacksink"
	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/errtrack"
)

// TestServerErrorsTrackedAndAlerted: every 5xx cause and a recovered panic
// are counted in app_errors_total{route,error_type} and alerted to the
// repository's Slack sink with the route, error, request ID and trace ID;
// client errors are neither.
func TestServerErrorsTrackedAndAlerted(t *testing.T) {
	sink := slacksink.New(slacksink.Options{})
	hook := httptest.NewServer(sink)
	t.Cleanup(hook.Close)
	bs := &brokenStore{}
	fs := &faultStore{}
	f, _ := newTracedFixture(t, func(o *Options) {
		tr, err := errtrack.New(errtrack.Options{Registry: o.Telemetry.Registry, WebhookURL: hook.URL + "/hooks/T0/B0/x"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close(context.Background()) })
		o.Errors = tr
		bs.Store = o.Store
		fs.Store = bs
		o.Store = fs
	})
	_, token := f.signup(t, "rita")

	for _, tt := range []struct {
		name      string
		err       error
		errorType string
	}{
		{"unavailable", fmt.Errorf("db: %w", app.ErrUnavailable), "unavailable"},
		{"timeout", fmt.Errorf("query: %w", context.DeadlineExceeded), "timeout"},
		{"internal", errors.New("disk on fire"), "internal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bs.set(tt.err)
			defer bs.set(nil)
			w := f.do(t, req{method: "GET", path: "/api/v1/users/me", token: token})
			if w.Code/100 != 5 {
				t.Fatalf("%d %s, want a 5xx", w.Code, w.Body)
			}
			if got := metric(t, f.tel.Registry, "app_errors_total", map[string]string{"route": "/api/v1/users/me", "error_type": tt.errorType}); got != 1 {
				t.Errorf("app_errors_total{route=/api/v1/users/me,error_type=%s} = %v, want 1", tt.errorType, got)
			}
			msg := waitAlert(t, sink, w.Header().Get("X-Request-Id"))
			traceID := traceIDOf(t, w.Header().Get("Traceresponse"))
			for _, want := range []string{"/api/v1/users/me", tt.err.Error(), traceID} {
				if !strings.Contains(msg, want) {
					t.Errorf("alert does not show %q:\n%s", want, msg)
				}
			}
		})
	}

	t.Run("panic", func(t *testing.T) {
		fs.listItems = func(context.Context, int64, app.Page) ([]app.Item, int, error) { panic("boom: nil map") }
		defer func() { fs.listItems = nil }()
		w := f.do(t, req{method: "GET", path: "/api/v1/items", token: token})
		if w.Code != 500 {
			t.Fatalf("%d %s, want 500", w.Code, w.Body)
		}
		if got := metric(t, f.tel.Registry, "app_errors_total", map[string]string{"route": "/api/v1/items", "error_type": "panic"}); got != 1 {
			t.Errorf("app_errors_total{route=/api/v1/items,error_type=panic} = %v, want 1", got)
		}
		msg := waitAlert(t, sink, w.Header().Get("X-Request-Id"))
		if !strings.Contains(msg, "panic: boom: nil map") || !strings.Contains(msg, traceIDOf(t, w.Header().Get("Traceresponse"))) {
			t.Errorf("panic alert:\n%s", msg)
		}
	})

	t.Run("client errors are not server errors", func(t *testing.T) {
		for _, rq := range []req{
			{method: "GET", path: "/api/v1/items/999", token: token},
			{method: "GET", path: "/api/v1/users/me"},
			{method: "POST", path: "/api/v1/items", token: token, body: `{"name":""}`},
		} {
			if w := f.do(t, rq); w.Code/100 != 4 {
				t.Fatalf("%s %s: %d, want a 4xx", rq.method, rq.path, w.Code)
			}
		}
		if got := sumMetric(t, f, "app_errors_total"); got != 4 {
			t.Errorf("app_errors_total summed = %v after client errors, want the 4 server errors", got)
		}
	})
}

// sumMetric adds every series of a counter.
func sumMetric(t *testing.T, f *fixture, name string) float64 {
	t.Helper()
	mfs, err := f.tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// waitAlert waits for the sink's message naming requestID; the deadline is
// a hang guard.
func waitAlert(t *testing.T, sink *slacksink.Sink, requestID string) string {
	t.Helper()
	if requestID == "" {
		t.Fatal("response has no X-Request-Id")
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, m := range sink.Messages(0) {
			if text := m.Text(); strings.Contains(text, requestID) {
				return text
			}
		}
	}
	t.Fatalf("no alert names request %s; the sink has %d messages", requestID, len(sink.Messages(0)))
	return ""
}

// traceIDOf is the trace ID of a Traceresponse header (version-traceid-spanid-flags).
func traceIDOf(t *testing.T, h string) string {
	t.Helper()
	parts := strings.Split(h, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		t.Fatalf("Traceresponse %q is not version-traceid-spanid-flags", h)
	}
	return parts[1]
}

// newTracker is an error tracker on o's registry that alerts nowhere.
func newTracker(t *testing.T, o *Options) *errtrack.Tracker {
	t.Helper()
	tr, err := errtrack.New(errtrack.Options{Registry: o.Telemetry.Registry})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	return tr
}
