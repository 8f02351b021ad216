package httpapi

import (
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
)

const formType = "application/x-www-form-urlencoded"

func TestLoginForm(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Limits.Login = ratelimit.Limit{} })
	u, _ := f.signup(t, "olga")
	for _, tt := range []struct {
		name, ct, body string
		status         int
		code           string
	}{
		{"password grant", formType, "grant_type=password&username=olga&password=Passw0rd%21", 200, ""},
		{"as FastAPI's form sends it", formType + "; charset=UTF-8", "grant_type=password&username=olga&password=Passw0rd%21&scope=&client_id=&client_secret=", 200, ""},
		{"no grant_type", formType, "username=olga&password=Passw0rd%21", 200, ""},
		{"wrong password", formType, "grant_type=password&username=olga&password=Wrong-pass1", 401, "invalid_credentials"},
		{"other grant", formType, "grant_type=client_credentials&username=olga&password=Passw0rd%21", 400, "unsupported_grant_type"},
		{"repeated field", formType, "username=olga&username=admin&password=Passw0rd%21", 400, "invalid_form"},
		{"unknown field", formType, "username=olga&password=Passw0rd%21&role=admin", 400, "invalid_form"},
		{"bad escape", formType, "username=olga&password=%zz", 400, "invalid_form"},
		{"invalid UTF-8", formType, "username=olga%ff&password=Passw0rd%21", 400, "invalid_utf8"},
		{"empty form", formType, "", 422, "validation_failed"},
		{"other charset", formType + "; charset=latin1", "username=olga&password=Passw0rd%21", 415, "unsupported_media_type"},
		{"multipart", "multipart/form-data; boundary=x", "--x--", 415, "unsupported_media_type"},
		{"text", "text/plain", "username=olga", 415, "unsupported_media_type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: tt.body, hdr: []string{"Content-Type", tt.ct}})
			if w.Code != tt.status {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.status)
			}
			if tt.code != "" {
				if got := problemOf(t, w).Code; got != tt.code {
					t.Errorf("code %q, want %q", got, tt.code)
				}
				return
			}
			tok := decodeJSON[tokenResponse](t, w)
			if tok.TokenType != "bearer" || tok.ExpiresIn <= 0 {
				t.Errorf("token body %s", w.Body)
			}
			me := f.do(t, req{method: "GET", path: "/api/v1/users/me", token: tok.AccessToken})
			if me.Code != 200 || decodeJSON[userResponse](t, me).ID != u.ID {
				t.Errorf("GET /users/me with the form login's token: %d %s", me.Code, me.Body)
			}
		})
	}
}

// TestLoginFormLimits shows the form is no way around the login limits:
// both encodings count against the same per-username quota.
func TestLoginFormLimits(t *testing.T) {
	f := newFixture(t) // 5 attempts per minute per client and username
	f.signup(t, "pia") // one JSON attempt
	for i := range 4 {
		w := f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: "username=pia&password=Wrong-pass1",
			hdr: []string{"Content-Type", formType}})
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("form attempt %d: %d %s, want 401", i+1, w.Code, w.Body)
		}
	}
	w := f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: "grant_type=password&username=PIA&password=Passw0rd%21",
		hdr: []string{"Content-Type", formType}})
	if w.Code != http.StatusTooManyRequests || problemOf(t, w).Code != "rate_limited" {
		t.Fatalf("6th attempt in a minute, as a form: %d %s, want 429 rate_limited", w.Code, w.Body)
	}
}

func FuzzLoginForm(f *testing.F) {
	for _, s := range []string{"grant_type=password&username=a&password=b", "a=%zz", "username=x&username=y", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeLoginForm(body)
		if err != nil {
			if _, ok := err.(*requestError); !ok {
				t.Fatalf("error %T (%v), want *requestError", err, err)
			}
			return
		}
		if !utf8.ValidString(req.Username) || !utf8.ValidString(req.Password) {
			t.Errorf("decoded %q / %q from %q: not valid UTF-8", req.Username, req.Password, body)
		}
	})
}

// TestOpenAPIOAuth2PasswordFlow: the document declares the password flow
// at the login route beside bearer, every authenticated operation accepts
// either, and the login body may be a form.
func TestOpenAPIOAuth2PasswordFlow(t *testing.T) {
	doc := openAPI()
	schemes := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	oauth, _ := schemes["oauth2"].(map[string]any)
	flow, _ := oauth["flows"].(map[string]any)["password"].(map[string]any)
	if oauth["type"] != "oauth2" || flow["tokenUrl"] != "/api/v1/auth/login" {
		t.Errorf("oauth2 scheme = %v, want a password flow with tokenUrl /api/v1/auth/login", oauth)
	}
	if _, ok := schemes["bearer"]; !ok {
		t.Error("the bearer scheme is gone")
	}
	authed := 0
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			op, ok := op.(map[string]any)
			if !ok || op["security"] == nil {
				continue
			}
			authed++
			got := map[string]bool{}
			for _, req := range op["security"].([]map[string]any) {
				for name := range req {
					got[name] = true
				}
			}
			if !got["bearer"] || !got["oauth2"] || len(got) != 2 {
				t.Errorf("%s %s security = %v, want bearer or oauth2", method, path, op["security"])
			}
		}
	}
	if authed != 7 {
		t.Errorf("%d authenticated operations, want 7", authed)
	}
	login := doc["paths"].(map[string]any)["/api/v1/auth/login"].(map[string]any)["post"].(map[string]any)
	content := login["requestBody"].(map[string]any)["content"].(map[string]any)
	if _, ok := content[formType]; !ok {
		t.Errorf("login request body types %v lack %s", content, formType)
	}
}
