package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestParseAllowedHosts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "", want: nil},
		{in: "API.example.com., *.example.org ,10.0.0.7,[::1]", want: []string{"api.example.com", "*.example.org", "10.0.0.7", "::1"}},
		{in: "a.example.com,*", want: nil},
		{in: "api.example.com:8080", bad: true},
		{in: "https://api.example.com", bad: true},
		{in: "a.*.example.com", bad: true},
		{in: "*.*", bad: true},
	} {
		got, err := ParseAllowedHosts(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("ParseAllowedHosts(%q) error = %v, want error %v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && !slices.Equal(got, tc.want) {
			t.Errorf("ParseAllowedHosts(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestAllowedHostsOverHTTP sends real requests with chosen Host headers
// through the whole chain: only the listed names (any port, any case, a
// trailing dot) and subdomains of a "*." entry are answered; every other
// Host, health probes included, gets 400 invalid_host.
func TestAllowedHostsOverHTTP(t *testing.T) {
	hosts, err := ParseAllowedHosts("api.example.com, *.example.org, 10.0.0.7, ::1")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *Options) { o.AllowedHosts = hosts })
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		host, path string
		want       int
	}{
		{"api.example.com", "/openapi.json", 200},
		{"API.Example.COM:8080", "/openapi.json", 200},
		{"api.example.com.", "/health/live", 200},
		{"a.b.example.org", "/health", 200},
		{"10.0.0.7:8080", "/health/live", 200},
		{"[::1]:8080", "/health/live", 200},
		{"example.org", "/openapi.json", 400}, // "*." is subdomains only
		{"evil.example.com", "/openapi.json", 400},
		{"api.example.com.evil.net", "/api/v1/items", 400},
		{"10.0.0.8", "/health/live", 400}, // an unlisted pod IP: probes too
		{"127.0.0.1", "/health/ready", 400},
	} {
		r, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+tc.path, nil)
		r.Host = tc.host
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		var p Problem
		json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Host %q %s: status %d, want %d", tc.host, tc.path, resp.StatusCode, tc.want)
		}
		if tc.want == 400 && (p.Code != "invalid_host" || resp.Header.Get("Content-Type") != "application/problem+json") {
			t.Errorf("Host %q: problem %+v (%s), want code invalid_host as problem+json", tc.host, p, resp.Header.Get("Content-Type"))
		}
	}
	// Every route documents the 400 (fixture.do checks the status against
	// openapi.json).
	for _, path := range []string{"/health/live", "/openapi.json", "/api/v1/items"} {
		w := f.do(t, req{method: "GET", path: path}) // httptest's Host example.com is not listed
		if w.Code != 400 {
			t.Errorf("in-process Host example.com %s: %d, want 400", path, w.Code)
		}
	}
}
