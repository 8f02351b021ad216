package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/alerts"
	"github.com/glasshouse-dev/glasshouse/internal/freeport"
	"github.com/glasshouse-dev/glasshouse/loadtest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestBadFlagsExit104(t *testing.T) {
	tests := [][]string{
		{"-scenario", "nope"},
		{"-rate", "-5"},
		{"-out", "csv=x"},
		{"-tag", "novalue"},
		{"-prometheus", "-prometheus-addr", "nope"},
		{"extra"},
		{"-slo", "/does/not/exist.yaml"},
		{"-server-metrics", "localhost:8081/metrics"},
		{"-min-requests", "-1"},
		// A URL the client can never request is a config error before the
		// run, not a run of instant request errors that exits 0.
		{"-url", "ftp://example.com/", "-duration", "1s", "-vus", "1"},
		{"-url", "127.0.0.1:8080/items", "-duration", "1s", "-vus", "1"},
		{"-url", "http:///items", "-duration", "1s", "-vus", "1"},
		{"-target", "http://", "-scenario", "smoke", "-duration", "1s"},
	}
	for _, args := range tests {
		var stderr bytes.Buffer
		err := run(t.Context(), append([]string{"glasshouse-load"}, args...), env(nil), nil, io.Discard, &stderr)
		if loadtest.ExitCode(err) != loadtest.ExitInvalidConfig {
			t.Errorf("%v: err = %v (exit %d), want 104", args, err, loadtest.ExitCode(err))
		}
	}
}

func TestURLModeWritesSummaryAndJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	sum, out := filepath.Join(dir, "summary.json"), filepath.Join(dir, "out.jsonl")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"glasshouse-load", "-url", srv.URL, "-rate", "50", "-vus", "2", "-duration", "1s",
		"-summary-export", sum, "-out", "json=" + out, "-tag", "testid=t1", "-report", filepath.Join(dir, "report.html")}, env(map[string]string{"CI": "true"}), nil, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "█ TOTAL RESULTS") || !strings.Contains(stdout.String(), "default (constant-arrival-rate, open model): 50 scheduled") {
		t.Errorf("summary:\n%s", stdout.String())
	}
	if strings.Contains(stderr.String(), "running (") {
		t.Errorf("progress printed in CI: %q", stderr.String())
	}
	b, err := os.ReadFile(sum)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Metrics map[string]struct {
			Values map[string]float64 `json:"values"`
		} `json:"metrics"`
	}
	err = json.Unmarshal(b, &s)
	// 50 arrivals are scheduled; on a stalled machine an arrival that finds
	// both VUs busy is dropped (the open model), so the count is the
	// requests sent plus those dropped.
	reqs, dropped := s.Metrics["http_reqs"].Values["count"], s.Metrics["dropped_iterations"].Values["count"]
	if err != nil || reqs < 1 || reqs+dropped != 50 {
		t.Errorf("summary export: %v, http_reqs %v + dropped_iterations %v, want 50 in all", err, reqs, dropped)
	}
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil || !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) || !bytes.Contains(page, []byte("testid")) {
		t.Errorf("-report: %v, %d bytes without the run's options", err, len(page))
	}
	lines, _ := os.ReadFile(out)
	if !bytes.Contains(lines, []byte(`"testid":"t1"`)) || float64(bytes.Count(lines, []byte(`"metric":"http_reqs"}`))) < reqs {
		t.Errorf("JSON output lacks the tag or the points (%d bytes)", len(lines))
	}
}

