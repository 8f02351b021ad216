package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/auth"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
	"github.com/glasshouse-dev/glasshouse/internal/syncbuf"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// testKey signs test tokens; cheapHash keeps argon2id fast under -race.
var (
	testKey   = []byte("test-key-test-key-test-key-test-key!")
	cheapHash = auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
)

type fixture struct {
	srv      *server
	h        http.Handler
	store    app.Store
	tel      *telemetry.Telemetry
	tokens   *auth.Tokens
	logs     *syncbuf.Buffer
	draining *atomic.Bool
}

func newTelemetry(t testing.TB, logs io.Writer) *telemetry.Telemetry {
	t.Helper()
	tel, err := telemetry.New(context.Background(), telemetry.Config{
		ServiceVersion: "test",
		LogFormat:      "json",
		LogWriter:      logs,
		Getenv:         func(string) string { return "" },
	})
	if err != nil {
		t.Fatalf("telemetry.New: %v", err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	return tel
}

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newFixture builds the real handler on a real SQLite store. mods adjust
// the Options (wrap the store, change limits, add checks).
func newFixture(t testing.TB, mods ...func(*Options)) *fixture {
	t.Helper()
	logs := &syncbuf.Buffer{}
	tel := newTelemetry(t, logs)
	tokens, err := auth.NewTokens(testKey, 15*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	f := &fixture{tel: tel, tokens: tokens, logs: logs, draining: new(atomic.Bool)}
	o := Options{
		Store:            st,
		Limiter:          ratelimit.NewMemory(nil),
		Telemetry:        tel,
		Hasher:           auth.NewHasher(cheapHash, 0),
		Tokens:           tokens,
		Checks:           []app.Check{{Name: "database", Check: st.Ping}},
		Draining:         f.draining,
		Version:          "v1.2.3-test",
		Limits:           DefaultLimits,
		ConcurrencyLimit: 64,
	}
	for _, m := range mods {
		m(&o)
	}
	f.store = o.Store
	f.srv = newServer(o)
	f.h = f.srv.chain(f.srv.mux)
	return f
}

// req describes one request; hdr holds header name/value pairs.
type req struct {
	method, path string
	body         string
	token        string
	hdr          []string
	remote       string // client address, default httptest's 192.0.2.1:1234
}

// do serves rq and checks what every response must satisfy: no 5xx unless
// the test expects one (allow5xx), problem+json for every error, and a
// status the OpenAPI document lists for the matched route.
func (f *fixture) do(t testing.TB, rq req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, rq.path, body)
	if rq.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if rq.remote != "" {
		r.RemoteAddr = rq.remote
	}
	if rq.token != "" {
		r.Header.Set("Authorization", "Bearer "+rq.token)
	}
	for i := 0; i+1 < len(rq.hdr); i += 2 {
		if rq.hdr[i+1] == "" {
			r.Header.Del(rq.hdr[i])
		} else {
			r.Header.Set(rq.hdr[i], rq.hdr[i+1])
		}
	}
	_, pattern := f.srv.mux.Handler(r)
	if !canonicalPath(r.URL.EscapedPath()) {
		pattern = "" // dispatch answers 404 before the mux would redirect
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	checkResponse(t, rq.method, pattern, w.Code, w.Header(), w.Body.Bytes())
	return w
}

func checkResponse(t testing.TB, method, pattern string, code int, h http.Header, body []byte) {
	t.Helper()
	if code >= 400 {
		if ct := h.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s %s: status %d with Content-Type %q, want application/problem+json", method, pattern, code, ct)
		}
		var p Problem
		if err := json.Unmarshal(body, &p); err != nil || p.Status != code || p.Code == "" || p.Title == "" || p.Type != "about:blank" {
			t.Errorf("%s %s: problem body %s (err %v) does not match status %d", method, pattern, body, err, code)
		}
	}
	if pattern != "" && code != StatusClientClosedRequest {
		if !documented(pattern, code) {
			t.Errorf("%s answered %d, which openapi.json does not list", pattern, code)
		}
	}
	for _, name := range []string{"X-Request-Id", "X-Process-Time", "X-Content-Type-Options"} {
		if h.Get(name) == "" {
			t.Errorf("%s %s: response has no %s header", method, pattern, name)
		}
	}
}

// documented reports whether the OpenAPI document lists status for the
// ServeMux pattern ("GET /api/v1/items/{id}").
func documented(pattern string, status int) bool {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "...}", "}") // ServeMux {x...} is OpenAPI {x}
	paths := openAPI()["paths"].(map[string]any)
	item, ok := paths[path].(map[string]any)
	if !ok {
		return false
	}
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok {
		return false
	}
	_, ok = op["responses"].(map[string]any)[itoa(status)]
	return ok
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func decodeJSON[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, w.Body, err)
	}
	return v
}

func problemOf(t testing.TB, w *httptest.ResponseRecorder) Problem {
	t.Helper()
	return decodeJSON[Problem](t, w)
}

// signup creates a user and logs in, returning the user and an access token.
func (f *fixture) signup(t testing.TB, username string) (userResponse, string) {
	t.Helper()
	body := `{"username":"` + username + `","email":"` + strings.ToLower(username) + `@example.com","password":"Passw0rd!"}`
	w := f.do(t, req{method: "POST", path: "/api/v1/users", body: body})
	if w.Code != http.StatusCreated {
		t.Fatalf("signup %s: %d %s", username, w.Code, w.Body)
	}
	u := decodeJSON[userResponse](t, w)
	w = f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"` + username + `","password":"Passw0rd!"}`})
	if w.Code != http.StatusOK {
		t.Fatalf("login %s: %d %s", username, w.Code, w.Body)
	}
	return u, decodeJSON[tokenResponse](t, w).AccessToken
}

func (f *fixture) createItem(t testing.TB, token, name string) app.Item {
	t.Helper()
	w := f.do(t, req{method: "POST", path: "/api/v1/items", token: token, body: `{"name":"` + name + `","description":"d"}`})
	if w.Code != http.StatusCreated {
		t.Fatalf("create item: %d %s", w.Code, w.Body)
	}
	return decodeJSON[app.Item](t, w)
}
