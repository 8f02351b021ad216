package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// newTracedFixture is newFixture with spans recorded and a SQLite store
// that traces its queries, as cmd wires it.
func newTracedFixture(t *testing.T, mods ...func(*Options)) (*fixture, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), telemetry.Config{
		LogFormat: "json", LogWriter: io.Discard,
		Getenv: func(string) string { return "" }, SpanProcessors: []sdktrace.SpanProcessor{rec},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "traced.db"), sqlite.WithTracer(tel.Tracer))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mods = append([]func(*Options){func(o *Options) {
		o.Telemetry, o.Store = tel, st
		o.Checks = []app.Check{{Name: "database", Check: st.Ping}}
	}}, mods...)
	f := newFixture(t, mods...)
	f.tel = tel
	return f, rec
}

// TestChildSpans: store queries and password hashing are child spans of the
// request's server span.
func TestChildSpans(t *testing.T) {
	f, rec := newTracedFixture(t)
	_, token := f.signup(t, "rita")
	it := f.createItem(t, token, "traced")
	if w := f.do(t, req{method: "GET", path: fmt.Sprintf("/api/v1/items/%d", it.ID), token: token}); w.Code != 200 {
		t.Fatalf("get: %d %s", w.Code, w.Body)
	}

	spans := rec.Ended()
	server := map[string]sdktrace.ReadOnlySpan{}
	for _, sp := range spans {
		if sp.Parent().IsValid() {
			continue
		}
		server[sp.Name()] = sp
	}
	childrenOf := func(name string) []string {
		parent, ok := server[name]
		if !ok {
			t.Fatalf("no server span %q", name)
		}
		var names []string
		for _, sp := range spans {
			if sp.Parent().SpanID() == parent.SpanContext().SpanID() {
				names = append(names, sp.Name())
			}
		}
		return names
	}
	for route, want := range map[string][]string{
		"POST /api/v1/users":      {"password.hash", "INSERT users"},
		"POST /api/v1/auth/login": {"SELECT users", "password.verify"},
		"POST /api/v1/items":      {"INSERT items"},
		"GET /api/v1/items/{id}":  {"SELECT items"},
	} {
		got := childrenOf(route)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("children of %q = %v, want %v", route, got, want)
		}
	}
}

// TestServerSpanRecordsTheError: a 5xx's cause is recorded on the server
// span (an exception event), so the trace UI shows why the request failed
// while the client sees only the safe message.
func TestServerSpanRecordsTheError(t *testing.T) {
	fs := &faultStore{}
	f, rec := newTracedFixture(t, func(o *Options) { fs.Store = o.Store; o.Store = fs })
	_, token := f.signup(t, "sam")
	for _, tt := range []struct {
		err    error
		status int
	}{
		{errors.New("disk on fire"), 500},
		{fmt.Errorf("db: %w", app.ErrUnavailable), 503},
		{fmt.Errorf("item: %w", app.ErrNotFound), 404},
	} {
		fs.item = func(context.Context, int64, int64) (app.Item, error) { return app.Item{}, tt.err }
		w := f.do(t, req{method: "GET", path: "/api/v1/items/1", token: token})
		if w.Code != tt.status {
			t.Fatalf("%v: %d, want %d", tt.err, w.Code, tt.status)
		}
		spans := rec.Ended()
		sp := spans[len(spans)-1]
		if sp.Name() != "GET /api/v1/items/{id}" {
			t.Fatalf("last span %q, want the server span", sp.Name())
		}
		var recorded []string
		for _, ev := range sp.Events() {
			if ev.Name != "exception" {
				continue
			}
			for _, kv := range ev.Attributes {
				if kv.Key == "exception.message" {
					recorded = append(recorded, kv.Value.AsString())
				}
			}
		}
		if tt.status >= 500 {
			if len(recorded) != 1 || recorded[0] != tt.err.Error() {
				t.Errorf("%d: exception events %q, want one with %q", tt.status, recorded, tt.err)
			}
		} else if len(recorded) != 0 {
			t.Errorf("%d: exception events %q on a client error, want none", tt.status, recorded)
		}
	}
}
