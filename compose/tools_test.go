package compose_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/glasshouse-dev/glasshouse/compose/internal/stack"
)

// TestPromtoolCheckConfig runs Prometheus's own checker on both forms of the
// config: as the container sees it (rule globs resolved through the compose
// mount, so every rule file is checked too) and as the native stack renders
// it. promtool here is Debian's 2.42; compose pins 3.x, so the config keeps to
// what both accept.
func TestPromtoolCheckConfig(t *testing.T) {
	promtool := lookBin(t, "promtool", "prometheus")
	src, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("compose", func(t *testing.T) {
		prom := service(t, mustLoadCompose(t), "prometheus")
		var doc yaml.Node
		if err := yaml.Unmarshal(src, &doc); err != nil {
			t.Fatal(err)
		}
		// Point rule_files at the host paths the container mounts; targets
		// stay as compose writes them (promtool does not resolve them).
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "rule_files" {
				for _, n := range root.Content[i+1].Content {
					if h := hostPathOf(prom, n.Value); h != "" {
						n.Value = h
					} else {
						t.Errorf("rule file %s is not mounted", n.Value)
					}
				}
			}
		}
		b, err := yaml.Marshal(&doc)
		if err != nil {
			t.Fatal(err)
		}
		checkPromConfig(t, promtool, b)
	})

	t.Run("native", func(t *testing.T) {
		cfg, err := stack.FromEnv(repo(t), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		b, err := stack.RenderPrometheus(src, cfg.Mapping())
		if err != nil {
			t.Fatal(err)
		}
		checkPromConfig(t, promtool, b)
	})
}

func checkPromConfig(t *testing.T, promtool string, cfg []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	out := runTool(t, t.TempDir(), promtool, "check", "config", path)
	t.Logf("promtool check config:\n%s", out)
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool did not report SUCCESS:\n%s", out)
	}
	// Every rules file in alerts/ that the globs match was checked too.
	files, _ := filepath.Glob(filepath.Join(repo(t), "alerts", "generated", "*.yaml"))
	for _, f := range files {
		if !strings.Contains(out, f) {
			t.Errorf("promtool did not check rule file %s", f)
		}
	}
}

// TestAmtoolCheckConfig runs Alertmanager's checker on alerts/alertmanager.yml
// as compose mounts it and as the native stack renders it, and checks compose
// provides the Slack webhook file the config reads.
func TestAmtoolCheckConfig(t *testing.T) {
	src := filepath.Join(repo(t), "alerts", "alertmanager.yml")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := mustLoadCompose(t)
	am := service(t, p, "alertmanager")

	// Compose runs Alertmanager on the file in the repository.
	var configFile string
	for _, a := range am.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configFile = v
		}
	}
	if got := hostPathOf(am, configFile); got != src {
		t.Errorf("alertmanager --config.file=%s resolves to %q, want %s", configFile, got, src)
	}
	if !strings.Contains(strings.Join(am.Command, " "), "--cluster.listen-address= ") && !strings.HasSuffix(strings.Join(am.Command, " "), "--cluster.listen-address=") {
		t.Error("alertmanager should run with an empty --cluster.listen-address (single instance, no gossip port)")
	}

	// Any file the config reads from the secrets directory is a compose
	// secret mounted there.
	secretTargets := map[string]bool{}
	for _, s := range am.Secrets {
		secretTargets[s.Target] = true
	}
	for _, m := range regexp.MustCompile(`(?m)_file:\s*['"]?(\S+?)['"]?\s*$`).FindAllStringSubmatch(string(raw), -1) {
		path := m[1]
		switch {
		case strings.HasPrefix(path, stack.ContainerSecretsDir+"/"):
			if !secretTargets[path] {
				t.Errorf("alertmanager.yml reads %s, but compose mounts no secret there (have %v)", path, keys(secretTargets))
			}
		case strings.HasPrefix(path, "/") && hostPathOf(am, path) == "":
			t.Errorf("alertmanager.yml reads %s, which is neither a compose secret nor mounted", path)
		}
	}
	if !secretTargets[stack.ContainerSecretsDir+"/"+stack.SlackWebhookFile] {
		t.Errorf("compose mounts no Slack webhook secret at %s/%s", stack.ContainerSecretsDir, stack.SlackWebhookFile)
	}

	amtool := lookBin(t, "amtool", "prometheus-alertmanager")
	t.Run("compose", func(t *testing.T) {
		out := runTool(t, filepath.Dir(src), amtool, "check-config", src)
		t.Logf("amtool check-config:\n%s", out)
		if !strings.Contains(out, "SUCCESS") {
			t.Errorf("amtool did not report SUCCESS:\n%s", out)
		}
	})
	t.Run("native", func(t *testing.T) {
		cfg, err := stack.FromEnv(repo(t), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		b, err := stack.RenderAlertmanager(raw, cfg.Mapping(), filepath.Dir(src))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "alertmanager.yml")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out := runTool(t, t.TempDir(), amtool, "check-config", path)
		if !strings.Contains(out, "SUCCESS") {
			t.Errorf("amtool did not report SUCCESS on the native config:\n%s", out)
		}
	})
}
