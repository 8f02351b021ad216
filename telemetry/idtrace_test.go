package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestIDProviderDecidesAsTheSDK starts the same spans through the SDK's
// provider and through idProvider, for every sampler and kind of parent,
// and compares what a span context carries: whether the trace is the
// parent's, the flags and the trace state. Only the IDs drawn at random
// differ, and idProvider's spans record nothing.
func TestIDProviderDecidesAsTheSDK(t *testing.T) {
	ts, err := trace.ParseTraceState("vendor=value")
	if err != nil {
		t.Fatal(err)
	}
	parent := func(flags trace.TraceFlags, remote bool) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{
			TraceID:    trace.TraceID{0: 1, 15: 2},
			SpanID:     trace.SpanID{0: 3, 7: 4},
			TraceFlags: flags,
			TraceState: ts,
			Remote:     remote,
		})
	}
	parents := map[string]trace.SpanContext{
		"no parent":              {},
		"sampled remote parent":  parent(trace.FlagsSampled, true),
		"unsampled remote":       parent(0, true),
		"sampled local parent":   parent(trace.FlagsSampled, false),
		"unsampled local parent": parent(0, false),
	}
	samplers := []string{"", "always_on", "always_off", "parentbased_always_off", "traceidratio", "parentbased_traceidratio"}
	for _, name := range samplers {
		for _, arg := range []string{"", "0", "0.5"} {
			if arg != "" && name != "traceidratio" && name != "parentbased_traceidratio" {
				continue
			}
			s, err := samplerFromEnv(name, arg)
			if err != nil {
				t.Fatal(err)
			}
			sdk := sdktrace.NewTracerProvider(sdktrace.WithSampler(s), sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder())).Tracer("t")
			ids := newIDProvider(s).Tracer("t")
			for pname, psc := range parents {
				for _, newRoot := range []bool{false, true} {
					opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
					if newRoot {
						opts = append(opts, trace.WithNewRoot())
					}
					ctx := trace.ContextWithSpanContext(context.Background(), psc)
					_, want := sdk.Start(ctx, "GET /", opts...)
					_, got := ids.Start(ctx, "GET /", opts...)
					desc := name + "(" + arg + "), " + pname
					if newRoot {
						desc += ", new root"
					}
					g, w := got.SpanContext(), want.SpanContext()
					if !g.IsValid() {
						t.Errorf("%s: span context %v is not valid", desc, g)
					}
					if got.IsRecording() {
						t.Errorf("%s: idProvider's span records", desc)
					}
					if g.SpanID() == psc.SpanID() {
						t.Errorf("%s: the span reuses its parent's span ID", desc)
					}
					type view struct {
						SameTrace  bool
						Flags      trace.TraceFlags
						TraceState string
						Remote     bool
					}
					if d := cmp.Diff(
						view{w.TraceID() == psc.TraceID(), w.TraceFlags(), w.TraceState().String(), w.IsRemote()},
						view{g.TraceID() == psc.TraceID(), g.TraceFlags(), g.TraceState().String(), g.IsRemote()},
					); d != "" && arg != "0.5" {
						t.Errorf("%s: span context (-sdk +idProvider):\n%s", desc, d)
					}
				}
			}
		}
	}
}

// TestIDProviderRatioFollowsTheTraceID checks the ratio sampler's
// decision on idProvider's spans against the trace ID it drew: a trace ID
// below the ratio's bound is sampled, one above it is not, as the SDK
// decides from the same trace ID.
func TestIDProviderRatioFollowsTheTraceID(t *testing.T) {
	s, err := samplerFromEnv("traceidratio", "0.5")
	if err != nil {
		t.Fatal(err)
	}
	ids := newIDProvider(s).Tracer("t")
	var sampled, total int
	for range 2000 {
		_, span := ids.Start(context.Background(), "GET /")
		sc := span.SpanContext()
		want := s.ShouldSample(sdktrace.SamplingParameters{TraceID: sc.TraceID()}).Decision == sdktrace.RecordAndSample
		if sc.IsSampled() != want {
			t.Fatalf("trace %s: sampled = %t, the sampler says %t", sc.TraceID(), sc.IsSampled(), want)
		}
		total++
		if want {
			sampled++
		}
	}
	if sampled == 0 || sampled == total {
		t.Errorf("ratio 0.5 sampled %d of %d traces: the decision does not depend on the trace ID", sampled, total)
	}
}

// tracingSetup is one way a service configures tracing, and what it gets.
type tracingSetup struct {
	name     string
	env      []string
	extra    bool // a span processor in Config.SpanProcessors
	idOnly   bool // the provider is idProvider
	recorded bool // spans are recorded
}

