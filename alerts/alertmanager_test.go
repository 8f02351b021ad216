package alerts_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/alerts/slacksink"
	"github.com/glasshouse-dev/glasshouse/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

const amConfig = "alertmanager.yml"

func amtool(t *testing.T) string {
	t.Helper()
	return testenv.Binary(t, "amtool")
}

func TestAmtoolCheckConfig(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), amtool(t), "check-config", amConfig).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	for _, want := range []string{"3 receivers", "1 inhibit rules", "1 templates"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("amtool check-config output lacks %q:\n%s", want, out)
		}
	}
}

// TestAmtoolRoutes checks where each severity goes, and that a wrong
// expectation fails (so the check itself can fail).
func TestAmtoolRoutes(t *testing.T) {
	bin := amtool(t)
	route := func(receiver string, labels ...string) error {
		args := append([]string{"config", "routes", "test", "--config.file=" + amConfig, "--verify.receivers=" + receiver}, labels...)
		out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	for _, tt := range []struct {
		receiver string
		labels   []string
	}{
		{"slack-critical", []string{"alertname=SLOErrorBudgetBurn", "severity=critical", "slo=availability", "long_window=1h"}},
		{"slack-critical", []string{"alertname=TargetDown", "severity=critical", "instance=api:8081"}},
		{"slack-warning", []string{"alertname=SLOErrorBudgetBurn", "severity=warning", "slo=latency", "long_window=1d"}},
		{"slack-warning", []string{"alertname=HostCPUSaturated", "severity=warning"}},
		{"slack-info", []string{"alertname=TraceSpansDropped", "severity=info"}},
		{"slack-warning", []string{"alertname=SomethingWithoutSeverity"}},
	} {
		if err := route(tt.receiver, tt.labels...); err != nil {
			t.Errorf("%v should route to %s: %v", tt.labels, tt.receiver, err)
		}
	}
	if err := route("slack-info", "severity=critical"); err == nil {
		t.Error("a critical alert routed to slack-info: the verification cannot fail")
	}
}

// TestAmtoolTemplateRender renders the Slack templates with Alertmanager's
// own template engine (amtool template render) for a group holding a firing
// and a resolved alert, and compares with testdata/slack.golden.
func TestAmtoolTemplateRender(t *testing.T) {
	text := `title: {{ template "glasshouse.slack.title" . }}
title_link: {{ template "glasshouse.slack.titlelink" . }}
color: {{ template "glasshouse.slack.color" . }}
footer: {{ template "glasshouse.slack.footer" . }}
text:
{{ template "glasshouse.slack.text" . }}`
	out, err := exec.CommandContext(t.Context(), amtool(t), "template", "render",
		"--template.glob=templates/*.tmpl", "--template.data=testdata/slack-data.json", "--template.text="+text).CombinedOutput()
	if err != nil {
		t.Fatalf("amtool template render: %v\n%s", err, out)
	}
	for _, want := range []string{
		"title: [FIRING:1] SLOErrorBudgetBurn · availability SLO (critical)",
		"color: danger",
		":red_circle: *FIRING* · *The availability SLO is burning its error budget 14.4x too fast (1h and 5m windows).*",
		"<https://github.com/glasshouse-dev/glasshouse/blob/main/alerts/runbooks/slo-availability.md|Runbook>",
		"<http://localhost:3000/d/glasshouse-slo?var-slo=availability|Dashboard>",
		":large_green_circle: *RESOLVED* · *The availability SLO is burning its error budget 6x too fast (6h and 30m windows).*",
		"`long_window=1h`",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered template lacks %q", want)
		}
	}
	golden := filepath.Join("testdata", "slack.golden")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestAmtoolTemplateRender -update)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("rendered template differs from %s (rerun with -update if intended):\n%s", golden, out)
	}
}

type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func burn(severity, slo, long string) amAlert {
	return amAlert{
		Labels: map[string]string{"alertname": "SLOErrorBudgetBurn", "severity": severity, "slo": slo,
			"service": "glasshouse-api", "long_window": long, "short_window": "x"},
		Annotations: map[string]string{
			"summary":     fmt.Sprintf("The %s SLO %s burn over %s.", slo, severity, long),
			"description": "d", "runbook_url": "https://r.example/slo-" + slo + ".md",
			"dashboard_url": "http://g.example/d/glasshouse-slo",
		},
	}
}

func symptom(name, severity string) amAlert {
	return amAlert{
		Labels:      map[string]string{"alertname": name, "severity": severity, "job": "glasshouse-api", "instance": "api:8081"},
		Annotations: map[string]string{"summary": name + " summary.", "description": "d", "runbook_url": "https://r.example/x.md"},
	}
}

func postAlerts(t *testing.T, am string, alerts ...amAlert) {
	t.Helper()
	b, err := json.Marshal(alerts)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(am+"/api/v2/alerts", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts = %s", resp.Status)
	}
}

