package gameday

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/glasshouse-dev/glasshouse/alerts/rules"
	"github.com/glasshouse-dev/glasshouse/alerts/slacksink"
	"github.com/glasshouse-dev/glasshouse/alerts/slo"
	"github.com/glasshouse-dev/glasshouse/internal/testenv"
)

// compress divides every SLO window and for: duration: 60 turns the 1h/5m
// page into a 1m/5s page that fires 2s after its condition holds.
const compress = 60

// Bounds so the gameday always stops by itself.
const (
	waitLimit   = 90 * time.Second // for one alert to fire or resolve
	maxRequests = 50000            // sent by the traffic generator in total
)

type result struct {
	fault, alert      string
	fired, resolved   time.Duration
	firedOK, resolvOK bool
}

// TestGameday is the end-to-end alerting test described in alerts/README.md.
func TestGameday(t *testing.T) {
	if testing.Short() {
		t.Skip("gameday starts Prometheus, Alertmanager and the API; skipped with -short")
	}
	testenv.Binary(t, "prometheus")
	testenv.Binary(t, "prometheus-alertmanager", "alertmanager")
	start := time.Now()
	root := testenv.ModuleRoot(t)
	dir := t.TempDir()

	// Build the real binaries.
	apiBin := testenv.BuildBinary(t, root, "./app/cmd/glasshouse-api", dir)
	sinkBin := testenv.BuildBinary(t, root, "./alerts/cmd/slacksink", dir)
	t.Logf("built binaries in %v", time.Since(start).Round(time.Millisecond))

	// Slack sink.
	sinkProc := testenv.Start(t, dir, "slacksink", sinkBin, []string{"-addr", "127.0.0.1:0"}, nil)
	sinkURL := waitSinkURL(t, sinkProc)
	sink := &sinkClient{base: sinkURL}

	// Alertmanager with the committed configuration, posting to the sink.
	amCfg, err := testenv.AlertmanagerConfig(filepath.Join(root, "alerts", "alertmanager.yml"), sinkURL+"/hooks/glasshouse", dir,
		testenv.AlertmanagerTimings{GroupWait: "1s", GroupInterval: "1s", RepeatInterval: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	am := testenv.StartAlertmanager(t, amCfg)

	// The API, with a user and an item to read.
	api := startAPI(t, apiBin, dir)
	token, itemID := seed(t, api.base)

	// Prometheus scraping the API every second, with compressed rules.
	promCfg := writePrometheusConfig(t, root, dir, api.adminAddr, strings.TrimPrefix(am.URL, "http://"))
	prom := testenv.StartPrometheus(t, promCfg)
	pc := &promClient{prom}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	traffic := startTraffic(ctx, api.base, token, itemID)
	t.Cleanup(traffic.stop)

	// Baseline: the target is up, rules are evaluated, nothing burns.
	waitFor(t, ctx, "the API target up and the SLO rules evaluated", func() (bool, error) {
		up, err := pc.value(ctx, `up{job="glasshouse-api"}`)
		if err != nil || up != 1 {
			return false, err
		}
		v, err := pc.value(ctx, `sum(rate(http_server_request_duration_seconds_count{job="glasshouse-api"}[5s]))`)
		return err == nil && v > 0, err
	})
	time.Sleep(10 * time.Second) // windows fill with healthy traffic
	if firing := pc.firing(ctx, "SLOErrorBudgetBurn"); len(firing) > 0 {
		t.Fatalf("burn alerts fire under healthy traffic: %v", firing)
	}
	t.Logf("baseline healthy at %v; %d requests sent", time.Since(start).Round(time.Second), traffic.sent.Load())

	fast := func(sloName string) string {
		return fmt.Sprintf("SLOErrorBudgetBurn{slo=%q,long_window=\"1m\"}", sloName)
	}
	var results []result

	// 1. Half of all requests answer 500.
	r := runFault(t, ctx, sink, api.admin, "50% 5xx on every route", fast("availability"),
		`{"errors":[{"route":"*","ratio":0.5}]}`,
		match{alertname: "SLOErrorBudgetBurn", title: "availability SLO (critical)", labels: []string{"`long_window=1m`", "`slo=availability`"}},
		func(m slacksink.Message, b string) {
			// The message a human would read: summary, description, runbook, dashboard.
			for _, want := range []string{
				"*The availability SLO is burning its error budget 14.4x too fast (1m and 5s windows).*",
				"of requests failed the availability SLI over the last 1m",
				"|Runbook>", "slo-availability.md", "|Dashboard>", "/d/glasshouse-slo?var-slo=availability",
			} {
				if !strings.Contains(b, want) {
					t.Errorf("firing Slack message lacks %q:\n%s", want, b)
				}
			}
			if c := m.Payload.Attachments[0].Color; c != "danger" {
				t.Errorf("critical message color = %q, want danger", c)
			}
		})
	results = append(results, r)

	// 2. Every request takes 300 ms (the latency SLO's threshold is 250 ms).
	results = append(results, runFault(t, ctx, sink, api.admin, "+300ms on every route", fast("latency"),
		`{"latency":[{"route":"*","delay":"300ms","ratio":1}]}`,
		match{alertname: "SLOErrorBudgetBurn", title: "latency SLO (critical)", labels: []string{"`long_window=1m`", "`slo=latency`"}}, nil))

	// 3. The database is down: item routes and readiness answer 503.
	results = append(results, runFault(t, ctx, sink, api.admin, "database outage", fast("availability"),
		`{"outages":["database"]}`,
		match{alertname: "SLOErrorBudgetBurn", title: "availability SLO (critical)", labels: []string{"`long_window=1m`", "`slo=availability`"}}, nil))

	// 4. The API process dies; then it comes back.
	killed := time.Now()
	api.proc.Kill()
	res := result{fault: "API killed (SIGKILL), then restarted", alert: "TargetDown"}
	down := match{alertname: "TargetDown", title: "TargetDown (critical)", labels: []string{"`job=glasshouse-api`"}}
	if m, _, ok := sink.wait(t, ctx, killed, "FIRING", down); ok {
		res.fired, res.firedOK = m.Received.Sub(killed), true
	}
	restarted := time.Now()
	api.restart(t)
	if m, _, ok := sink.wait(t, ctx, restarted, "RESOLVED", down); ok {
		res.resolved, res.resolvOK = m.Received.Sub(restarted), true
	}
	results = append(results, res)

	// Exemplars reached Prometheus's exemplar storage with trace IDs.
	if n, err := pc.exemplars(ctx, `http_server_request_duration_seconds_bucket{job="glasshouse-api"}`, start); err != nil || n == 0 {
		t.Errorf("no trace_id exemplars stored by Prometheus (%d, %v)", n, err)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\ngameday (windows compressed %dx; scrape and evaluation every 1s; Alertmanager group_wait/group_interval 1s)\n", compress)
	wf, wa := len("fault"), len("alert")
	for _, r := range results {
		wf, wa = max(wf, len(r.fault)), max(wa, len(r.alert))
	}
	fmt.Fprintf(&b, "%-*s  %-*s  %-12s %s\n", wf, "fault", wa, "alert", "fired after", "resolved after")
	for _, r := range results {
		fmt.Fprintf(&b, "%-*s  %-*s  %-12s %s\n", wf, r.fault, wa, r.alert, dur(r.fired, r.firedOK), dur(r.resolved, r.resolvOK))
	}
	fmt.Fprintf(&b, "(times from injecting / removing the fault to the Slack message arriving at the sink; total %v, %d requests sent)\n",
		time.Since(start).Round(time.Second), traffic.sent.Load())
	t.Log(b.String())
	for _, r := range results {
		if !r.firedOK || !r.resolvOK {
			t.Errorf("%s: %s did not both fire and resolve", r.fault, r.alert)
		}
	}
}

func dur(d time.Duration, ok bool) string {
	if !ok {
		return "never"
	}
	return d.Round(100 * time.Millisecond).String()
}

// runFault injects body at /debug/fault, waits for the matching FIRING
// block in Slack, removes the fault and waits for the RESOLVED block.
func runFault(t *testing.T, ctx context.Context, sink *sinkClient, admin, name, alert, body string, m match, check func(slacksink.Message, string)) result {
	t.Helper()
	res := result{fault: name, alert: alert}
	injected := time.Now()
	putFault(t, ctx, admin, body)
	msg, block, ok := sink.wait(t, ctx, injected, "FIRING", m)
	if ok {
		res.fired, res.firedOK = msg.Received.Sub(injected), true
		if check != nil {
			check(msg, block)
		}
	}
	removed := time.Now()
	putFault(t, ctx, admin, "")
	if msg, _, ok := sink.wait(t, ctx, removed, "RESOLVED", m); ok {
		res.resolved, res.resolvOK = msg.Received.Sub(removed), true
	}
	return res
}

func putFault(t *testing.T, ctx context.Context, admin, body string) {
	t.Helper()
	method := http.MethodPut
	if body == "" {
		method = http.MethodDelete
	}
	req, err := http.NewRequestWithContext(ctx, method, admin+"/debug/fault", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json") // /debug/fault refuses anything else
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s /debug/fault: %v", method, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /debug/fault %s = %d %s", method, body, resp.StatusCode, b)
	}
}

// --- the API process -------------------------------------------------------

type apiProc struct {
	bin, dir         string
	env              []string
	base, admin      string
	adminAddr        string
	proc             *testenv.Process
	restartedProcess int
}

func startAPI(t *testing.T, bin, dir string) *apiProc {
	t.Helper()
	addr, adminAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	a := &apiProc{bin: bin, dir: dir, base: "http://" + addr, admin: "http://" + adminAddr, adminAddr: adminAddr,
		env: []string{"ADDR=" + addr, "ADMIN_ADDR=" + adminAddr, "DATA_DIR=" + filepath.Join(dir, "data"),
			"APP_ENV=development", "LOG_FORMAT=json", "LOG_LEVEL=warn", "ACCESS_LOG=false", "SHUTDOWN_TIMEOUT=2s"}}
	a.restart(t)
	return a
}

func (a *apiProc) restart(t *testing.T) {
	t.Helper()
	a.restartedProcess++
	a.proc = testenv.Start(t, a.dir, fmt.Sprintf("glasshouse-api-%d", a.restartedProcess), a.bin, []string{"-env-file="}, a.env)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := testenv.WaitReady(ctx, a.proc, a.base+"/health/ready"); err != nil {
		t.Fatal(err)
	}
}

// seed signs up a user, logs in and creates an item, returning the token
// and the item's ID for the traffic generator.
func seed(t *testing.T, base string) (string, int64) {
	t.Helper()
	post := func(path, token, body string, out any) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s = %d %s", path, resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("POST %s: %v: %s", path, err, b)
		}
	}
	var user struct{ ID int64 }
	post("/api/v1/users", "", `{"username":"gameday","email":"gameday@example.com","password":"Correct-Horse-Battery-Staple-9"}`, &user)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	post("/api/v1/auth/login", "", `{"username":"gameday","password":"Correct-Horse-Battery-Staple-9"}`, &login)
	var item struct{ ID int64 }
	post("/api/v1/items", login.AccessToken, `{"name":"canary","description":"read by the gameday traffic"}`, &item)
	if login.AccessToken == "" || item.ID == 0 {
		t.Fatalf("seed: token %q item %d", login.AccessToken, item.ID)
	}
	return login.AccessToken, item.ID
}