var tracingSetups = []tracingSetup{
	{name: "defaults", idOnly: true},
	{name: "exporter none", env: []string{"OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"}, idOnly: true},
	{name: "tracing disabled", env: []string{"OTEL_SDK_DISABLED", "true"}},
	{name: "endpoint", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"}, recorded: true},
	{name: "span processor", extra: true, recorded: true},
}

// newTelemetry builds a Telemetry for the setup; rec is its span
// processor when the setup has one.
func (ts tracingSetup) newTelemetry(t *testing.T, rec sdktrace.SpanProcessor) *Telemetry {
	t.Helper()
	cfg := Config{ServiceName: "svc", Getenv: envMap(ts.env...)}
	if ts.extra {
		cfg.SpanProcessors = []sdktrace.SpanProcessor{rec}
	}
	tel, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

// TestDefaultsUseIDProvider pins which provider each configuration gets:
// idProvider only when no span could be exported or processed.
func TestDefaultsUseIDProvider(t *testing.T) {
	for _, tc := range tracingSetups {
		if tc.name == "tracing disabled" {
			continue // no spans at all: TestClientTracerProvider covers it
		}
		t.Run(tc.name, func(t *testing.T) {
			tel := tc.newTelemetry(t, tracetest.NewSpanRecorder())
			_, isID := tel.TracerProvider().(*idProvider)
			if isID != tc.idOnly {
				t.Errorf("TracerProvider() is %T; want idProvider: %t", tel.TracerProvider(), tc.idOnly)
			}
			_, span := tel.Tracer.Start(t.Context(), "x")
			if !span.SpanContext().IsSampled() {
				t.Errorf("default sampler: span %v not sampled", span.SpanContext())
			}
			if span.IsRecording() != tc.recorded {
				t.Errorf("span recording = %t, want %t", span.IsRecording(), tc.recorded)
			}
		})
	}
}

// BenchmarkServerSpan starts a server span under a request-like context
// (a few values deep) with the default sampler: the SDK's recording span
// against idProvider's.
func BenchmarkServerSpan(b *testing.B) {
	s, err := samplerFromEnv("", "")
	if err != nil {
		b.Fatal(err)
	}
	type key int
	ctx := context.Background()
	for i := range 6 {
		ctx = context.WithValue(ctx, key(i), i)
	}
	for _, tc := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"sdk", sdktrace.NewTracerProvider(sdktrace.WithSampler(s))},
		{"ids", newIDProvider(s)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tr := tc.tp.Tracer("t")
			b.ReportAllocs()
			for b.Loop() {
				_, span := tr.Start(ctx, "GET /api/v1/items/{id}", serverSpan...)
				span.End()
			}
		})
	}
}

// TestMiddlewareSpanInRequestContext: with idProvider, Middleware keeps
// the server span in the request's own context rather than through
// Tracer.Start. A handler must still find it there, with the IDs the
// Traceresponse header and the access log carry, find it under contexts it
// derives, see a child span it starts take its place, and start children
// in the same trace from the span's own TracerProvider. With the SDK the
// same holds through Tracer.Start.
func TestMiddlewareSpanInRequestContext(t *testing.T) {
	if spanKey == nil {
		t.Fatal("spanKey: trace.SpanFromContext no longer looks the span up by a context key; Middleware would fall back to Tracer.Start")
	}
	for _, tc := range []struct {
		name  string
		extra bool
	}{{"idProvider", false}, {"SDK", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			cfg := Config{ServiceName: "svc", Getenv: envMap(), LogWriter: &logs, LogFormat: "json"}
			if tc.extra {
				cfg.SpanProcessors = []sdktrace.SpanProcessor{tracetest.NewSpanRecorder()}
			}
			tel, err := New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
			var inHandler, derived, child, fromProvider trace.SpanContext
			mux := http.NewServeMux()
			mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
				span := trace.SpanFromContext(r.Context())
				inHandler = span.SpanContext()
				type key struct{}
				ctx, cancel := context.WithCancel(context.WithValue(r.Context(), key{}, 1))
				defer cancel()
				derived = trace.SpanContextFromContext(ctx)
				cctx, c := tel.Tracer.Start(ctx, "child")
				child = trace.SpanContextFromContext(cctx)
				c.End()
				_, p := span.TracerProvider().Tracer("t").Start(ctx, "from provider")
				fromProvider = p.SpanContext()
				p.End()
			})
			srv := httptest.NewServer(tel.Middleware(mux))
			t.Cleanup(srv.Close)
			resp, err := srv.Client().Get(srv.URL + "/items/1")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if !inHandler.IsValid() || !inHandler.IsSampled() {
				t.Fatalf("span in the handler's context: %v, want a valid sampled span", inHandler)
			}
			want := "00-" + inHandler.TraceID().String() + "-" + inHandler.SpanID().String() + "-01"
			if got := resp.Header.Get(TraceResponseHeader); got != want {
				t.Errorf("Traceresponse %q, want the handler's span %q", got, want)
			}
			if !derived.Equal(inHandler) {
				t.Errorf("under a derived context: %v, want %v", derived, inHandler)
			}
			if child.TraceID() != inHandler.TraceID() || child.SpanID() == inHandler.SpanID() || !child.SpanID().IsValid() {
				t.Errorf("child span %v: want a new span in trace %v", child, inHandler.TraceID())
			}
			if fromProvider.TraceID() != inHandler.TraceID() || !fromProvider.SpanID().IsValid() {
				t.Errorf("span from the span's TracerProvider: %v, want a span in trace %v", fromProvider, inHandler.TraceID())
			}
			var rec struct{ TraceID, SpanID string }
			for line := range strings.Lines(logs.String()) {
				if strings.Contains(line, `"msg":"http request"`) {
					var m map[string]any
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Fatal(err)
					}
					rec.TraceID, _ = m["trace_id"].(string)
					rec.SpanID, _ = m["span_id"].(string)
				}
			}
			if rec.TraceID != inHandler.TraceID().String() || rec.SpanID != inHandler.SpanID().String() {
				t.Errorf("access log IDs %+v, want the handler's span %v", rec, inHandler)
			}
		})
	}
}

