package telemetry

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

func TestTraceConfigFromEnv(t *testing.T) {
	base := Config{ServiceName: "glasshouse-api", ServiceVersion: "v1", Environment: "development"}
	for _, tc := range []struct {
		name     string
		env      []string
		endpoint string
		protocol string
		resource map[string]string
		errs     []string
	}{
		{
			name:     "defaults: no export",
			resource: map[string]string{"service.name": "glasshouse-api", "service.version": "v1", "deployment.environment.name": "development"},
			protocol: "http/protobuf",
		},
		{
			name:     "base endpoint gets the signal path",
			env:      []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"},
			endpoint: "http://collector:4318/v1/traces",
			protocol: "http/protobuf",
		},
		{
			name:     "traces endpoint used as is",
			env:      []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://b/custom"},
			endpoint: "https://b/custom",
			protocol: "http/protobuf",
		},
		{
			name:     "grpc endpoint has no path",
			env:      []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
			endpoint: "http://collector:4317",
			protocol: "grpc",
		},
		{
			name:     "exporter none disables export",
			env:      []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", "OTEL_TRACES_EXPORTER", "none"},
			protocol: "http/protobuf",
		},
		{
			name: "service name precedence and percent-decoding",
			env: []string{
				"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,team=sre%20core,deployment.environment.name=prod",
				"OTEL_SERVICE_NAME", "from-env",
			},
			resource: map[string]string{"service.name": "from-env", "team": "sre core", "deployment.environment.name": "prod", "service.version": "v1"},
			protocol: "http/protobuf",
		},
		{
			name: "every error at once",
			env: []string{
				"OTEL_SDK_DISABLED", "maybe",
				"OTEL_RESOURCE_ATTRIBUTES", "novalue",
				"OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "1.5",
				"OTEL_TRACES_EXPORTER", "zipkin",
				"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318",
				"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd",
				"OTEL_EXPORTER_OTLP_TIMEOUT", "10s",
				"OTEL_BSP_MAX_QUEUE_SIZE", "0",
				"OTEL_TRUST_INCOMING_TRACE", "sometimes",
			},
			errs: []string{
				"OTEL_TRUST_INCOMING_TRACE",
				"OTEL_SDK_DISABLED", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_EXPORTER",
				"OTEL_EXPORTER_OTLP_PROTOCOL", `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: OTLP endpoint "collector:4318"`, "OTEL_EXPORTER_OTLP_COMPRESSION",
				"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_BSP_MAX_QUEUE_SIZE",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Getenv = envMap(tc.env...)
			got, err := traceConfigFromEnv(cfg)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, want := range tc.errs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error does not mention %s:\n%v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.endpointURL != tc.endpoint {
				t.Errorf("endpoint %q, want %q", got.endpointURL, tc.endpoint)
			}
			if got.protocol != tc.protocol {
				t.Errorf("protocol %q, want %q", got.protocol, tc.protocol)
			}
			if tc.resource != nil {
				res := map[string]string{}
				for _, kv := range got.resource {
					res[string(kv.Key)] = kv.Value.AsString()
				}
				if diff := cmp.Diff(tc.resource, res); diff != "" {
					t.Errorf("resource (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestSamplerFromEnv(t *testing.T) {
	for _, tc := range []struct{ name, arg, desc string }{
		{"", "", "ParentBased{root:AlwaysOnSampler"},
		{"always_on", "", "AlwaysOnSampler"},
		{"always_off", "", "AlwaysOffSampler"},
		{"traceidratio", "0.25", "TraceIDRatioBased{0.25}"},
		{"parentbased_traceidratio", "", "ParentBased{root:TraceIDRatioBased{1}"},
		{"parentbased_always_off", "", "ParentBased{root:AlwaysOffSampler"},
	} {
		s, err := samplerFromEnv(tc.name, tc.arg)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !strings.HasPrefix(s.Description(), tc.desc) {
			t.Errorf("sampler %q: %s, want prefix %s", tc.name, s.Description(), tc.desc)
		}
	}
}

// otlpHTTPReceiver is an in-process OTLP/HTTP trace endpoint.
type otlpHTTPReceiver struct {
	mu      sync.Mutex
	reqs    []*coltracepb.ExportTraceServiceRequest
	headers []http.Header
	t       *testing.T
}

func (rc *otlpHTTPReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		rc.t.Errorf("receiver got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		rc.t.Errorf("receiver: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, req)
	rc.headers = append(rc.headers, r.Header.Clone())
	rc.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (rc *otlpHTTPReceiver) requests() []*coltracepb.ExportTraceServiceRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.reqs
}

// exported is one received span with its resource.
type exported struct {
	span     *tracepb.Span
	resource map[string]string
}

func flatten(reqs []*coltracepb.ExportTraceServiceRequest) []exported {
	var out []exported
	for _, req := range reqs {
		for _, rs := range req.GetResourceSpans() {
			res := kvMap(rs.GetResource().GetAttributes())
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					out = append(out, exported{s, res})
				}
			}
		}
	}
	return out
}

func kvMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
		default:
			m[kv.GetKey()] = v.GetStringValue()
		}
	}
	return m
}

func findExported(t *testing.T, spans []exported, name string) exported {
	t.Helper()
	var names []string
	for _, s := range spans {
		if s.span.GetName() == name {
			return s
		}
		names = append(names, s.span.GetName())
	}
	t.Fatalf("no exported span %q (got %q)", name, names)
	return exported{}
}

// checkExport serves two requests through a real listener and checks the
// spans the collector received after Shutdown.
func checkExport(t *testing.T, e *testEnv, spans func() []exported) {
	t.Helper()
	srv := httptest.NewServer(e.handler)
	t.Cleanup(srv.Close)
	for _, p := range []string{"/items/77", "/fail"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := e.tel.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	got := spans()
	if len(got) != 3 {
		t.Errorf("exported %d spans, want 3", len(got))
	}
	server := findExported(t, got, "GET /items/{id}")
	if server.span.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("server span kind %v", server.span.GetKind())
	}
	a := kvMap(server.span.GetAttributes())
	for k, want := range map[string]string{
		"http.route":                "/items/{id}",
		"http.request.method":       "GET",
		"url.path":                  "/items/77",
		"http.response.status_code": "200",
	} {
		if a[k] != want {
			t.Errorf("exported server span %s = %q, want %q (all: %v)", k, a[k], want, a)
		}
	}
	for k, want := range map[string]string{
		"service.name":                "otlp-test",
		"service.version":             "v1.2.3",
		"deployment.environment.name": "ci",
		"team":                        "sre core",
	} {
		if server.resource[k] != want {
			t.Errorf("resource %s = %q, want %q", k, server.resource[k], want)
		}
	}
	child := findExported(t, got, "db.query")
	if string(child.span.GetParentSpanId()) != string(server.span.GetSpanId()) ||
		string(child.span.GetTraceId()) != string(server.span.GetTraceId()) {
		t.Error("db.query is not a child of the server span")
	}
	fail := findExported(t, got, "GET /fail")
	if fail.span.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("500 span status %v, want error", fail.span.GetStatus())
	}
	if v := testutil.ToFloat64(e.tel.metrics.spansDropped.WithLabelValues("export_failed")); v != 0 {
		t.Errorf("export_failed = %v, want 0", v)
	}
}