// --- traffic -----------------------------------------------------------------

type traffic struct {
	sent   atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (tr *traffic) stop() { tr.cancel(); tr.wg.Wait() }

// startTraffic sends a steady, bounded mix of reads (authenticated item
// reads and lists, health checks) from 4 workers, about 60 requests a
// second, until ctx ends or maxRequests were sent.
func startTraffic(ctx context.Context, base, token string, itemID int64) *traffic {
	ctx, cancel := context.WithCancel(ctx)
	tr := &traffic{cancel: cancel}
	client := &http.Client{Timeout: 5 * time.Second}
	paths := []string{"/api/v1/items", fmt.Sprintf("/api/v1/items/%d", itemID), "/health", "/api/v1/users/me"}
	for w := range 4 {
		tr.wg.Go(func() {
			for i := w; ctx.Err() == nil && tr.sent.Add(1) <= maxRequests; i++ {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+paths[i%len(paths)], nil)
				if err != nil {
					return
				}
				req.Header.Set("Authorization", "Bearer "+token)
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				select {
				case <-ctx.Done():
				case <-time.After(60 * time.Millisecond):
				}
			}
		})
	}
	return tr
}

// --- Prometheus ----------------------------------------------------------------

// writePrometheusConfig renders the compressed SLO rules and the symptom
// rules (their for: durations compressed too) and a configuration scraping
// the API's admin listener every second.
func writePrometheusConfig(t *testing.T, root, dir, adminAddr, amAddr string) string {
	t.Helper()
	spec, err := slo.Load(filepath.Join(root, "alerts", "slo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := rules.Generate(spec, rules.Options{Compress: compress, Source: "alerts/slo.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "slo-rules.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	sym, err := os.ReadFile(filepath.Join(root, "alerts", "symptoms.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f rules.File
	if err := yaml.Unmarshal(sym, &f); err != nil {
		t.Fatal(err)
	}
	for gi := range f.Groups {
		for ri, r := range f.Groups[gi].Rules {
			if r.For == "" {
				continue
			}
			d, err := slo.ParseDuration(r.For)
			if err != nil {
				t.Fatalf("symptoms.yaml %s for: %v", r.Alert, err)
			}
			f.Groups[gi].Rules[ri].For = slo.FormatDuration(max(d/compress, time.Second))
		}
	}
	sb, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "symptoms.yaml"), sb, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - %s
  - %s
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['%s']
scrape_configs:
  - job_name: glasshouse-api
    static_configs:
      - targets: ['%s']
`, filepath.Join(dir, "slo-rules.yaml"), filepath.Join(dir, "symptoms.yaml"), amAddr, adminAddr)
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type promClient struct{ *testenv.Prometheus }

// value returns the single value of an instant query, or an error.
func (p *promClient) value(ctx context.Context, query string) (float64, error) {
	var data struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := p.API(ctx, "/api/v1/query", url.Values{"query": {query}}, &data); err != nil {
		return 0, err
	}
	if len(data.Result) != 1 {
		return 0, fmt.Errorf("%s: %d series", query, len(data.Result))
	}
	s, _ := data.Result[0].Value[1].(string)
	var v float64
	_, err := fmt.Sscan(s, &v)
	return v, err
}

// firing lists the firing alerts named name with their labels.
func (p *promClient) firing(ctx context.Context, name string) []map[string]string {
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := p.API(ctx, "/api/v1/alerts", nil, &data); err != nil {
		return []map[string]string{{"error": err.Error()}}
	}
	var out []map[string]string
	for _, a := range data.Alerts {
		if a.State == "firing" && a.Labels["alertname"] == name {
			out = append(out, a.Labels)
		}
	}
	return out
}

// exemplars counts stored exemplars carrying a trace_id for the selector.
func (p *promClient) exemplars(ctx context.Context, selector string, since time.Time) (int, error) {
	var data []struct {
		Exemplars []struct {
			Labels map[string]string `json:"labels"`
		} `json:"exemplars"`
	}
	q := url.Values{"query": {selector}, "start": {fmt.Sprint(since.Unix())}, "end": {fmt.Sprint(time.Now().Unix())}}
	if err := p.API(ctx, "/api/v1/query_exemplars", q, &data); err != nil {
		return 0, err
	}
	n := 0
	for _, s := range data {
		for _, e := range s.Exemplars {
			if e.Labels["trace_id"] != "" {
				n++
			}
		}
	}
	return n, nil
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
}

// --- the Slack sink --------------------------------------------------------------

func waitSinkURL(t *testing.T, p *testenv.Process) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for line := range strings.SplitSeq(p.Log(), "\n") {
			if rest, ok := strings.CutPrefix(line, "slacksink listening on "); ok {
				u, _, _ := strings.Cut(rest, " ")
				return u
			}
		}
		if exited, err := p.Exited(); exited {
			t.Fatalf("slacksink exited: %v\n%s", err, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("slacksink did not start:\n%s", p.Log())
	return ""
}

type sinkClient struct{ base string }

func (s *sinkClient) messages(ctx context.Context) ([]slacksink.Message, error) {
	var msgs []slacksink.Message
	return msgs, testenv.GetJSON(ctx, s.base+"/messages", &msgs)
}

// match selects one alert's block in a Slack message.
type match struct {
	alertname string   // in the message title
	title     string   // also in the title, e.g. "availability SLO (critical)"
	labels    []string // in the alert's block, e.g. "`long_window=1m`"
}

// blocks splits a message's text into one block per alert (the template
// starts each with its status marker).
func blocks(m slacksink.Message) []string {
	if len(m.Payload.Attachments) == 0 {
		return nil
	}
	var out []string
	var cur *bytes.Buffer
	for line := range strings.SplitSeq(m.Payload.Attachments[0].Text, "\n") {
		if strings.HasPrefix(line, ":red_circle: *FIRING*") || strings.HasPrefix(line, ":large_green_circle: *RESOLVED*") {
			if cur != nil {
				out = append(out, cur.String())
			}
			cur = &bytes.Buffer{}
		}
		if cur != nil {
			cur.WriteString(line + "\n")
		}
	}
	if cur != nil {
		out = append(out, cur.String())
	}
	return out
}

// wait polls the sink for a message received after since with a block of
// the given status ("FIRING" or "RESOLVED") matching m.
func (s *sinkClient) wait(t *testing.T, ctx context.Context, since time.Time, status string, m match) (slacksink.Message, string, bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		msgs, err := s.messages(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("slack sink: %v", err)
		}
		for _, msg := range msgs {
			if msg.Received.Before(since) || len(msg.Payload.Attachments) == 0 {
				continue
			}
			title := msg.Payload.Attachments[0].Title
			if !strings.Contains(title, m.alertname) || !strings.Contains(title, m.title) {
				continue
			}
			for _, b := range blocks(msg) {
				if !strings.Contains(b, "*"+status+"*") {
					continue
				}
				ok := true
				for _, l := range m.labels {
					ok = ok && strings.Contains(b, l)
				}
				if ok {
					return msg, b, true
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	msgs, _ := s.messages(context.Background())
	var got []string
	for _, msg := range msgs {
		got = append(got, msg.Text())
	}
	t.Errorf("no %s Slack message for %s %v after %v within %v; messages:\n%s",
		status, m.title, m.labels, since.Format(time.TimeOnly), waitLimit, strings.Join(got, "\n---\n"))
	return slacksink.Message{}, "", false
}
