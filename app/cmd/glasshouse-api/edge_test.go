package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestProxyAndHostSettings(t *testing.T) {
	c, err := parseConfig([]string{"api", "-env-file="}, envOf(map[string]string{
		"TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1, unix", "ALLOWED_HOSTS": "api.example.com,*.example.org"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.TrustedProxies.Prefixes); got != 2 || !c.TrustedProxies.Unix {
		t.Errorf("TrustedProxies = %v, want 2 prefixes", c.TrustedProxies)
	}
	if got := strings.Join(c.AllowedHosts, ","); got != "api.example.com,*.example.org" {
		t.Errorf("AllowedHosts = %q", got)
	}
	_, err = parseConfig([]string{"api", "-env-file="}, envOf(map[string]string{
		"TRUSTED_PROXIES": "10.0.0.0/40", "ALLOWED_HOSTS": "https://api.example.com"}), io.Discard)
	for _, name := range []string{"TRUSTED_PROXIES", "ALLOWED_HOSTS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: error %v does not name it", name, err)
		}
	}
}

// TestProxyAndHostThroughRun starts the API through run with
// TRUSTED_PROXIES and ALLOWED_HOSTS: two clients named by X-Forwarded-For
// behind the (loopback) proxy get separate rate-limit buckets, and a Host
// outside the list is a 400 invalid_host.
func TestProxyAndHostThroughRun(t *testing.T) {
	a := startDepAPI(t, map[string]string{
		"TRUSTED_PROXIES": "127.0.0.0/8", "ALLOWED_HOSTS": "127.0.0.1,api.example.com",
		"RATE_LIMIT_ANONYMOUS": "1/1h:1",
	})
	get := func(host, xff string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, a.base+"/openapi.json", nil)
		if host != "" {
			req.Host = host
		}
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := depClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p struct{ Code string }
		json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, p.Code
	}
	for i, tc := range []struct {
		host, xff string
		want      int
		code      string
	}{
		{"", "203.0.113.1", 200, ""},
		{"api.example.com", "203.0.113.2", 200, ""},
		{"", "203.0.113.1", 429, "rate_limited"},
		{"evil.example.com", "203.0.113.3", 400, "invalid_host"},
	} {
		if got, code := get(tc.host, tc.xff); got != tc.want || code != tc.code {
			t.Errorf("request %d (Host %q, client %s): %d %q, want %d %q", i, tc.host, tc.xff, got, code, tc.want, tc.code)
		}
	}
}