func otlpEnv(endpoint string, extra ...string) func(string) string {
	return envMap(append([]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT", endpoint,
		"OTEL_SERVICE_NAME", "otlp-test",
		"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci,team=sre%20core",
		"OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme",
	}, extra...)...)
}

func TestOTLPHTTPExport(t *testing.T) {
	for _, compression := range []string{"none", "gzip"} {
		t.Run(compression, func(t *testing.T) {
			rc := &otlpHTTPReceiver{t: t}
			collector := httptest.NewServer(rc)
			t.Cleanup(collector.Close)
			e := newTestEnv(t, otlpEnv(collector.URL, "OTEL_EXPORTER_OTLP_COMPRESSION", compression))
			checkExport(t, e, func() []exported { return flatten(rc.requests()) })
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if len(rc.headers) == 0 || rc.headers[0].Get("X-Tenant") != "acme" {
				t.Errorf("OTEL_EXPORTER_OTLP_HEADERS not sent: %v", rc.headers)
			}
			if compression == "gzip" && rc.headers[0].Get("Content-Encoding") != "gzip" {
				t.Error("gzip requested but body not compressed")
			}
		})
	}
}

// grpcReceiver is an in-process OTLP/gRPC trace endpoint.
type grpcReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu     sync.Mutex
	reqs   []*coltracepb.ExportTraceServiceRequest
	tenant []string
}

func (g *grpcReceiver) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reqs = append(g.reqs, req)
	g.tenant = append(g.tenant, md.Get("x-tenant")...)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func TestOTLPGRPCExport(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &grpcReceiver{}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, rc)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	e := newTestEnv(t, otlpEnv("http://"+lis.Addr().String(), "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"))
	checkExport(t, e, func() []exported {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return flatten(rc.reqs)
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.tenant) == 0 || rc.tenant[0] != "acme" {
		t.Errorf("x-tenant metadata %q, want acme", rc.tenant)
	}
}

func tracerProvider(t *testing.T, tel *Telemetry) *sdktrace.TracerProvider {
	t.Helper()
	tp, ok := tel.TracerProvider().(*sdktrace.TracerProvider)
	if !ok {
		t.Fatalf("TracerProvider is %T", tel.TracerProvider())
	}
	return tp
}

