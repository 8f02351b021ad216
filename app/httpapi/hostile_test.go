package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
)

// TestHostileInput sends malformed, oversized and malicious requests over
// real HTTP. Every one must get its documented 4xx with a problem+json body,
// never a 5xx, and the server must keep serving afterwards.
func TestHostileInput(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		// Login cases share one client; the limits are tested elsewhere.
		o.Limits = Limits{User: ratelimit.Limit{Rate: 1000, Period: time.Second, Burst: 1000}}
	})
	ts := httptest.NewUnstartedServer(f.h)
	ts.Config.MaxHeaderBytes = 64 << 10
	ts.Start()
	t.Cleanup(ts.Close)

	_, token := f.signup(t, "victim")
	item := f.createItem(t, token, "precious")
	itemPath := fmt.Sprintf("/api/v1/items/%d", item.ID)

	now := time.Now()
	claims := func(typ, sub string, exp time.Time) jwtClaims {
		return jwtClaims{Type: typ, RegisteredClaims: jwt.RegisteredClaims{Issuer: "glasshouse", Subject: sub,
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp)}}
	}
	sign := func(m jwt.SigningMethod, key any, c jwtClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := claims("access", "1", now.Add(time.Hour))
	algNone := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good)
	wrongKey := sign(jwt.SigningMethodHS256, []byte("not-the-key-not-the-key-not-the-key!"), good)
	expired := sign(jwt.SigningMethodHS256, testKey, claims("access", "1", now.Add(-time.Minute)))
	refresh := sign(jwt.SigningMethodHS256, testKey, claims("refresh", "1", now.Add(time.Hour)))
	hs512 := sign(jwt.SigningMethodHS512, testKey, good)
	subSQL := sign(jwt.SigningMethodHS256, testKey, claims("access", "1 OR 1=1", now.Add(time.Hour)))

	const signup, login, items = "/api/v1/users", "/api/v1/auth/login", "/api/v1/items"
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	deepObj := `{"name":` + strings.Repeat(`{"a":`, 20_000) + `1` + strings.Repeat(`}`, 20_000) + `}`
	validSignup := `{"username":"mallory","email":"m@example.com","password":"Passw0rd!"}`

	type tc struct {
		name         string
		method, path string
		body         string
		ct           string // Content-Type; "-" for none
		auth         string // Authorization header
		hdr          map[string]string
		chunked      bool // no Content-Length: the limit must cut the stream
		status       int
	}
	cases := []tc{
		// Malformed bodies.
		{name: "empty body", method: "POST", path: signup, ct: "application/json", status: 400},
		{name: "whitespace body", method: "POST", path: signup, body: "   \n", status: 400},
		{name: "truncated object", method: "POST", path: signup, body: `{"username":"x"`, status: 400},
		{name: "unquoted key", method: "POST", path: signup, body: `{username:"x"}`, status: 400},
		{name: "single quotes", method: "POST", path: signup, body: `{'username':'x'}`, status: 400},
		{name: "trailing comma", method: "POST", path: signup, body: `{"username":"x",}`, status: 400},
		{name: "top-level array", method: "POST", path: signup, body: `[]`, status: 400},
		{name: "top-level string", method: "POST", path: signup, body: `"hello"`, status: 400},
		{name: "top-level number", method: "POST", path: signup, body: `42`, status: 400},
		{name: "top-level null", method: "POST", path: signup, body: `null`, status: 422},
		{name: "two objects", method: "POST", path: signup, body: validSignup + validSignup, status: 400},
		{name: "trailing garbage", method: "POST", path: signup, body: validSignup + " x", status: 400},
		{name: "BOM prefix", method: "POST", path: signup, body: "\xef\xbb\xbf" + validSignup, status: 400},
		{name: "XML body", method: "POST", path: signup, body: `<user><name>x</name></user>`, status: 400},
		{name: "deeply nested arrays", method: "POST", path: signup, body: deep, status: 400},
		{name: "deeply nested objects", method: "POST", path: items, auth: "Bearer " + token, body: deepObj, status: 400},
		{name: "NaN literal", method: "POST", path: items, auth: "Bearer " + token, body: `{"name":NaN}`, status: 400},
		// Wrong types and nulls.
		{name: "username number", method: "POST", path: signup, body: `{"username":123,"email":"a@example.com","password":"Passw0rd!"}`, status: 400},
		{name: "username array", method: "POST", path: signup, body: `{"username":["a"],"email":"a@example.com","password":"Passw0rd!"}`, status: 400},
		{name: "password object", method: "POST", path: signup, body: `{"username":"abc","email":"a@example.com","password":{"$ne":null}}`, status: 400},
		{name: "email bool", method: "POST", path: signup, body: `{"username":"abc","email":true,"password":"Passw0rd!"}`, status: 400},
		{name: "all null", method: "POST", path: signup, body: `{"username":null,"email":null,"password":null}`, status: 422},
		{name: "item name null", method: "POST", path: items, auth: "Bearer " + token, body: `{"name":null}`, status: 422},
		{name: "item name number", method: "POST", path: items, auth: "Bearer " + token, body: `{"name":1e400}`, status: 400},
		{name: "item description object", method: "POST", path: items, auth: "Bearer " + token, body: `{"name":"a","description":{}}`, status: 400},
		// Mass assignment and unknown fields.
		{name: "item owner_id injection", method: "POST", path: items, auth: "Bearer " + token, body: `{"name":"a","owner_id":2}`, status: 400},
		{name: "item id injection", method: "PUT", path: itemPath, auth: "Bearer " + token, body: `{"id":999,"name":"a"}`, status: 400},
		{name: "signup is_admin", method: "POST", path: signup, body: `{"username":"abc","email":"a@example.com","password":"Passw0rd!","is_admin":true}`, status: 400},
		// encoding/json matches keys case-insensitively: this is the field
		// "username", and the answer the same as for a wrong password.
		{name: "case-variant field", method: "POST", path: login, body: `{"USERNAME":"victim","password":"x"}`, status: 400},
		// Encoding.
		{name: "invalid UTF-8", method: "POST", path: signup, body: "{\"username\":\"\xff\xfe\",\"email\":\"a@example.com\",\"password\":\"Passw0rd!\"}", status: 400},
		{name: "overlong UTF-8 slash", method: "POST", path: items, auth: "Bearer " + token, body: "{\"name\":\"\xc0\xaf\"}", status: 400},
		{name: "lone surrogate escape", method: "POST", path: items, auth: "Bearer " + token, body: `{"name":"\ud800"}`, status: 201},
		{name: "NUL in username", method: "POST", path: signup, body: `{"username":"ab\u0000c","email":"a@example.com","password":"Passw0rd!"}`, status: 422},
		{name: "control char in item", method: "POST", path: items, auth: "Bearer " + token, body: `{"name":"a\u001bb"}`, status: 422},
		{name: "RTL override in item", method: "POST", path: items, auth: "Bearer " + token, body: `{"name":"a\u202eb"}`, status: 201},
		// Sizes.
		{name: "body over the limit", method: "POST", path: signup, body: `{"username":"` + strings.Repeat("a", 2<<20) + `"}`, status: 413},
		{name: "huge but fitting field", method: "POST", path: items, auth: "Bearer " + token, body: `{"name":"` + strings.Repeat("x", 500_000) + `"}`, status: 422},
		{name: "password of 10k chars", method: "POST", path: login, body: `{"username":"victim","password":"` + strings.Repeat("P", 10_000) + `"}`, status: 422},
		{name: "overlong URL", method: "GET", path: "/health/live?q=" + strings.Repeat("a", 10_000), status: 414},
		{name: "overlong header", method: "GET", path: "/health", hdr: map[string]string{"X-Junk": strings.Repeat("j", 20_000)}, status: 431},
		{name: "many headers", method: "GET", path: "/api/v1/users/me", hdr: manyHeaders(400), auth: "Bearer " + token, status: 431},
		// Media types.
		{name: "no content type", method: "POST", path: signup, body: validSignup, ct: "-", status: 415},
		{name: "text/plain", method: "POST", path: signup, body: validSignup, ct: "text/plain", status: 415},
		{name: "multipart", method: "POST", path: signup, body: validSignup, ct: "multipart/form-data; boundary=x", status: 415},
		{name: "json with utf-16 charset", method: "POST", path: signup, body: validSignup, ct: "application/json; charset=utf-16", status: 415},
		{name: "malformed content type", method: "POST", path: signup, body: validSignup, ct: "application/json;;;=", status: 415},
		// Injection strings are data.
		{name: "SQL injection username signup", method: "POST", path: signup, body: `{"username":"x' OR '1'='1","email":"a@example.com","password":"Passw0rd!"}`, status: 422},
		{name: "SQL injection login", method: "POST", path: login, body: `{"username":"' OR 1=1 --","password":"' OR 1=1 --"}`, status: 401},
		{name: "SQL injection UNION login", method: "POST", path: login, body: `{"username":"a\" UNION SELECT 1 --","password":"x"}`, status: 401},
		{name: "SQL injection item id", method: "GET", path: "/api/v1/items/1%20OR%201=1", auth: "Bearer " + token, status: 404},
		{name: "SQL injection limit", method: "GET", path: "/api/v1/items?limit=1;DROP%20TABLE%20items", auth: "Bearer " + token, status: 400},
		{name: "NoSQL operator login", method: "POST", path: login, body: `{"username":{"$gt":""},"password":"x"}`, status: 400},
		// Paths.
		{name: "traversal encoded", method: "GET", path: "/api/v1/items/..%2F..%2Fetc%2Fpasswd", auth: "Bearer " + token, status: 404},
		{name: "traversal raw", method: "GET", path: "/api/v1/items/../../etc/passwd", auth: "Bearer " + token, status: 404},
		{name: "dot segment to real route", method: "GET", path: "/api/v1/users/../items", auth: "Bearer " + token, status: 404},
		{name: "double slash", method: "GET", path: "//api/v1/items", auth: "Bearer " + token, status: 404},
		{name: "encoded NUL id", method: "GET", path: "/api/v1/items/%00", auth: "Bearer " + token, status: 404},
		{name: "negative id", method: "DELETE", path: "/api/v1/items/-1", auth: "Bearer " + token, status: 404},
		{name: "int64 overflow id", method: "GET", path: "/api/v1/items/9223372036854775808", auth: "Bearer " + token, status: 404},
		{name: "unknown path", method: "GET", path: "/wp-admin/install.php", status: 404},
		{name: "dotfile", method: "GET", path: "/.env", status: 404},
		{name: "PATCH item", method: "PATCH", path: itemPath, auth: "Bearer " + token, body: `{"name":"x"}`, status: 405},
		{name: "TRACE", method: "TRACE", path: "/health", status: 405},
		{name: "custom method", method: "FOO", path: signup, status: 405},
		// Tokens.
		{name: "no token", method: "GET", path: itemPath, status: 401},
		{name: "basic auth", method: "GET", path: itemPath, auth: "Basic dmljdGltOlBhc3N3MHJkIQ==", status: 401},
		{name: "bearer empty", method: "GET", path: itemPath, auth: "Bearer", status: 401},
		{name: "garbage token", method: "GET", path: itemPath, auth: "Bearer garbage", status: 401},
		{name: "alg none", method: "GET", path: itemPath, auth: "Bearer " + algNone, status: 401},
		{name: "wrong key", method: "GET", path: itemPath, auth: "Bearer " + wrongKey, status: 401},
		{name: "expired", method: "GET", path: itemPath, auth: "Bearer " + expired, status: 401},
		{name: "refresh type", method: "GET", path: itemPath, auth: "Bearer " + refresh, status: 401},
		{name: "HS512", method: "GET", path: itemPath, auth: "Bearer " + hs512, status: 401},
		{name: "subject injection", method: "GET", path: itemPath, auth: "Bearer " + subSQL, status: 401},
		{name: "token with extra segment", method: "GET", path: itemPath, auth: "Bearer " + token + ".x", status: 401},
		{name: "huge token", method: "GET", path: itemPath, auth: "Bearer " + strings.Repeat("a", 9000), status: 401},
		// Headers.
		{name: "hostile request id", method: "GET", path: "/nope", hdr: map[string]string{"X-Request-Id": "<script>alert(1)</script>"}, status: 404},
		{name: "chunked body over the limit", method: "POST", path: signup, body: `{"username":"` + strings.Repeat("c", 2<<20) + `"}`, chunked: true, status: 413},
		{name: "chunked valid body", method: "POST", path: signup, body: validSignup, chunked: true, status: 201},
	}
	if len(cases) < 60 {
		t.Fatalf("only %d hostile cases; the table is meant to cover at least 60 attacks", len(cases))
	}
	client := ts.Client()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := http.NewRequestWithContext(t.Context(), c.method, ts.URL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.body == "" {
				r.Body, r.ContentLength = nil, 0
			}
			if c.chunked {
				r.Body, r.ContentLength = io.NopCloser(strings.NewReader(c.body)), -1
			}
			switch c.ct {
			case "":
				if c.body != "" {
					r.Header.Set("Content-Type", "application/json")
				}
			case "-":
			default:
				r.Header.Set("Content-Type", c.ct)
			}
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			for k, v := range c.hdr {
				r.Header.Set(k, v)
			}
			resp, err := client.Do(r)
			if err != nil {
				t.Fatalf("request failed: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode >= 500 {
				t.Fatalf("5xx: %d %s", resp.StatusCode, body)
			}
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d: %.300s", resp.StatusCode, c.status, body)
			}
			if c.status >= 400 {
				var p Problem
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q, want application/problem+json", ct)
				} else if err := json.Unmarshal(body, &p); err != nil || p.Status != resp.StatusCode || p.Code == "" {
					t.Errorf("problem body %.300s (%v)", body, err)
				}
			}
			if strings.Contains(string(body), "<script>") {
				t.Errorf("the response reflects markup: %.300s", body)
			}
		})
	}

	// Still serving, and nothing was damaged.
	resp, err := client.Get(ts.URL + "/health/ready")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the hostile cases: %v %v", resp, err)
	}
	resp.Body.Close()
	w := f.do(t, req{method: "GET", path: itemPath, token: token})
	if w.Code != 200 || !strings.Contains(w.Body.String(), "precious") {
		t.Errorf("the victim's item changed: %d %s", w.Code, w.Body)
	}
}

func manyHeaders(n int) map[string]string {
	h := map[string]string{}
	for i := range n {
		h[fmt.Sprintf("X-H-%03d", i)] = strings.Repeat("v", 40)
	}
	return h
}

// TestHeadersBeyondServerLimit documents the one case the app cannot
// answer itself: a header section larger than http.Server.MaxHeaderBytes is
// rejected by net/http (plain-text 431) before any handler runs. The server
// stays up.
func TestHeadersBeyondServerLimit(t *testing.T) {
	f := newFixture(t)
	ts := httptest.NewUnstartedServer(f.h)
	ts.Config.MaxHeaderBytes = 64 << 10
	ts.Start()
	t.Cleanup(ts.Close)
	r, _ := http.NewRequest("GET", ts.URL+"/health", nil)
	r.Header.Set("X-Huge", strings.Repeat("h", 200<<10))
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
	resp, err = ts.Client().Get(ts.URL + "/health/live")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after an oversized header section: %v %v", resp, err)
	}
	resp.Body.Close()
}
