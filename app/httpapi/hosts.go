package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// ParseAllowedHosts reads a comma-separated list of host names or IP
// addresses, each optionally "*." followed by a domain (any subdomain of
// it, not the domain itself), or "*" for any host. Empty means any host.
func ParseAllowedHosts(s string) ([]string, error) {
	var out []string
	for _, h := range strings.Split(s, ",") {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if h == "" {
			continue
		}
		if h == "*" {
			return nil, nil
		}
		name := strings.TrimPrefix(h, "*.")
		if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") && name == h {
			name = name[1 : len(name)-1] // a bracketed IPv6 address
			h = name
		}
		if name == "" || strings.ContainsAny(name, "*/:@ ") && net.ParseIP(name) == nil {
			return nil, fmt.Errorf("%q is not a host name (like api.example.com), *.example.com, an IP address or *", h)
		}
		out = append(out, h)
	}
	return out, nil
}

// hostAllowed reports whether the Host header value hostport (with or
// without a port) is one of hosts, or a subdomain of a "*." entry.
func hostAllowed(hostport string, hosts []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else {
		host = strings.Trim(host, "[]")
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return false
	}
	for _, h := range hosts {
		if domain, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+domain) {
				return true
			}
		} else if host == h {
			return true
		}
	}
	return false
}

// allowHost answers 400 invalid_host to a request whose Host is not in
// AllowedHosts, health probes included: a name the deployment does not
// serve is how DNS rebinding and poisoned absolute links (password-reset
// mails, Location headers) start. Orchestrators probe by the pod's IP,
// which must therefore be listed too (README: ALLOWED_HOSTS). Without
// AllowedHosts it is not in the chain.
func (s *server) allowHost(next http.Handler) http.Handler {
	hosts := s.opts.AllowedHosts
	if len(hosts) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, hosts) {
			writeProblem(w, r, Problem{Status: http.StatusBadRequest, Code: "invalid_host",
				Detail: "this server does not answer for that Host header"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