// waitMessage waits for a Slack message whose title starts with title and
// whose text contains every one of want, and returns it.
func waitMessage(t *testing.T, sink *slacksink.Sink, title string, want ...string) slacksink.Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range sink.Messages(0) {
			if len(m.Payload.Attachments) == 0 || !strings.HasPrefix(m.Payload.Attachments[0].Title, title) {
				continue
			}
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(m.Text(), w)
			}
			if ok {
				return m
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	var got []string
	for _, m := range sink.Messages(0) {
		got = append(got, m.Text())
	}
	t.Fatalf("no Slack message titled %q containing %q within 30s; got:\n%s", title, want, strings.Join(got, "\n---\n"))
	return slacksink.Message{}
}

func alertStates(t *testing.T, am string) map[string]string {
	t.Helper()
	resp, err := http.Get(am + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var alerts []struct {
		Annotations map[string]string `json:"annotations"`
		Status      struct {
			State       string   `json:"state"`
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range alerts {
		out[a.Annotations["summary"]] = a.Status.State
	}
	return out
}

// TestAlertmanagerToSlack runs the committed configuration in a real
// Alertmanager, with only its Slack URL and timings changed, against the
// Slack sink: routing by severity, grouping by alert name and SLO, the
// inhibition of a warning by the same SLO's critical (and not by a critical
// without an slo label), the message text, and the resolved message.
func TestAlertmanagerToSlack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Alertmanager; skipped with -short")
	}
	sink := slacksink.New(slacksink.Options{})
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	cfg, err := testenv.AlertmanagerConfig(amConfig, srv.URL+"/hooks/glasshouse", t.TempDir(),
		testenv.AlertmanagerTimings{GroupWait: "1s", GroupInterval: "1s", RepeatInterval: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	am := testenv.StartAlertmanager(t, cfg)

	critAvail := burn("critical", "availability", "1h")
	warnAvail := burn("warning", "availability", "1d")
	warnLat := burn("warning", "latency", "1d")
	down := symptom("TargetDown", "critical")
	cpu := symptom("HostCPUSaturated", "warning")
	now := time.Now().UTC()
	for _, a := range []*amAlert{&critAvail, &warnAvail, &warnLat, &down, &cpu} {
		a.StartsAt = now
	}
	postAlerts(t, am.URL, critAvail, warnAvail, warnLat, down, cpu)

	m := waitMessage(t, sink, "[FIRING:1] SLOErrorBudgetBurn · availability SLO (critical)",
		":red_circle: *FIRING*", critAvail.Annotations["summary"], "<https://r.example/slo-availability.md|Runbook>",
		"<http://g.example/d/glasshouse-slo|Dashboard>", "`long_window=1h`")
	if a := m.Payload.Attachments[0]; a.Color != "danger" || m.Payload.Channel != "#glasshouse-alerts" {
		t.Errorf("critical message color %q channel %q, want danger #glasshouse-alerts", a.Color, m.Payload.Channel)
	}
	waitMessage(t, sink, "[FIRING:1] SLOErrorBudgetBurn · latency SLO (warning)", warnLat.Annotations["summary"])
	waitMessage(t, sink, "[FIRING:1] TargetDown (critical)", "TargetDown summary.", "`instance=api:8081`")
	waitMessage(t, sink, "[FIRING:1] HostCPUSaturated (warning)", "HostCPUSaturated summary.")

	states := alertStates(t, am.URL)
	for summary, want := range map[string]string{
		critAvail.Annotations["summary"]: "active",
		warnAvail.Annotations["summary"]: "suppressed", // same SLO, critical firing
		warnLat.Annotations["summary"]:   "active",     // other SLO
		"HostCPUSaturated summary.":      "active",     // TargetDown has no slo label
	} {
		if got := states[summary]; got != want {
			t.Errorf("state of %q = %q, want %q", summary, got, want)
		}
	}
	for _, m := range sink.Messages(0) {
		if strings.Contains(m.Text(), warnAvail.Annotations["summary"]) {
			t.Errorf("inhibited warning reached Slack:\n%s", m.Text())
		}
	}

	// Resolve the critical: its resolved message arrives, and the warning
	// it was holding back is sent.
	critAvail.EndsAt = time.Now().UTC().Add(-time.Second)
	postAlerts(t, am.URL, critAvail)
	m = waitMessage(t, sink, "[RESOLVED] SLOErrorBudgetBurn · availability SLO (critical)",
		":large_green_circle: *RESOLVED*", critAvail.Annotations["summary"], "_Resolved:_")
	if c := m.Payload.Attachments[0].Color; c != "good" {
		t.Errorf("resolved message color = %q, want good", c)
	}
	waitMessage(t, sink, "[FIRING:1] SLOErrorBudgetBurn · availability SLO (warning)", warnAvail.Annotations["summary"])
}
