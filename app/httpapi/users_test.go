package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
)

// metric returns the value of the series name{labels} in reg, or -1.
func metric(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

func TestSignup(t *testing.T) {
	f := newFixture(t)
	w := f.do(t, req{method: "POST", path: "/api/v1/users", body: `{"username":"Alice_1","email":"alice@example.com","password":"Passw0rd!"}`})
	if w.Code != http.StatusCreated {
		t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
	if strings.Contains(strings.ToLower(w.Body.String()), "password") || strings.Contains(w.Body.String(), "argon2") {
		t.Errorf("sign-up response leaks the password or its hash: %s", w.Body)
	}
	u := decodeJSON[userResponse](t, w)
	if u.ID <= 0 || u.Username != "Alice_1" || u.Email != "alice@example.com" || u.CreatedAt.IsZero() {
		t.Errorf("user = %+v", u)
	}
	if got := metric(t, f.tel.Registry, "app_signups_total", nil); got != 1 {
		t.Errorf("app_signups_total = %v, want 1", got)
	}

	tests := []struct {
		name, body string
		status     int
		code       string
		fields     string
	}{
		{"taken username any case", `{"username":"ALICE_1","email":"other@example.com","password":"Passw0rd!"}`, 409, "conflict", ""},
		{"taken email any case", `{"username":"other","email":"Alice@Example.COM","password":"Passw0rd!"}`, 409, "conflict", ""},
		{"every field invalid", `{"username":"a!","email":"nope","password":"short"}`, 422, "validation_failed", "username,email,password"},
		{"missing fields", `{}`, 422, "validation_failed", "username,email,password"},
		{"weak password", `{"username":"bob","email":"bob@example.com","password":"password1"}`, 422, "validation_failed", "password"},
		{"malformed", `{"username":`, 400, "invalid_json", ""},
		{"unknown field", `{"username":"bob","email":"bob@example.com","password":"Passw0rd!","admin":true}`, 400, "invalid_json", ""},
		{"wrong type", `{"username":1,"email":"bob@example.com","password":"Passw0rd!"}`, 400, "invalid_json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, req{method: "POST", path: "/api/v1/users", body: tt.body})
			p := problemOf(t, w)
			if w.Code != tt.status || p.Code != tt.code {
				t.Fatalf("got %d %s, want %d %s (%s)", w.Code, p.Code, tt.status, tt.code, w.Body)
			}
			var fields []string
			for _, fe := range p.Errors {
				fields = append(fields, fe.Field)
				if fe.Message == "" {
					t.Errorf("field %s has no message", fe.Field)
				}
			}
			if got := strings.Join(fields, ","); got != tt.fields {
				t.Errorf("invalid fields = %q, want %q", got, tt.fields)
			}
		})
	}
	if got := metric(t, f.tel.Registry, "app_signups_total", nil); got != 1 {
		t.Errorf("app_signups_total = %v after failed sign-ups, want 1", got)
	}
}

func TestSignupMediaTypeAndSize(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBodyBytes = 1024 })
	good := `{"username":"carol","email":"carol@example.com","password":"Passw0rd!"}`
	for _, tt := range []struct {
		name   string
		ct     string
		body   string
		status int
	}{
		{"no content type", "", good, 415},
		{"text/plain", "text/plain", good, 415},
		{"form", "application/x-www-form-urlencoded", "username=carol", 415},
		{"latin1 charset", "application/json; charset=latin1", good, 415},
		{"utf-8 charset ok", "application/json; charset=UTF-8", good, 201},
		{"too large", "application/json", `{"username":"` + strings.Repeat("a", 2000) + `"}`, 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, req{method: "POST", path: "/api/v1/users", body: tt.body, hdr: []string{"Content-Type", tt.ct}})
			if w.Code != tt.status {
				t.Errorf("status %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	_, token := f.signup(t, "dave")

	w := f.do(t, req{method: "GET", path: "/api/v1/users/me", token: token})
	if w.Code != http.StatusOK || decodeJSON[userResponse](t, w).Username != "dave" {
		t.Fatalf("GET /users/me with the login token: %d %s", w.Code, w.Body)
	}
	var c jwtClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		t.Fatal(err)
	}
	if c.Type != "access" || c.Subject == "" || c.ExpiresAt == nil || c.IssuedAt == nil {
		t.Errorf("token claims = %+v; want sub, exp, iat and type=access", c)
	}

	wrongPw := f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"dave","password":"Wrong-pass1"}`})
	unknown := f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"nobody","password":"Passw0rd!"}`})
	pw, pu := problemOf(t, wrongPw), problemOf(t, unknown)
	if wrongPw.Code != 401 || unknown.Code != 401 || pw.Detail != pu.Detail || pw.Code != pu.Code {
		t.Errorf("wrong password (%d %+v) and unknown user (%d %+v) must get the same 401", wrongPw.Code, pw, unknown.Code, pu)
	}
	if got := metric(t, f.tel.Registry, "app_logins_total", map[string]string{"result": "failure"}); got != 2 {
		t.Errorf("app_logins_total{result=failure} = %v, want 2", got)
	}
	if got := metric(t, f.tel.Registry, "app_logins_total", map[string]string{"result": "success"}); got != 1 {
		t.Errorf("app_logins_total{result=success} = %v, want 1", got)
	}
	w = f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: `{}`})
	if w.Code != 422 {
		t.Errorf("empty login: %d, want 422", w.Code)
	}
}

