package main

import (
	"net/http"
	"net/http/pprof"

	"github.com/glasshouse-dev/glasshouse/app/fault"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// adminRoutes is everything served on ADMIN_ADDR (loopback by default),
// never on the public port: Prometheus metrics, the pprof profiles and the
// fault injector (/debug/fault).
func adminRoutes(tel *telemetry.Telemetry, inj *fault.Injector) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.MetricsHandler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/fault", inj.Handler())
	return mux
}
