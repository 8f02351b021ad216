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