// serveN sends n requests for path through a real listener and fails the
// test unless every one is answered with 2xx.
func serveN(t *testing.T, h http.Handler, path string, n int) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for range n {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// TestHungCollectorDoesNotBlockRequests: the collector accepts the export
// connection and never answers. Requests must complete while the exporter
// is stuck, spans beyond the queue are dropped and counted, and Shutdown
// gives up at its deadline.
func TestHungCollectorDoesNotBlockRequests(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(collector.Close)
	t.Cleanup(func() { close(release) }) // runs before collector.Close

	const queue = 8
	e := newTestEnv(t, envMap(
		"OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL,
		"OTEL_BSP_MAX_QUEUE_SIZE", "8",
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1", // export every span at once
		"OTEL_EXPORTER_OTLP_TIMEOUT", "600000",
		"OTEL_BSP_EXPORT_TIMEOUT", "600000",
	), func(c *Config) { c.SpanProcessors = nil })

	serveN(t, e.handler, "/slow", 1) // one span: the export that hangs
	select {
	case <-arrived:
	case <-t.Context().Done():
		t.Fatal("collector never received the export")
	}

	const n = 100
	serveN(t, e.handler, "/slow", n) // one span each, exporter still stuck
	if got, want := testutil.ToFloat64(e.tel.metrics.spansDropped.WithLabelValues("queue_full")), float64(n-queue); got != want {
		t.Errorf("queue_full drops = %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(e.tel.metrics.spansDropped.WithLabelValues("export_failed")); got != 0 {
		t.Errorf("export_failed = %v while the export is still pending", got)
	}
	body := scrape(t, e.tel, "")
	if !strings.Contains(body, `http_server_request_duration_seconds_count{code="204",method="GET",route="/slow"} 101`) {
		t.Error("requests during the outage not all counted")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := e.tel.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a hung collector: %v, want a deadline error", err)
	}
}

// TestDeadCollectorEndpoint: nothing listens on the port. Requests
// complete and every span is counted as a failed export.
func TestDeadCollectorEndpoint(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()

	e := newTestEnv(t, envMap(
		"OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr,
		"OTEL_BSP_EXPORT_TIMEOUT", "300", // cuts the exporter's retries short
	), func(c *Config) { c.SpanProcessors = nil })
	const n = 20
	serveN(t, e.handler, "/slow", n)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := tracerProvider(t, e.tel).ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	if got := testutil.ToFloat64(e.tel.metrics.spansDropped.WithLabelValues("export_failed")); got != n {
		t.Errorf("export_failed = %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(e.tel.metrics.spansDropped.WithLabelValues("queue_full")); got != 0 {
		t.Errorf("queue_full = %v, want 0", got)
	}
	if c := strings.Count(e.logs.String(), "trace export failing"); c != 1 {
		t.Errorf("export failure logged %d times, want once:\n%s", c, e.logs.String())
	}
}

func TestSDKDisabled(t *testing.T) {
	e := newTestEnv(t, envMap("OTEL_SDK_DISABLED", "true", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"))
	rec := e.do(t, http.MethodGet, "/items/1")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if h := rec.Header().Get(TraceResponseHeader); h != "" {
		t.Errorf("traceresponse %q with the SDK disabled", h)
	}
	if n := len(e.spans.Ended()); n != 0 {
		t.Errorf("%d spans recorded with the SDK disabled", n)
	}
	if strings.Contains(scrape(t, e.tel, "application/openmetrics-text"), "trace_id") {
		t.Error("exemplar with the SDK disabled")
	}
}

// TestEndpointErrorNamesItsVariable: a bad OTLP endpoint error names the
// variable it came from and never shows a password embedded in it.
func TestEndpointErrorNamesItsVariable(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		_, err := traceConfigFromEnv(Config{Getenv: envMap(v, "ftp://user:hunter2@collector:4318")})
		if err == nil || !strings.HasPrefix(err.Error(), v+": ") {
			t.Errorf("%s: error %v does not start with the variable's name", v, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the endpoint's password is in the error: %v", v, err)
		}
	}
}

// TestDefaultServiceName: without ServiceName or OTEL_SERVICE_NAME, spans
// carry OpenTelemetry's default "unknown_service:<executable>", never a
// name of some other service.
func TestDefaultServiceName(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		env  []string
		want string
	}{
		{"default", Config{}, nil, "unknown_service:" + filepath.Base(os.Args[0])},
		{"config", Config{ServiceName: "orders"}, nil, "orders"},
		{"env wins", Config{ServiceName: "orders"}, []string{"OTEL_SERVICE_NAME", "billing"}, "billing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			cfg := tc.cfg
			cfg.LogWriter, cfg.LogFormat, cfg.Getenv = io.Discard, "json", envMap(tc.env...)
			cfg.SpanProcessors = []sdktrace.SpanProcessor{rec}
			tel, err := New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
			_, span := tel.Span(t.Context(), "x")
			span.End()
			spans := rec.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			got, _ := spans[0].Resource().Set().Value(semconv.ServiceNameKey)
			if got.AsString() != tc.want {
				t.Errorf("service.name = %q, want %q", got.AsString(), tc.want)
			}
		})
	}
}
