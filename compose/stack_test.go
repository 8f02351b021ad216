package compose_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/compose/internal/stack"
	"github.com/glasshouse-dev/glasshouse/internal/integration"
)

// TestNativeStackUpDown runs `make stack-up` in native mode (forced with
// STACK_MODE=native, on free loopback ports, in a temporary run directory),
// checks every URL it prints answers, that Prometheus scrapes the API (target
// up) and loaded the alert rules, then runs `make stack-down` and checks no
// process it started is left.
func TestNativeStackUpDown(t *testing.T) {
	integration.Short(t, "real processes (the API, Prometheus, Alertmanager)")
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not found")
	}
	lookBin(t, "prometheus", "prometheus")
	hasAM := true
	if _, err := exec.LookPath("prometheus-alertmanager"); err != nil {
		hasAM = false
	}

	root := repo(t)
	runDir := t.TempDir()
	env := append(os.Environ(),
		"STACK_MODE=native",
		"STACK_RUN_DIR="+runDir,
		"SLACK_WEBHOOK_URL=",
		"DATABASE_URL=", "REDIS_URL=", "JWT_SECRET=",
		"OTEL_EXPORTER_OTLP_ENDPOINT=",
	)
	ports := map[string]int{}
	keys := []string{"STACK_API_PORT", "STACK_API_ADMIN_PORT", "STACK_PROMETHEUS_PORT", "STACK_ALERTMANAGER_PORT", "STACK_SLACKSINK_PORT", "STACK_LOAD_PORT"}
	for i, p := range freePorts(t, len(keys)) {
		ports[keys[i]] = p
		env = append(env, fmt.Sprintf("%s=%d", keys[i], p))
	}
	// The first build of the API compiles every dependency; the stack itself
	// starts in seconds.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	runMake := func(ctx context.Context, target string, extraEnv ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "make", "--no-print-directory", target)
		cmd.Dir = root
		cmd.Env = append(slices.Clip(env), extraEnv...)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		err := cmd.Run()
		return out.String(), err
	}
	t.Cleanup(func() {
		// Whatever happened, leave nothing running.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := runMake(ctx, "stack-down"); err != nil {
			t.Logf("cleanup stack-down: %v\n%s", err, out)
		}
	})

	start := time.Now()
	out, err := runMake(ctx, "stack-up")
	t.Logf("make stack-up (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		logTails(t, runDir)
		t.Fatalf("make stack-up: %v", err)
	}
	if !strings.Contains(out, "Needs Docker") || !strings.Contains(out, "Grafana") {
		t.Error("stack-up does not say which parts need Docker")
	}

	// The URLs it printed all answer.
	urls := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(\S.*?)\s{2,}(http://127\.0\.0\.1:[0-9]+\S*)\s*$`).FindAllStringSubmatch(out, -1) {
		urls[m[1]] = m[2]
	}
	want := []string{"API docs", "API health", "API metrics", "Prometheus"}
	if hasAM && fileExists(filepath.Join(root, "alerts", "alertmanager.yml")) {
		want = append(want, "Alertmanager")
	}
	if fileExists(filepath.Join(root, "alerts", "cmd", "slacksink")) {
		want = append(want, "Slack sink")
	}
	for _, name := range want {
		if urls[name] == "" {
			t.Errorf("stack-up printed no %q URL", name)
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for name, u := range urls {
		resp, err := client.Get(u)
		if err != nil {
			t.Errorf("%s %s: %v", name, u, err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Errorf("%s %s answered %s", name, u, resp.Status)
		}
	}
	if got, want := urls["API metrics"], fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["STACK_API_ADMIN_PORT"]); got != want {
		t.Errorf("API metrics URL = %q, want %q", got, want)
	}

	// Alertmanager posts to the Slack sink through the rendered webhook
	// file: fire an alert by hand now, check the sink got it below.
	if urls["Alertmanager"] != "" && urls["Slack sink"] != "" {
		alert := `[{"labels":{"alertname":"NativeStackSmoke","severity":"critical","service":"glasshouse-api"},` +
			`"annotations":{"summary":"native stack smoke test","description":"posted by compose/stack_test.go"}}]`
		resp, err := client.Post(strings.TrimSuffix(urls["Alertmanager"], "/")+"/api/v2/alerts", "application/json", strings.NewReader(alert))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST alert to Alertmanager: %s", resp.Status)
		}
	}

	// Prometheus scrapes the API: the glasshouse-api target is up.
	prom := fmt.Sprintf("http://127.0.0.1:%d", ports["STACK_PROMETHEUS_PORT"])
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				ScrapeURL string            `json:"scrapeUrl"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	deadline := time.Now().Add(60 * time.Second)
	health, lastErr := "", ""
	for health != "up" {
		if time.Now().After(deadline) {
			logTails(t, runDir)
			t.Fatalf("Prometheus never reported the glasshouse-api target up (health %q, last error %q)", health, lastErr)
		}
		time.Sleep(500 * time.Millisecond)
		if err := getJSON(client, prom+"/api/v1/targets?state=active", &targets); err != nil {
			continue
		}
		for _, tg := range targets.Data.ActiveTargets {
			if tg.Labels["job"] == "glasshouse-api" {
				health, lastErr = tg.Health, tg.LastError
				if want := fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["STACK_API_ADMIN_PORT"]); tg.ScrapeURL != want {
					t.Fatalf("glasshouse-api scrape URL = %s, want %s", tg.ScrapeURL, want)
				}
			}
		}
	}
	t.Logf("Prometheus scraped glasshouse-api %s after stack-up", time.Since(start).Round(time.Second))

	// The alerts link to Grafana, which the native stack does not run: the
	// output says so, naming the address the rules really use.
	for _, want := range []string{"Alert links:", "http://localhost:3000", "does not run", prom + "/alerts"} {
		if !strings.Contains(out, want) {
			t.Errorf("stack-up output lacks %q about the alerts' dashboard links", want)
		}
	}

	// No load runs: Prometheus has no glasshouse-load target (a static one
	// would show down), and `make load` adds it only while it runs.
	checkLoadTarget(t, ctx, client, prom, runMake, ports["STACK_API_PORT"], ports["STACK_LOAD_PORT"], runDir)

	// The rule files from alerts/ were loaded through the rendered globs.
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				File  string `json:"file"`
				Rules []any  `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(client, prom+"/api/v1/rules", &rules); err != nil {
		t.Fatal(err)
	}
	nrules := 0
	for _, g := range rules.Data.Groups {
		nrules += len(g.Rules)
	}
	if generated, _ := filepath.Glob(filepath.Join(root, "alerts", "generated", "*.yaml")); len(generated) > 0 && nrules == 0 {
		t.Error("Prometheus loaded no rules, though alerts/generated has rule files")
	}
	t.Logf("Prometheus loaded %d rule groups, %d rules", len(rules.Data.Groups), nrules)
	if urls["Alertmanager"] != "" {
		var ams struct {
			Data struct {
				Active []struct {
					URL string `json:"url"`
				} `json:"activeAlertmanagers"`
			} `json:"data"`
		}
		if err := getJSON(client, prom+"/api/v1/alertmanagers", &ams); err != nil {
			t.Fatal(err)
		}
		if len(ams.Data.Active) != 1 || !strings.Contains(ams.Data.Active[0].URL, fmt.Sprintf("127.0.0.1:%d", ports["STACK_ALERTMANAGER_PORT"])) {
			t.Errorf("Prometheus sends alerts to %+v, want the native Alertmanager", ams.Data.Active)
		}
	}

	if urls["Alertmanager"] != "" && urls["Slack sink"] != "" {
		deadline := time.Now().Add(45 * time.Second)
		for {
			resp, err := client.Get(urls["Slack sink"])
			var body []byte
			if err == nil {
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if bytes.Contains(body, []byte("NativeStackSmoke")) {
				t.Logf("the Slack sink received the alert %s after stack-up", time.Since(start).Round(time.Second))
				break
			}
			if time.Now().After(deadline) {
				logTails(t, runDir)
				t.Fatalf("the Slack sink never received the alert posted to Alertmanager; /messages: %s", body)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	// A second stack-up notices the running stack and starts nothing.
	state := readState(t, runDir)
	again, err := runMake(ctx, "stack-up")
	if err != nil || !strings.Contains(again, "already running") {
		t.Errorf("second stack-up: %v\n%s", err, again)
	}
	if after := readState(t, runDir); len(after.Processes) != len(state.Processes) {
		t.Errorf("second stack-up changed the recorded processes: %d -> %d", len(state.Processes), len(after.Processes))
	}

	// stack-down stops exactly the recorded processes.
	down, err := runMake(ctx, "stack-down")
	t.Logf("make stack-down:\n%s", down)
	if err != nil {
		t.Fatalf("make stack-down: %v", err)
	}
	for _, p := range state.Processes {
		if !strings.Contains(down, fmt.Sprintf("stopped %s (pid %d)", p.Name, p.PID)) {
			t.Errorf("stack-down did not report stopping %s (pid %d)", p.Name, p.PID)
		}
		if p.Alive() {
			t.Errorf("%s (pid %d) still runs after stack-down", p.Name, p.PID)
		}
	}
	for k, port := range ports {
		if k == "STACK_LOAD_PORT" {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Errorf("%s %d is still in use after stack-down: %v", k, port, err)
			continue
		}
		l.Close()
	}
	if _, err := os.Stat(filepath.Join(runDir, "stack.json")); !os.IsNotExist(err) {
		t.Errorf("stack.json still exists after stack-down (err %v)", err)
	}
	if again, err := runMake(ctx, "stack-down"); err != nil || !strings.Contains(again, "nothing to stop") {
		t.Errorf("second stack-down: %v\n%s", err, again)
	}
}

// activeTarget returns the health and scrape URL of the active target of job
// ("" when Prometheus has none).
func activeTarget(client *http.Client, prom, job string) (health, scrapeURL string, err error) {
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				ScrapeURL string            `json:"scrapeUrl"`
				Health    string            `json:"health"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := getJSON(client, prom+"/api/v1/targets?state=active", &targets); err != nil {
		return "", "", err
	}
	for _, tg := range targets.Data.ActiveTargets {
		if tg.Labels["job"] == job {
			return tg.Health, tg.ScrapeURL, nil
		}
	}
	return "", "", nil
}

// checkLoadTarget runs `make load` (a short smoke run against the native API
// whose metrics endpoint lingers, so Prometheus has time to scrape it) and
// checks the glasshouse-load target: absent before, up during, gone after.
func checkLoadTarget(t *testing.T, ctx context.Context, client *http.Client, prom string,
	runMake func(context.Context, string, ...string) (string, error), apiPort, loadPort int, runDir string) {
	t.Helper()
	if health, u, err := activeTarget(client, prom, stack.LoadJob); err != nil || health != "" {
		t.Fatalf("before any load: glasshouse-load target %q %s (err %v), want none", health, u, err)
	}
	loadEnv := []string{
		fmt.Sprintf("TARGET=http://127.0.0.1:%d", apiPort),
		"SCENARIO=smoke",
		"LOAD_FLAGS=-duration 15s -prometheus-linger 30s -no-progress",
	}
	loadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := runMake(loadCtx, "load", loadEnv...)
		done <- result{out, err}
	}()
	wantURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", loadPort)
	var load *result
	for load == nil {
		health, u, err := activeTarget(client, prom, stack.LoadJob)
		if err == nil && health == "up" {
			if u != wantURL {
				t.Errorf("glasshouse-load scrape URL = %s, want %s", u, wantURL)
			}
			t.Logf("Prometheus scraped the load generator during `make load`")
			break
		}
		select {
		case r := <-done:
			load = &r
		case <-time.After(500 * time.Millisecond):
		}
	}
	if load != nil {
		logTails(t, runDir)
		t.Fatalf("`make load` ended before Prometheus scraped it (err %v):\n%s", load.err, load.out)
	}
	r := <-done
	// A smoke run may fail a threshold on a loaded machine; the target's
	// life is what this checks.
	t.Logf("make load (err %v):\n%s", r.err, r.out)
	if !strings.Contains(r.out, "Prometheus scrapes this load at 127.0.0.1:"+fmt.Sprint(loadPort)) {
		t.Errorf("`make load` did not say Prometheus scrapes it")
	}
	if files, _ := filepath.Glob(filepath.Join(runDir, "prometheus", "targets", stack.LoadJob, "*")); len(files) > 0 {
		t.Errorf("target files left after `make load` ended: %v", files)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		health, u, err := activeTarget(client, prom, stack.LoadJob)
		if err == nil && health == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after `make load` ended Prometheus still has the glasshouse-load target %q %s (err %v)", health, u, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func readState(t *testing.T, runDir string) stack.State {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, "stack.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st stack.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Processes) == 0 {
		t.Fatal("stack.json records no processes")
	}
	return st
}

func getJSON(c *http.Client, url string, v any) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// logTails prints the end of every native log, to explain a failure.
func logTails(t *testing.T, runDir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(runDir, "logs", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		t.Logf("--- %s:\n%s", filepath.Base(l), b)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestNativeStackFailureStopsEverything starts the native stack with a
// Prometheus that dies at once: stack-up must fail with Prometheus's last log
// lines, stop what it had already started and record nothing.
func TestNativeStackFailureStopsEverything(t *testing.T) {
	integration.Short(t, "real processes (the API, Prometheus, Alertmanager)")
	dir := t.TempDir()
	fake := filepath.Join(dir, "prometheus")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'fake prometheus: refusing to start' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	vals := map[string]string{"STACK_RUN_DIR": runDir, "PROMETHEUS_BIN": fake}
	keys := []string{"STACK_API_PORT", "STACK_API_ADMIN_PORT", "STACK_PROMETHEUS_PORT", "STACK_ALERTMANAGER_PORT", "STACK_SLACKSINK_PORT", "STACK_LOAD_PORT"}
	used := freePorts(t, len(keys))
	for i, k := range keys {
		vals[k] = fmt.Sprint(used[i])
	}
	cfg, err := stack.FromEnv(repo(t), func(k string) string { return vals[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var out, log bytes.Buffer
	err = stack.Up(ctx, cfg, &out, &log)
	t.Logf("progress:\n%s", log.String())
	if err == nil {
		_ = stack.Down(context.Background(), cfg, io.Discard, false)
		t.Fatal("stack-up succeeded with a Prometheus that cannot start")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"prometheus", "fake prometheus: refusing to start"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q", want)
		}
	}
	if !strings.Contains(log.String(), "stopping what was started") {
		t.Error("no word about stopping the processes already started")
	}
	if _, err := os.Stat(filepath.Join(runDir, "stack.json")); !os.IsNotExist(err) {
		t.Errorf("a failed stack-up left stack.json (err %v)", err)
	}
	for _, p := range used {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Errorf("port %d is still held after the failed stack-up: %v", p, err)
			continue
		}
		l.Close()
	}
}

// TestNativeStackWithoutPrometheus runs stack-up where Prometheus and
// Alertmanager are not installed: the API and the Slack sink still start,
// and the output says what to install.
func TestNativeStackWithoutPrometheus(t *testing.T) {
	integration.Short(t, "real processes (the API, Prometheus, Alertmanager)")
	dir := t.TempDir()
	vals := map[string]string{
		"STACK_RUN_DIR":    filepath.Join(dir, "run"),
		"PROMETHEUS_BIN":   filepath.Join(dir, "no-prometheus"),
		"ALERTMANAGER_BIN": filepath.Join(dir, "no-alertmanager"),
	}
	keys := []string{"STACK_API_PORT", "STACK_API_ADMIN_PORT", "STACK_PROMETHEUS_PORT", "STACK_ALERTMANAGER_PORT", "STACK_SLACKSINK_PORT", "STACK_LOAD_PORT"}
	for i, p := range freePorts(t, len(keys)) {
		vals[keys[i]] = fmt.Sprint(p)
	}
	cfg, err := stack.FromEnv(repo(t), func(k string) string { return vals[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := stack.Up(ctx, cfg, &out, io.Discard); err != nil {
		t.Fatalf("stack-up without Prometheus: %v", err)
	}
	t.Cleanup(func() { _ = stack.Down(context.Background(), cfg, io.Discard, false) })
	t.Logf("stack-up:\n%s", out.String())
	for _, want := range []string{
		"Not started: Prometheus", "Not started: Alertmanager", stack.InstallHint, "API docs", "Needs Docker",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stack-up output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "http://127.0.0.1:"+vals["STACK_PROMETHEUS_PORT"]) {
		t.Error("stack-up printed a Prometheus URL though Prometheus did not start")
	}
	var down bytes.Buffer
	if err := stack.Down(ctx, cfg, &down, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(down.String(), "stopped api") {
		t.Errorf("stack-down: %s", down.String())
	}
}
