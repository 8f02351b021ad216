package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/glasshouse-dev/glasshouse/telemetry"
)

func ExampleTelemetry_Middleware() {
	ctx := context.Background()
	tel, err := telemetry.New(ctx, telemetry.Config{
		LogWriter: io.Discard,
		Getenv:    func(string) string { return "" }, // no OTEL_*: spans are created, not exported
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = tel.Shutdown(ctx) }()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, span := tel.Span(r.Context(), "db.query")
		defer span.End()
		fmt.Fprintln(w, "route:", telemetry.Route(r.Context()))
	})
	h := tel.Middleware(mux)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/items/42", nil))
	fmt.Print(rec.Body.String())
	fmt.Println("traceresponse set:", strings.HasPrefix(rec.Header().Get("traceresponse"), "00-"))

	metrics := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(metrics, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(metrics.Body.String()) {
		if strings.HasPrefix(line, "http_server_request_duration_seconds_count") {
			fmt.Print(line)
		}
	}
	// Output:
	// route: /api/v1/items/{id}
	// traceresponse set: true
	// http_server_request_duration_seconds_count{code="200",method="GET",route="/api/v1/items/{id}"} 1
}

// ExampleNew makes the calls of the quick start in README.md (the wiring of
// examples/orders): a service named orders, its routes behind Middleware,
// and the registry on an admin mux.
func ExampleNew() {
	ctx := context.Background()
	tel, err := telemetry.New(ctx, telemetry.Config{ServiceName: "orders", LogWriter: io.Discard, Getenv: func(string) string { return "" }})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tel.Shutdown(context.WithoutCancel(ctx)) // flushes queued spans

	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tel.Span(r.Context(), "orders.get")
		defer span.End()
		tel.Logger.InfoContext(ctx, "order read") // carries trace_id, span_id, request_id
		fmt.Fprintln(w, `{"id":1}`)
	})
	public := httptest.NewServer(tel.Middleware(mux))
	defer public.Close()

	admin := http.NewServeMux()
	admin.Handle("GET /metrics", tel.MetricsHandler())

	res, err := http.Get(public.URL + "/orders/1")
	if err != nil {
		fmt.Println(err)
		return
	}
	res.Body.Close()
	fmt.Println("status:", res.StatusCode, "traceresponse set:", res.Header.Get("Traceresponse") != "")

	rec := httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "http_server_request_duration_seconds_count") {
			fmt.Print(line)
		}
	}
	// Output:
	// status: 200 traceresponse set: true
	// http_server_request_duration_seconds_count{code="200",method="GET",route="/orders/{id}"} 1
}
