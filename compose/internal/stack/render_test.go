package stack

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// testConfig is a native stack on distinctive ports rooted at /repo.
func testConfig(t *testing.T) Config {
	t.Helper()
	c, err := FromEnv("/repo", func(k string) string {
		return map[string]string{
			"STACK_API_PORT":          "18080",
			"STACK_API_ADMIN_PORT":    "18081",
			"STACK_PROMETHEUS_PORT":   "19090",
			"STACK_ALERTMANAGER_PORT": "19093",
			"STACK_SLACKSINK_PORT":    "19095",
			"STACK_LOAD_PORT":         "19096",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the rendered output (go test -update rewrites it):\n--- got\n%s", path, got)
	}
}

func TestRenderPrometheusFromComposeConfig(t *testing.T) {
	src, err := os.ReadFile("../../prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderPrometheus(src, testConfig(t).Mapping())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "prometheus.native.yml", out)

	var cfg struct {
		RuleFiles []string `yaml:"rule_files"`
		Alerting  struct {
			Alertmanagers []struct {
				StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
		ScrapeConfigs []struct {
			JobName       string                       `yaml:"job_name"`
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
			DNS           []any                        `yaml:"dns_sd_configs"`
			FileSD        []struct{ Files []string }   `yaml:"file_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("rendered config does not parse: %v", err)
	}
	wantTargets := map[string]string{
		"glasshouse-api": "127.0.0.1:18081",
		"prometheus":     "127.0.0.1:19090",
		"alertmanager":   "127.0.0.1:19093",
	}
	// The load generator runs only during `make load`, which writes its
	// target file: a static target would show it down the rest of the time.
	wantFiles := map[string]string{
		"glasshouse-load": "/repo/.run/stack/prometheus/targets/glasshouse-load/*.json",
	}
	for _, sc := range cfg.ScrapeConfigs {
		if len(sc.DNS) > 0 {
			t.Errorf("job %s still has dns_sd_configs", sc.JobName)
		}
		if want, ok := wantFiles[sc.JobName]; ok {
			if len(sc.FileSD) != 1 || !slices.Equal(sc.FileSD[0].Files, []string{want}) || len(sc.StaticConfigs) > 0 {
				t.Errorf("job %s: file_sd_configs = %+v, static = %+v; want only file discovery of %s", sc.JobName, sc.FileSD, sc.StaticConfigs, want)
			}
			delete(wantFiles, sc.JobName)
			continue
		}
		var got []string
		for _, st := range sc.StaticConfigs {
			got = append(got, st.Targets...)
		}
		if want, ok := wantTargets[sc.JobName]; !ok || len(got) != 1 || got[0] != want {
			t.Errorf("job %s targets = %v, want [%s]", sc.JobName, got, want)
		}
		delete(wantTargets, sc.JobName)
	}
	if len(wantTargets) > 0 || len(wantFiles) > 0 {
		t.Errorf("jobs missing from the rendered config: %v %v", wantTargets, wantFiles)
	}
	if am := cfg.Alerting.Alertmanagers; len(am) != 1 || am[0].StaticConfigs[0].Targets[0] != "127.0.0.1:19093" {
		t.Errorf("alertmanagers = %+v, want 127.0.0.1:19093", am)
	}
	for _, rf := range cfg.RuleFiles {
		if !strings.HasPrefix(rf, "/repo/alerts/") {
			t.Errorf("rule file %q does not point into the repository's alerts/", rf)
		}
	}
}

func TestRenderPrometheusRejectsWhatItCannotTranslate(t *testing.T) {
	m := testConfig(t).Mapping()
	for name, tc := range map[string]struct{ src, want string }{
		"unknown target": {
			src:  "scrape_configs:\n  - job_name: grafana\n    static_configs:\n      - targets: [grafana:3000]\n",
			want: `target "grafana:3000" has no native address`,
		},
		"unknown dns name": {
			src:  "scrape_configs:\n  - job_name: x\n    dns_sd_configs:\n      - names: [mystery]\n        type: A\n        port: 1234\n",
			want: `DNS name "mystery:1234" has no native address`,
		},
		"other discovery": {
			src:  "scrape_configs:\n  - job_name: x\n    file_sd_configs:\n      - files: [/etc/targets.json]\n",
			want: "file_sd_configs cannot be translated",
		},
		"rule file outside the mounts": {
			src:  "rule_files: [/etc/prometheus/rules/*.yaml]\n",
			want: `rule_files: "/etc/prometheus/rules/*.yaml" is outside every mounted directory`,
		},
		"not a mapping": {src: "- a\n- b\n", want: "want a YAML mapping"},
		"bad yaml":      {src: "scrape_configs: [\n", want: "parse prometheus config"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := RenderPrometheus([]byte(tc.src), m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestRenderAlertmanager(t *testing.T) {
	c := testConfig(t)
	src := `global:
  resolve_timeout: 5m
  slack_api_url_file: /run/secrets/slack_webhook_url
templates:
  - templates/*.tmpl
  - /etc/glasshouse/alerts/extra/*.tmpl
route:
  receiver: slack
receivers:
  - name: slack
    slack_configs:
      - channel: '#alerts'
        send_resolved: true
  - name: hook
    webhook_configs:
      - url: http://slacksink:9095/hooks/webhook
      - url: https://example.com/keep
`
	out, err := RenderAlertmanager([]byte(src), c.Mapping(), "/repo/alerts")
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		"slack_api_url_file: /repo/.run/stack/alertmanager/secrets/slack_webhook_url",
		"- /repo/alerts/templates/*.tmpl",
		"- /repo/alerts/extra/*.tmpl",
		"url: http://127.0.0.1:19095/hooks/webhook",
		"url: https://example.com/keep",
		"channel: '#alerts'",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, got)
		}
	}

	_, err = RenderAlertmanager([]byte("global:\n  slack_api_url_file: /var/secrets/hook\n"), c.Mapping(), "/repo/alerts")
	if err == nil || !strings.Contains(err.Error(), `"/var/secrets/hook" is not under a mounted directory`) {
		t.Errorf("unmapped absolute file: err = %v", err)
	}
}

func TestRenderAlertmanagerFromRepository(t *testing.T) {
	src, err := os.ReadFile("../../../alerts/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderAlertmanager(src, testConfig(t).Mapping(), "/repo/alerts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "slacksink:") || strings.Contains(string(out), ContainerSecretsDir) {
		t.Errorf("rendered Alertmanager config still names container addresses or paths:\n%s", out)
	}
}

func TestMapURL(t *testing.T) {
	m := testConfig(t).Mapping()
	for in, want := range map[string]string{
		"http://slacksink:9095/hooks/glasshouse":      "http://127.0.0.1:19095/hooks/glasshouse",
		"https://hooks.example.com/services/T0/B0/xx": "https://hooks.example.com/services/T0/B0/xx",
		"::not a url": "::not a url",
	} {
		if got := m.MapURL(in); got != want {
			t.Errorf("MapURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	c, err := FromEnv(".", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.APIPort != 8080 || c.APIAdminPort != 8081 || c.PrometheusPort != 9090 || c.AlertmanagerPort != 9093 || c.SlackSinkPort != 9095 {
		t.Errorf("defaults = %+v, want the ports compose publishes", c)
	}
	if !strings.HasSuffix(c.RunDir, filepath.Join(".run", "stack")) || !filepath.IsAbs(c.RunDir) {
		t.Errorf("RunDir = %q, want an absolute .run/stack", c.RunDir)
	}

	env := map[string]string{
		"STACK_HOST":              "0.0.0.0",
		"STACK_API_PORT":          "http",
		"STACK_PROMETHEUS_PORT":   "70000",
		"STACK_ALERTMANAGER_PORT": "9095",
		"DATABASE_URL":            "postgres://u@127.0.0.1/db",
	}
	c, err = FromEnv(".", func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"STACK_HOST", "STACK_API_PORT", "STACK_PROMETHEUS_PORT", "STACK_ALERTMANAGER_PORT and STACK_SLACKSINK_PORT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s (every problem is reported at once)", err, want)
		}
	}
	if len(c.APIEnv) != 1 || c.APIEnv[0] != "DATABASE_URL=postgres://u@127.0.0.1/db" {
		t.Errorf("APIEnv = %v, want DATABASE_URL passed through", c.APIEnv)
	}
}
