package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
)

// liveServer serves f's handler on a loopback listener, so the requests of
// the tests below cross real HTTP.
func liveServer(t *testing.T, f *fixture) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(f.h)
	t.Cleanup(ts.Close)
	return ts
}

// send makes one request to ts and returns the status, headers and body,
// checking the response like fixture.do does.
func send(t *testing.T, f *fixture, ts *httptest.Server, method, path, token, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	_, pattern := f.srv.mux.Handler(r)
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, method, pattern, resp.StatusCode, resp.Header, b)
	return resp.StatusCode, resp.Header, b
}

func problemCode(t *testing.T, b []byte) string {
	t.Helper()
	var p Problem
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("problem body %s: %v", b, err)
	}
	return p.Code
}

// Duplicate keys and keys matching a field only when case is ignored are
// rejected: encoding/json would silently take the last one or the
// case-insensitive match, so two parsers could read different requests.
func TestDuplicateAndCaseVariantKeys(t *testing.T) {
	f := newFixture(t)
	ts := liveServer(t, f)
	_, token := f.signup(t, "keys")
	for _, tt := range []struct {
		name, path, token, body string
	}{
		{"duplicate name", "/api/v1/items", token, `{"name":"a","name":"b"}`},
		{"duplicate differing in case", "/api/v1/items", token, `{"name":"a","NAME":"b"}`},
		{"upper-case field", "/api/v1/items", token, `{"NAME":"a"}`},
		{"mixed-case field", "/api/v1/items", token, `{"name":"a","Description":"b"}`},
		{"long s folds to s", "/api/v1/users", "", `{"uſername":"mallory","email":"m@example.com","password":"Xyzzy-123!"}`},
		{"duplicate password", "/api/v1/users", "", `{"username":"mallory","email":"m@example.com","password":"Xyzzy-123!","password":"x"}`},
		{"duplicate login username", "/api/v1/auth/login", "", `{"username":"keys","username":"other","password":"Passw0rd!"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, b := send(t, f, ts, "POST", tt.path, tt.token, tt.body)
			if code != http.StatusBadRequest || problemCode(t, b) != "invalid_json" {
				t.Errorf("status %d %s, want 400 invalid_json", code, b)
			}
		})
	}
	if code, _, b := send(t, f, ts, "POST", "/api/v1/items", token, `{"name":"a","description":"b"}`); code != http.StatusCreated {
		t.Errorf("control request with exact keys: %d %s, want 201", code, b)
	}
}

// A token signed with the right key but claiming a lifetime far beyond
// JWT_TTL (exp 2^62: it would never expire) does not authenticate.
func TestAbsurdTokenLifetimeRejected(t *testing.T) {
	f := newFixture(t)
	ts := liveServer(t, f)
	u, good := f.signup(t, "longlived")
	now := time.Now()
	sign := func(exp time.Time) string {
		c := jwtClaims{Type: "access", RegisteredClaims: jwt.RegisteredClaims{Issuer: "glasshouse",
			Subject: itoa(int(u.ID)), IssuedAt: jwt.NewNumericDate(now), ExpiresAt: &jwt.NumericDate{Time: exp}}}
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(testKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if code, _, b := send(t, f, ts, "GET", "/api/v1/users/me", good, ""); code != http.StatusOK {
		t.Fatalf("issued token: %d %s", code, b)
	}
	for name, tok := range map[string]string{
		"exp 2^62":    sign(time.Unix(1<<62, 0)),
		"exp in 10 y": sign(now.AddDate(10, 0, 0)),
	} {
		code, _, b := send(t, f, ts, "GET", "/api/v1/users/me", tok, "")
		if code != http.StatusUnauthorized || problemCode(t, b) != "invalid_token" {
			t.Errorf("%s: %d %s, want 401 invalid_token", name, code, b)
		}
	}
}

// A password containing the username or email address is refused at
// signup with 422 naming the password field.
func TestPasswordContainingIdentityRejected(t *testing.T) {
	f := newFixture(t)
	ts := liveServer(t, f)
	for name, body := range map[string]string{
		"equals username":   `{"username":"Pw_User9","email":"p@example.com","password":"pW_uSER9"}`,
		"contains username": `{"username":"zoe_w","email":"z@example.com","password":"My-ZOE_W-pass1"}`,
		"contains email":    `{"username":"quinn","email":"q.r@example.com","password":"Q.R@example.com1"}`,
	} {
		code, _, b := send(t, f, ts, "POST", "/api/v1/users", "", body)
		var p Problem
		json.Unmarshal(b, &p)
		if code != http.StatusUnprocessableEntity || p.Code != "validation_failed" || len(p.Errors) != 1 || p.Errors[0].Field != "password" {
			t.Errorf("%s: %d %s, want 422 validation_failed naming only password", name, code, b)
		}
	}
}

// lostAnswerStore commits an idempotent create and then reports the
// database unavailable, once: the client sees a 503 for a write that
// happened, the case a retry with the same Idempotency-Key must survive.
type lostAnswerStore struct {
	*sqlite.Store
	lose atomic.Bool
}

func (s *lostAnswerStore) CreateItemOnce(ctx context.Context, it *app.Item, key app.IdempotencyKey) (bool, error) {
	replayed, err := s.Store.CreateItemOnce(ctx, it, key)
	if err == nil && s.lose.CompareAndSwap(true, false) {
		return false, fmt.Errorf("commit acknowledged too late: %w", app.ErrUnavailable)
	}
	return replayed, err
}

func TestIdempotencyKey(t *testing.T) {
	ls := &lostAnswerStore{}
	f := newFixture(t, func(o *Options) { ls.Store = o.Store.(*sqlite.Store); o.Store = ls })
	ts := liveServer(t, f)
	_, token := f.signup(t, "retrier")
	_, other := f.signup(t, "bystander")
	total := func(tok string) int {
		t.Helper()
		_, _, b := send(t, f, ts, "GET", "/api/v1/items", tok, "")
		var l itemList
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		return l.Total
	}

	// The first attempt commits but its answer is lost (503); the retry
	// with the same key gets the item, and there is only one.
	ls.lose.Store(true)
	if code, _, b := send(t, f, ts, "POST", "/api/v1/items", token, `{"name":"Milk","description":"2 l"}`, "Idempotency-Key", "key-1"); code != http.StatusServiceUnavailable {
		t.Fatalf("first attempt: %d %s, want the simulated 503", code, b)
	}
	code, h, first := send(t, f, ts, "POST", "/api/v1/items", token, `{"description":"2 l", "name":"Milk"}`, "Idempotency-Key", "key-1")
	if code != http.StatusCreated || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry after a lost answer: %d %q %s, want a replayed 201", code, h.Get("Idempotent-Replayed"), first)
	}
	if n := total(token); n != 1 {
		t.Errorf("items after a retried POST = %d, want 1", n)
	}
	var created app.Item
	json.Unmarshal(first, &created)

	// Every further retry gets the same status, headers and body, also
	// after the item has changed, and with the key quoted.
	send(t, f, ts, "PUT", fmt.Sprintf("/api/v1/items/%d", created.ID), token, `{"name":"Oat milk"}`)
	for _, k := range []string{"key-1", `"key-1"`} {
		code, h, b := send(t, f, ts, "POST", "/api/v1/items", token, `{"name":"Milk","description":"2 l"}`, "Idempotency-Key", k)
		if code != http.StatusCreated || string(b) != string(first) || h.Get("Location") != fmt.Sprintf("/api/v1/items/%d", created.ID) {
			t.Errorf("retry with key %s: %d %s (Location %q), want 201 %s", k, code, b, h.Get("Location"), first)
		}
	}
	if n := total(token); n != 1 {
		t.Errorf("items after retries = %d, want 1", n)
	}

	// The same key with another body is refused; nothing is created.
	code, _, b := send(t, f, ts, "POST", "/api/v1/items", token, `{"name":"Bread"}`, "Idempotency-Key", "key-1")
	if code != http.StatusUnprocessableEntity || problemCode(t, b) != "idempotency_key_reused" {
		t.Errorf("same key, other body: %d %s, want 422 idempotency_key_reused", code, b)
	}
	// Keys are per user.
	if code, h, b := send(t, f, ts, "POST", "/api/v1/items", other, `{"name":"Milk","description":"2 l"}`, "Idempotency-Key", "key-1"); code != http.StatusCreated || h.Get("Idempotent-Replayed") != "" {
		t.Errorf("another user's first use of the key: %d %q %s, want a fresh 201", code, h.Get("Idempotent-Replayed"), b)
	}
	// Without a key, every POST creates.
	for range 2 {
		send(t, f, ts, "POST", "/api/v1/items", token, `{"name":"Milk","description":"2 l"}`)
	}
	if n := total(token); n != 3 {
		t.Errorf("items after two POSTs without a key = %d, want 3", n)
	}
	if n := total(other); n != 1 {
		t.Errorf("other user's items = %d, want 1", n)
	}

	for name, k := range map[string]string{
		"empty": `""`, "too long": strings.Repeat("k", 256), "non-ASCII": "clé", "space": "a b", "backslash": `a\b`,
	} {
		code, _, b := send(t, f, ts, "POST", "/api/v1/items", token, `{"name":"x"}`, "Idempotency-Key", k)
		if code != http.StatusBadRequest || problemCode(t, b) != "invalid_idempotency_key" {
			t.Errorf("key %s: %d %s, want 400 invalid_idempotency_key", name, code, b)
		}
	}
	r, _ := http.NewRequestWithContext(t.Context(), "POST", ts.URL+"/api/v1/items", strings.NewReader(`{"name":"x"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Add("Idempotency-Key", "a")
	r.Header.Add("Idempotency-Key", "b")
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("two Idempotency-Key headers: %d, want 400", resp.StatusCode)
	}
}
