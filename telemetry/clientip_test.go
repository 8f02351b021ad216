package telemetry

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

// TestClientIPFromContext: a client address set with WithClientIP outside
// Middleware is the access log's client_ip and the span's client.address,
// with the TCP peer kept as network.peer.address; without one, both are
// the peer.
func TestClientIPFromContext(t *testing.T) {
	for _, tc := range []struct {
		name, set  string
		wantClient string
		wantPeer   string // "" when network.peer.address must be absent
	}{
		{name: "peer", set: "", wantClient: "192.0.2.1"},
		{name: "resolved", set: "203.0.113.7", wantClient: "203.0.113.7", wantPeer: "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			h := e.handler
			if tc.set != "" {
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					e.handler.ServeHTTP(w, r.WithContext(WithClientIP(r.Context(), tc.set)))
				})
			}
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/items/1", nil)
			h.ServeHTTP(httptest.NewRecorder(), req)

			lines := logLines(t, e.logs.String())
			access := lines[len(lines)-1]
			if got := access["client_ip"]; got != tc.wantClient {
				t.Errorf("access log client_ip = %v, want %v", got, tc.wantClient)
			}
			span := spanNamed(t, e.spans.Ended(), "GET /items/{id}")
			attrs := map[attribute.Key]string{}
			for _, kv := range span.Attributes() {
				attrs[kv.Key] = kv.Value.String()
			}
			if got := attrs["client.address"]; got != tc.wantClient {
				t.Errorf("span client.address = %q, want %q", got, tc.wantClient)
			}
			if got := attrs["network.peer.address"]; got != tc.wantPeer {
				t.Errorf("span network.peer.address = %q, want %q", got, tc.wantPeer)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	for _, tc := range []struct {
		remote, set, want string
	}{
		{"192.0.2.1:1234", "", "192.0.2.1"},
		{"[2001:db8::1]:443", "", "2001:db8::1"},
		{"@", "", "@"}, // a Unix socket peer has no port
		{"192.0.2.1:1234", "203.0.113.9", "203.0.113.9"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		if tc.set != "" {
			r = r.WithContext(WithClientIP(r.Context(), tc.set))
		}
		if got := ClientIP(r); got != tc.want {
			t.Errorf("ClientIP(remote %q, set %q) = %q, want %q", tc.remote, tc.set, got, tc.want)
		}
	}
}
