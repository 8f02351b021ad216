package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
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
	if resp := call(t, "PUT", in.admin+"/debug/fault", "", `{"errors":[{"route":"/health/live","ratio":1,"status":503}]}`, nil); resp.StatusCode != 200 {
		t.Fatalf("PUT /debug/fault = %d", resp.StatusCode)
	}
	resp := call(t, "GET", in.base+"/health/live", "", "", nil)
	if resp.StatusCode != 503 || resp.Header.Get("X-Fault-Injected") != "error" {
		t.Errorf("/health/live with the fault = %d %v, want an injected 503", resp.StatusCode, resp.Header)
	}
	if resp := call(t, "GET", in.base+"/health", "", "", nil); resp.StatusCode != 200 {
		t.Errorf("/health (no fault on its route) = %d, want 200", resp.StatusCode)
	}
	m, err := http.Get(in.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	m.Body.Close()
	if want := `http_server_request_duration_seconds_count{code="503",method="GET",route="/health/live"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}

	if resp := call(t, "PUT", in.admin+"/debug/fault", "", `{"outages":["database"]}`, nil); resp.StatusCode != 200 {
		t.Fatalf("PUT outage = %d", resp.StatusCode)
	}
	if resp := call(t, "GET", in.base+"/health/ready", "", "", nil); resp.StatusCode != 503 {
		t.Errorf("/health/ready during a database outage = %d, want 503", resp.StatusCode)
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
		if resp := call(t, "GET", in.base+p, "", "", nil); resp.StatusCode != 200 {
			t.Errorf("%s after DELETE = %d, want 200", p, resp.StatusCode)
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
