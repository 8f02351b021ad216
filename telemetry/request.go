package telemetry

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
)

// validRequestID accepts 1 to 128 characters of [A-Za-z0-9._:-], so a
// client-chosen ID can be logged and echoed without escaping.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 16 random hex digits. It need not be unguessable,
// only unique enough to find one request's log lines.
func newRequestID() string {
	var b [requestIDLen]byte
	return string(appendRequestID(b[:0]))
}

// appendRequestID appends a new request ID to b.
func appendRequestID(b []byte) []byte {
	return strconv.AppendUint(b, rand.Uint64()|1<<63, 16) // fixed width: top bit set
}

// clientIPKey is the context key of WithClientIP.
type clientIPKey struct{}

// WithClientIP returns ctx carrying ip as the request's client address.
// A middleware outside Middleware that knows which proxies to trust sets
// it, so the access log's client_ip, the span's client.address and the
// application's own uses of ClientIP agree on one resolution; telemetry
// itself never reads proxy headers.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns r's client address: the one set with WithClientIP,
// else the TCP peer's host without the port.
func ClientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientIPKey{}).(string); ok {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
