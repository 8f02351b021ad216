package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"

	"github.com/glasshouse-dev/glasshouse/app/fault"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// adminRoutes is everything served on ADMIN_ADDR (loopback by default),
// never on the public port: Prometheus metrics, the pprof profiles and the
// fault injector (/debug/fault), behind guardAdmin.
func adminRoutes(tel *telemetry.Telemetry, inj *fault.Injector, hosts []string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.MetricsHandler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/fault", inj.Handler())
	return guardAdmin(hosts, mux)
}

// guardAdmin keeps browsers out of the admin listener. A web page open on
// the operator's machine can send requests to 127.0.0.1:8081 (cross-site
// request forgery: switching faults on), and with DNS rebinding it can
// read the answers (metrics, profiles). Both are refused with 403:
//
//   - any request with an Origin header: browsers send one on cross-origin
//     and on non-GET requests, scrapers and curl do not;
//   - any Host that is not an IP address, localhost or one of hosts
//     (ADMIN_HOSTS): DNS rebinding needs a host name that the attacker
//     controls, so an IP address (a scraper using the pod IP, say) is safe.
func guardAdmin(hosts []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			adminForbidden(w, "cross_origin", "the admin listener refuses requests that carry an Origin header (browsers)")
			return
		}
		if !adminHostAllowed(r.Host, hosts) {
			adminForbidden(w, "host_not_allowed", "the Host header must be an IP address, localhost or a name listed in ADMIN_HOSTS")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func adminHostAllowed(hostport string, hosts []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil || host == "localhost" {
		return true
	}
	return slices.Contains(hosts, host)
}

func adminForbidden(w http.ResponseWriter, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusForbidden)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(http.StatusForbidden), "status": http.StatusForbidden,
		"code": code, "detail": detail,
	})
}