func TestThresholdFailureExit99(t *testing.T) {
	// The smoke scenario against a server that answers 503 everywhere: the
	// setup's signup fails first (107); a server that accepts signups and
	// logins but fails the item routes fails the SLO thresholds (99).
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/users", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) })
	mux.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"access_token":"t","token_type":"bearer","expires_in":60}`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// From any directory: the default SLO spec is built into the binary.
	t.Chdir(t.TempDir())
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"glasshouse-load", "-target", srv.URL, "-scenario", "smoke", "-duration", "1s"},
		env(nil), nil, &stdout, &stderr)
	if loadtest.ExitCode(err) != loadtest.ExitThresholdsFailed || !errors.Is(err, loadtest.ErrThresholdsFailed) {
		t.Fatalf("err = %v (exit %d), want 99\n%s", err, loadtest.ExitCode(err), stdout.String())
	}
	if !strings.Contains(err.Error(), "http_req_failed") || !strings.Contains(stdout.String(), "✗ 'rate<0.001'") {
		t.Errorf("err %v / summary do not name the failed SLO threshold:\n%s", err, stdout.String())
	}

	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(broken.Close)
	err = run(t.Context(), []string{"glasshouse-load", "-target", broken.URL, "-scenario", "smoke", "-duration", "1s", "-quiet"},
		env(nil), nil, io.Discard, io.Discard)
	if loadtest.ExitCode(err) != loadtest.ExitScriptException {
		t.Errorf("setup against a broken API: err = %v (exit %d), want 107", err, loadtest.ExitCode(err))
	}
}

// TestSLOFileOverridesTheBuiltInSpec runs the smoke scenario with -slo
// pointing at a spec whose availability objective is 50%: the derived
// threshold is rate<0.5, not the built-in rate<0.001.
func TestSLOFileOverridesTheBuiltInSpec(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/users", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) })
	mux.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"access_token":"t","token_type":"bearer","expires_in":60}`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	spec := strings.Replace(string(alerts.SLOSpec()), "objective: 0.999", "objective: 0.5", 1)
	path := filepath.Join(t.TempDir(), "slo.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	err := run(t.Context(), []string{"glasshouse-load", "-target", srv.URL, "-scenario", "smoke", "-duration", "1s", "-slo", path},
		env(nil), nil, &stdout, io.Discard)
	if loadtest.ExitCode(err) != loadtest.ExitThresholdsFailed {
		t.Fatalf("err = %v, want 99", err)
	}
	if !strings.Contains(stdout.String(), "'rate<0.5'") || strings.Contains(stdout.String(), "'rate<0.001'") {
		t.Errorf("the summary does not show the overriding spec's threshold rate<0.5:\n%s", stdout.String())
	}
}

// TestPrometheusEndpointDuringARun scrapes -prometheus while a run is in
// progress and finds the k6-named request counter growing.
func TestPrometheusEndpointDuringARun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)
	addr := freeport.Addr(t)
	done := make(chan error, 1)
	go func() {
		done <- run(t.Context(), []string{"glasshouse-load", "-url", srv.URL, "-rate", "100", "-vus", "2", "-duration", "5s",
			"-quiet", "-prometheus", "-prometheus-addr", addr, "-tag", "testid=prom"}, env(nil), nil, io.Discard, io.Discard)
	}()
	// Scrape until the counter shows up or the run ends, whichever is first.
	var body string
	var runErr error
	ended := false
	for !ended {
		select {
		case runErr = <-done:
			ended = true
			continue
		case <-time.After(100 * time.Millisecond):
		}
		res, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body = string(b)
		if strings.Contains(body, `k6_http_reqs_total{`) && strings.Contains(body, `testid="prom"`) {
			runErr, ended = <-done, true
		}
	}
	if runErr != nil {
		t.Fatalf("run: %v", runErr)
	}
	if !strings.Contains(body, `k6_http_reqs_total{`) || !strings.Contains(body, `scenario="default"`) || !strings.Contains(body, `testid="prom"`) {
		t.Errorf("scrape during the run:\n%s", body)
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("the endpoint is still up after the run (no -prometheus-linger)")
	}
}

// TestFlagsReportEveryProblem: every bad flag is named in one error, and
// a flag beats its environment variable, which beats the default.
func TestFlagsReportEveryProblem(t *testing.T) {
	_, err := parseFlags([]string{"glasshouse-load", "-rate", "-5", "-out", "csv=x", "-tag", "novalue", "-url", "ftp://x/",
		"-prometheus", "-prometheus-addr", "nope", "-duration", "soon"}, env(nil), io.Discard)
	if loadtest.ExitCode(err) != loadtest.ExitInvalidConfig {
		t.Fatalf("err = %v, want exit 104", err)
	}
	for _, name := range []string{"-rate:", "-out:", "-tag:", "-url:", "-prometheus-addr:", "-duration:"} {
		if !strings.Contains(err.Error(), "\n  "+name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	for _, tt := range []struct {
		args       []string
		env        map[string]string
		wantTarget string
		wantSLO    string
	}{
		{nil, nil, "http://127.0.0.1:8080", ""},
		{nil, map[string]string{"TARGET": "http://env:1", "SLO_FILE": "env.yaml"}, "http://env:1", "env.yaml"},
		{[]string{"-target", "http://flag:1", "-slo="}, map[string]string{"TARGET": "http://env:1", "SLO_FILE": "env.yaml"}, "http://flag:1", ""},
	} {
		c, err := parseFlags(append([]string{"glasshouse-load"}, tt.args...), env(tt.env), io.Discard)
		if err != nil || c.target != tt.wantTarget || c.sloPath != tt.wantSLO {
			t.Errorf("%v %v: target %q slo %q, %v; want %q %q", tt.args, tt.env, c.target, c.sloPath, err, tt.wantTarget, tt.wantSLO)
		}
	}
}
