package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// ParseTrustedProxies reads a comma-separated list of CIDRs or single
// addresses (e.g. "10.0.0.0/8, 192.168.1.7, fd00::/8"); empty means none.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR (like 10.0.0.0/8) or an IP address", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// proxies resolves the client address of requests that arrive through
// trusted proxies.
type proxies []netip.Prefix

func (ps proxies) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one X-Forwarded-For entry: an address, optionally with a
// port or in brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// clientOf returns the client address of r, and false when it is the TCP
// peer itself. Only a peer inside the trusted proxies is believed: then
// the client is the right-most X-Forwarded-For entry that is not itself a
// trusted proxy (entries to its left were written by the client and may
// be forged), or every entry being a trusted proxy the left-most one; and
// without a usable X-Forwarded-For, X-Real-IP. An entry that is not an
// address stops the walk: what lies left of it cannot be trusted, so the
// client is the last proxy that wrote a valid one.
func (ps proxies) clientOf(r *http.Request) (string, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !ps.trusted(peer) {
		return "", false
	}
	var client netip.Addr
	xff := r.Header.Values("X-Forwarded-For")
walk:
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			if strings.TrimSpace(hops[j]) == "" {
				continue
			}
			a, ok := parseHop(hops[j])
			if !ok {
				break walk
			}
			client = a
			if !ps.trusted(a) {
				break walk
			}
		}
	}
	if !client.IsValid() {
		if a, ok := parseHop(r.Header.Get("X-Real-Ip")); ok {
			client = a
		}
	}
	if !client.IsValid() {
		return "", false
	}
	return client.String(), true
}

// resolveClient puts the client address found behind trusted proxies in
// the context (telemetry.WithClientIP), where the rate limits, the access
// log and the span read it. Without trusted proxies it is not in the
// chain: the TCP peer is the client.
func (s *server) resolveClient(next http.Handler) http.Handler {
	ps := proxies(s.opts.TrustedProxies)
	if len(ps) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ip, ok := ps.clientOf(r); ok {
			r = r.WithContext(telemetry.WithClientIP(r.Context(), ip))
		}
		next.ServeHTTP(w, r)
	})
}

// clientIP is the request's client address: the TCP peer, or the client
// behind a trusted proxy (resolveClient). Telemetry logs and traces the
// same one.
func clientIP(r *http.Request) string { return telemetry.ClientIP(r) }