// TestClientTracerProvider: clients get the service's provider when spans
// are recorded, and otherwise stand-ins that keep the caller's span
// context (for log correlation), record nothing, and never end the
// caller's span, even one recorded by another provider, whether ended
// through the returned span or looked up in the context as pgx's tracer
// does.
func TestClientTracerProvider(t *testing.T) {
	for _, tc := range tracingSetups {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tel := tc.newTelemetry(t, rec)
			if got := tel.SpansRecorded(); got != tc.recorded {
				t.Fatalf("SpansRecorded() = %t, want %t", got, tc.recorded)
			}
			cp := tel.ClientTracerProvider()
			if tc.recorded {
				if cp != tel.TracerProvider() {
					t.Errorf("ClientTracerProvider() = %T, want TracerProvider()", cp)
				}
				return
			}
			// The caller's span: the service's own, and one recorded by
			// another provider.
			other := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			for _, parent := range []struct {
				name string
				tr   trace.Tracer
			}{{"own", tel.Tracer}, {"recorded elsewhere", other.Tracer("t")}} {
				pctx, pspan := parent.tr.Start(t.Context(), "GET /items/{id}")
				want := pspan.SpanContext()
				ctx, span := cp.Tracer("db").Start(pctx, "SELECT items", trace.WithSpanKind(trace.SpanKindClient))
				if got := trace.SpanContextFromContext(ctx); !got.Equal(want) {
					t.Errorf("%s parent: span context in the client's context %v, want the caller's %v", parent.name, got, want)
				}
				if !span.SpanContext().Equal(want) || span.IsRecording() {
					t.Errorf("%s parent: client span %v recording=%t, want a non-recording stand-in for %v", parent.name, span.SpanContext(), span.IsRecording(), want)
				}
				span.End()
				trace.SpanFromContext(ctx).End()
				_, grand := span.TracerProvider().Tracer("x").Start(ctx, "nested")
				grand.End()
				if !pspan.IsRecording() && parent.name != "own" {
					t.Errorf("%s parent: ending the client span ended the caller's", parent.name)
				}
				pspan.End()
			}
			if n := len(rec.Ended()); n != 1 {
				t.Errorf("%d spans ended in the other provider, want only its own parent", n)
			}
		})
	}
}

// BenchmarkClientSpan starts a database client span the way the stores do
// (kind and three attributes) under a request-like context, through the
// service's tracer and through ClientTracerProvider's when spans are not
// recorded.
func BenchmarkClientSpan(b *testing.B) {
	tel, err := New(b.Context(), Config{ServiceName: "svc", Getenv: envMap(), LogWriter: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	type key int
	ctx := context.Background()
	for i := range 6 {
		ctx = context.WithValue(ctx, key(i), i)
	}
	ctx, _ = tel.Tracer.Start(ctx, "GET /api/v1/items/{id}", serverSpan...)
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "sqlite"),
			attribute.String("db.operation.name", "SELECT"), attribute.String("db.collection.name", "items")),
	}
	for _, tc := range []struct {
		name string
		tr   trace.Tracer
	}{
		{"ids", tel.Tracer},
		{"client", tel.ClientTracerProvider().Tracer("db")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, span := tc.tr.Start(ctx, "SELECT items", opts...)
				span.End()
			}
		})
	}
}
