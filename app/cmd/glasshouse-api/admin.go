package main

import (
	"net/http"
	"net/http/pprof"

	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// adminRoutes is everything served on ADMIN_ADDR (loopback by default),
// never on the public port: Prometheus metrics and the pprof profiles.
// Operational endpoints added later (fault injection) belong here too.
func adminRoutes(tel *telemetry.Telemetry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.MetricsHandler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
