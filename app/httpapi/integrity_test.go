package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
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
