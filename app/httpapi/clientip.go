package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// Proxies are the peers trusted to name the client in X-Forwarded-For and
// X-Real-IP. The zero value trusts none.
type Proxies struct {
	Prefixes []netip.Prefix
	// Unix trusts every peer connected over a Unix socket: the socket
	// file's mode decides who may connect (a local proxy).
	Unix bool
}

// Empty reports whether no peer is trusted.
func (ps Proxies) Empty() bool { return len(ps.Prefixes) == 0 && !ps.Unix }

// ParseTrustedProxies reads a comma-separated list of CIDRs, single
// addresses and the word "unix" (peers on a Unix socket), e.g.
// "10.0.0.0/8, 192.168.1.7, fd00::/8, unix"; empty means none.
func ParseTrustedProxies(s string) (Proxies, error) {
	var out Proxies
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if f == "unix" {
			out.Unix = true
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out.Prefixes = append(out.Prefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return Proxies{}, fmt.Errorf("%q is not a CIDR (like 10.0.0.0/8), an IP address or unix", f)
		}
		a = a.Unmap()
		out.Prefixes = append(out.Prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (ps Proxies) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps.Prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// trustedPeer reports whether r's TCP (or Unix socket) peer is trusted.
func (ps Proxies) trustedPeer(r *http.Request) bool {
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la.Network() == "unix" {
		return ps.Unix
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	return err == nil && ps.trusted(peer)
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
func (ps Proxies) clientOf(r *http.Request) (string, bool) {
	if !ps.trustedPeer(r) {
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
	ps := s.opts.TrustedProxies
	if ps.Empty() {
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
