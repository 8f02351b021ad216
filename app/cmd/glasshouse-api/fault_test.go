package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFaultInjectionWiring checks that /debug/fault lives on the admin
// listener only, that injected 5xx are measured by the RED metrics (the
// injector runs inside the telemetry middleware), and that a database
// outage fails readiness.
func TestFaultInjectionWiring(t *testing.T) {
	in := start(t, nil)
	if resp := call(t, "GET", in.base+"/debug/fault", "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("public /debug/fault = %d, want 404", resp.StatusCode)
	}
	if resp := call(t, "PUT", in.admin+"/debug/fault", "", `{"errors":[{"route":"/health","ratio":1,"status":503}]}`, nil); resp.StatusCode != 200 {
		t.Fatalf("PUT /debug/fault = %d", resp.StatusCode)
	}
	resp := call(t, "GET", in.base+"/health", "", "", nil)
	if resp.StatusCode != 503 || resp.Header.Get("X-Fault-Injected") != "error" {
		t.Errorf("/health with the fault = %d %v, want an injected 503", resp.StatusCode, resp.Header)
	}
	if resp := call(t, "GET", in.base+"/openapi.json", "", "", nil); resp.StatusCode != 200 {
		t.Errorf("/openapi.json (no fault on its route) = %d, want 200", resp.StatusCode)
	}
	m, err := http.Get(in.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	m.Body.Close()
	if want := `http_server_request_duration_seconds_count{code="503",method="GET",route="/health"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}

	if resp := call(t, "PUT", in.admin+"/debug/fault", "", `{"outages":["database"]}`, nil); resp.StatusCode != 200 {
		t.Fatalf("PUT outage = %d", resp.StatusCode)
	}
	if code := pollStatus(t, in.base+"/health/ready", 503); code != 503 {
		t.Errorf("/health/ready during a database outage = %d, want 503", code)
	}
	// The injected outage reaches the dependency metric the alerts and
	// dashboards read, as a real one does.
	if want := `app_dependency_up{dependency="database"} 0`; !strings.Contains(scrape(t, in.admin), want) {
		t.Errorf("/metrics during an injected database outage lacks %s", want)
	}
	if resp := call(t, "DELETE", in.admin+"/debug/fault", "", "", nil); resp.StatusCode != 200 {
		t.Fatalf("DELETE = %d", resp.StatusCode)
	}
	for _, p := range []string{"/health/live", "/health/ready"} {
		if code := pollStatus(t, in.base+p, 200); code != 200 {
			t.Errorf("%s after DELETE = %d, want 200", p, code)
		}
	}
	if want := `app_dependency_up{dependency="database"} 1`; !strings.Contains(scrape(t, in.admin), want) {
		t.Errorf("/metrics after DELETE lacks %s", want)
	}
}

func scrape(t *testing.T, admin string) string {
	t.Helper()
	m, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Body.Close()
	b, err := io.ReadAll(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pollStatus GETs url until it answers want (readiness is cached for
// READY_CACHE_TTL) or 30 s pass, and returns the last status.
func pollStatus(t *testing.T, url string, want int) int {
	t.Helper()
	var code int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if code = resp.StatusCode; code == want {
			break
		}
	}
	return code
}

// TestLivenessNeverFaulted: a catch-all fault rule leaves /health/live
// alone, and a rule naming it is refused.
func TestLivenessNeverFaulted(t *testing.T) {
	in := start(t, nil)
	if resp := call(t, "PUT", in.admin+"/debug/fault", "", `{"errors":[{"route":"*","ratio":1,"status":503}]}`, nil); resp.StatusCode != 200 {
		t.Fatalf("PUT * rule = %d", resp.StatusCode)
	}
	if resp := call(t, "GET", in.base+"/health/live", "", "", nil); resp.StatusCode != 200 {
		t.Errorf("/health/live under a * rule = %d, want 200", resp.StatusCode)
	}
	if resp := call(t, "GET", in.base+"/openapi.json", "", "", nil); resp.StatusCode != 503 {
		t.Errorf("/openapi.json under a * rule = %d, want 503", resp.StatusCode)
	}
	if resp := call(t, "PUT", in.admin+"/debug/fault", "", `{"errors":[{"route":"/health/live","ratio":1}]}`, nil); resp.StatusCode != 400 {
		t.Errorf("PUT a rule on /health/live = %d, want 400", resp.StatusCode)
	}
}

// TestAdminRefusesBrowsers: every admin endpoint refuses requests with an
// Origin header or a Host name that is not allowed (DNS rebinding), and
// /debug/fault refuses non-JSON bodies (cross-site form posts).
func TestAdminRefusesBrowsers(t *testing.T) {
	in := start(t, map[string]string{"ADMIN_HOSTS": "Scrape.Internal"})
	send := func(method, path, host, origin, ctype, body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, in.admin+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(in.admin, "http://"), ":")
	fault := `{"errors":[{"route":"/openapi.json","ratio":1}]}`
	for _, tt := range []struct {
		name                                    string
		method, path, host, origin, ctype, body string
		want                                    int
	}{
		{"metrics from a scraper", "GET", "/metrics", "", "", "", "", 200},
		{"metrics by localhost", "GET", "/metrics", "localhost:" + port, "", "", "", 200},
		{"metrics by an ADMIN_HOSTS name", "GET", "/metrics", "scrape.internal:" + port, "", "", "", 200},
		{"metrics by another IP", "GET", "/metrics", "10.1.2.3:" + port, "", "", "", 200},
		{"metrics with an Origin", "GET", "/metrics", "", "http://evil.example", "", "", 403},
		{"metrics rebound", "GET", "/metrics", "evil.example:" + port, "", "", "", 403},
		{"pprof rebound", "GET", "/debug/pprof/", "evil.example:" + port, "", "", "", 403},
		{"pprof with an Origin", "GET", "/debug/pprof/cmdline", "", "null", "", "", 403},
		{"fault form post", "POST", "/debug/fault", "", "", "text/plain", fault, 415},
		{"fault cross-site", "PUT", "/debug/fault", "", "http://evil.example", "application/json", fault, 403},
		{"fault rebound", "PUT", "/debug/fault", "evil.example", "", "application/json", fault, 403},
		{"fault read rebound", "GET", "/debug/fault", "evil.example", "", "", "", 403},
	} {
		if got := send(tt.method, tt.path, tt.host, tt.origin, tt.ctype, tt.body); got != tt.want {
			t.Errorf("%s: %s %s = %d, want %d", tt.name, tt.method, tt.path, got, tt.want)
		}
	}
	// None of the refused requests switched a fault on.
	if resp := call(t, "GET", in.base+"/openapi.json", "", "", nil); resp.StatusCode != 200 {
		t.Errorf("/openapi.json after the refused fault requests = %d, want 200", resp.StatusCode)
	}
	if got := send("PUT", "/debug/fault", "", "", "application/json", fault); got != 200 {
		t.Errorf("PUT from curl = %d, want 200", got)
	}
}
