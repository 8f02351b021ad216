package httpapi

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/auth"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
)

// chainOptions are the Options of a server built with NewServer, the whole
// production chain, on a real store.
func chainOptions(t *testing.T) Options {
	t.Helper()
	tokens, err := auth.NewTokens(testKey, 15*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Store:     openStore(t),
		Limiter:   ratelimit.NewMemory(nil),
		Telemetry: newTelemetry(t, io.Discard),
		Hasher:    auth.NewHasher(cheapHash, 0),
		Tokens:    tokens,
		Limits:    DefaultLimits,
	}
}

// readerFromWriter is a connection's ResponseWriter that, like net/http's,
// can copy a body with io.ReaderFrom (sendfile or splice on a socket).
type readerFromWriter struct {
	*httptest.ResponseRecorder
	readFrom int
}

func (w *readerFromWriter) ReadFrom(src io.Reader) (int64, error) {
	w.readFrom++
	w.WriteHeader(http.StatusOK) // a no-op after the first
	return w.Body.ReadFrom(src)
}

// TestChainKeepsReaderFrom: a file served through every middleware of
// NewServer reaches the connection's ReadFrom (what lets net/http use
// sendfile), and the response still carries X-Process-Time. No layer may
// hide io.ReaderFrom behind a wrapper of its own.
func TestChainKeepsReaderFrom(t *testing.T) {
	h := NewServer(chainOptions(t))
	w := &readerFromWriter{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(w, httptest.NewRequest("GET", "/docs/assets/redoc-init.js", nil))
	if w.Code != http.StatusOK || w.Body.Len() == 0 {
		t.Fatalf("GET /docs/assets/redoc-init.js: %d, %d bytes", w.Code, w.Body.Len())
	}
	if w.readFrom == 0 {
		t.Error("the body was copied with Write: io.ReaderFrom of the connection was not reached")
	}
	if pt := w.Header().Get("X-Process-Time"); !strings.HasPrefix(pt, "0.") {
		t.Errorf("X-Process-Time = %q, want seconds", pt)
	}
}

// TestChainKeepsHijacker: over a real connection, a handler inside
// NewServer's chain can hijack it (WebSocket-style upgrade) and talk on
// it, and telemetry records the request as 101.
func TestChainKeepsHijacker(t *testing.T) {
	o := chainOptions(t)
	o.Inject = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/upgrade" {
				next.ServeHTTP(w, r)
				return
			}
			hj, ok := w.(http.Hijacker)
			if !ok {
				http.Error(w, "the ResponseWriter hides http.Hijacker", http.StatusInternalServerError)
				return
			}
			conn, brw, err := hj.Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString("echo: " + line)
			brw.Flush()
		})
	}
	srv := httptest.NewServer(NewServer(o))
	t.Cleanup(srv.Close)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second)) // a hang guard only
	if _, err := io.WriteString(conn, "GET /upgrade HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d (%s), want 101", resp.StatusCode, bytes.TrimSpace(b))
	}
	got, _ := br.ReadString('\n') // after the 101, the raw connection
	if got != "echo: hello\n" {
		t.Errorf("after the upgrade the connection said %q, want %q", got, "echo: hello\n")
	}
	// The request is recorded once the handler returns, just after it
	// closed the connection.
	for deadline := time.Now().Add(30 * time.Second); !recorded101(t, o); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(`no http_server_request_duration_seconds series with code="101"`)
		}
	}
}

func recorded101(t *testing.T, o Options) bool {
	t.Helper()
	mfs, err := o.Telemetry.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "http_server_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "code" && lp.GetValue() == "101" {
					return true
				}
			}
		}
	}
	return false
}