type jwtClaims struct {
	Type string `json:"type"`
	jwt.RegisteredClaims
}

func TestLoginRateLimit(t *testing.T) {
	f := newFixture(t)  // DefaultLimits: 5 login attempts per minute per client and username
	f.signup(t, "erin") // one attempt used
	for i := range 4 {
		w := f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"erin","password":"Wrong-pass1"}`})
		if w.Code != 401 {
			t.Fatalf("attempt %d: %d, want 401", i+2, w.Code)
		}
		if got := w.Header().Get("RateLimit-Remaining"); got != itoa(3-i) {
			t.Errorf("attempt %d: RateLimit-Remaining %q, want %d", i+2, got, 3-i)
		}
	}
	w := f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"ERIN","password":"Passw0rd!"}`})
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("6th attempt in a minute: %d, want 429", w.Code)
	}
	h := w.Header()
	if h.Get("Retry-After") != "12" || h.Get("RateLimit-Limit") != "5" || h.Get("RateLimit-Remaining") != "0" || h.Get("RateLimit-Reset") != "60" {
		t.Errorf("429 headers: Retry-After %q RateLimit-Limit %q Remaining %q Reset %q; want 12, 5, 0, 60",
			h.Get("Retry-After"), h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset"))
	}
	if got := metric(t, f.tel.Registry, "app_http_rate_limited_total", map[string]string{"route": "/api/v1/auth/login", "scope": "login"}); got != 1 {
		t.Errorf("app_http_rate_limited_total{route=/api/v1/auth/login,scope=login} = %v, want 1", got)
	}
	// Another username from the same client is not affected.
	w = f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"frank","password":"Passw0rd!"}`})
	if w.Code != 401 {
		t.Errorf("other username: %d, want 401 (not limited)", w.Code)
	}
}

func TestAnonymousAndUserRateLimits(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Limits.Anonymous = ratelimit.Limit{Rate: 2, Period: time.Hour, Burst: 2}
		o.Limits.User = ratelimit.Limit{Rate: 3, Period: time.Hour, Burst: 3}
		o.Limits.Login = ratelimit.Limit{} // disabled
	})
	f.signup(t, "gina") // two anonymous requests: sign-up and login
	w := f.do(t, req{method: "GET", path: "/openapi.json"})
	if w.Code != 429 || problemOf(t, w).Code != "rate_limited" {
		t.Fatalf("third anonymous request: %d, want 429", w.Code)
	}
	if got := metric(t, f.tel.Registry, "app_http_rate_limited_total", map[string]string{"route": "/openapi.json", "scope": "anonymous"}); got != 1 {
		t.Errorf("app_http_rate_limited_total{scope=anonymous} = %v, want 1", got)
	}
	// Health probes are never limited.
	if w := f.do(t, req{method: "GET", path: "/health/live"}); w.Code != 200 {
		t.Errorf("/health/live while limited: %d", w.Code)
	}
	// A different client has its own quota.
	if w := f.do(t, req{method: "GET", path: "/openapi.json", remote: "198.51.100.7:4321"}); w.Code != 200 {
		t.Errorf("another client: %d, want 200", w.Code)
	}
	token, _ := f.tokens.Issue(1) // gina is user 1
	for i := range 3 {
		if w := f.do(t, req{method: "GET", path: "/api/v1/items", token: token}); w.Code != 200 {
			t.Fatalf("user request %d: %d", i+1, w.Code)
		}
	}
	w = f.do(t, req{method: "GET", path: "/api/v1/items", token: token})
	if w.Code != 429 {
		t.Fatalf("4th user request: %d, want 429", w.Code)
	}
	other, _ := f.tokens.Issue(2)
	if w := f.do(t, req{method: "GET", path: "/api/v1/users/me", token: other}); w.Code == 429 {
		t.Error("another user was limited by the first user's quota")
	}
}

func TestMe(t *testing.T) {
	f := newFixture(t)
	ghost, _ := f.tokens.Issue(999)
	for _, tt := range []struct {
		name, auth string
		code       string
	}{
		{"no header", "", "unauthorized"},
		{"basic scheme", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "unauthorized"},
		{"bearer without token", "Bearer ", "unauthorized"},
		{"garbage token", "Bearer abc.def.ghi", "invalid_token"},
		{"user gone", "Bearer " + ghost, "invalid_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, req{method: "GET", path: "/api/v1/users/me", hdr: []string{"Authorization", tt.auth}})
			if w.Code != 401 || problemOf(t, w).Code != tt.code {
				t.Errorf("%d %s, want 401 %s", w.Code, w.Body, tt.code)
			}
			if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") && tt.name != "user gone" {
				t.Errorf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
	// The scheme is case-insensitive (RFC 9110 11.1).
	_, token := f.signup(t, "hank")
	if w := f.do(t, req{method: "GET", path: "/api/v1/users/me", hdr: []string{"Authorization", "bearer " + token}}); w.Code != 200 {
		t.Errorf("lower-case scheme: %d", w.Code)
	}
}
