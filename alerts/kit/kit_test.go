package kit_test

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/glasshouse-dev/glasshouse/alerts/kit"
	"github.com/glasshouse-dev/glasshouse/alerts/slo"
	"github.com/glasshouse-dev/glasshouse/internal/testenv"
)

const ordersSpec = "../../examples/orders/slo.yaml"

func render(t *testing.T, spec slo.Spec, source string) map[string][]byte {
	t.Helper()
	files, err := kit.Render(spec, kit.Options{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func load(t *testing.T, path string) slo.Spec {
	t.Helper()
	spec, err := slo.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestFoldersUpToDate: every service folder in the repository (a slo.yaml
// beside a generated/ folder, such as examples/orders) holds exactly what
// `make rules SLO=<dir>/slo.yaml` writes: no stale, missing or hand-edited
// file. alerts/slo.yaml, the API's own spec, has its own layout and test.
func TestFoldersUpToDate(t *testing.T) {
	root := testenv.ModuleRoot(t)
	var specs []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.Name() == "slo.yaml" && filepath.Dir(p) != filepath.Join(root, "alerts") {
			if fi, err := os.Stat(filepath.Join(filepath.Dir(p), "generated")); err == nil && fi.IsDir() {
				specs = append(specs, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(specs, filepath.Join(root, "examples", "orders", "slo.yaml")) {
		t.Fatalf("found service folders %v, want examples/orders among them", specs)
	}
	for _, specPath := range specs {
		rel, _ := filepath.Rel(root, specPath)
		rel = filepath.ToSlash(rel)
		dir := filepath.Join(filepath.Dir(specPath), "generated")
		files := render(t, load(t, specPath), rel)
		var committed []string
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			name, _ := filepath.Rel(dir, p)
			name = filepath.ToSlash(name)
			committed = append(committed, name)
			got, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if want, ok := files[name]; ok && !bytes.Equal(got, want) {
				t.Errorf("%s is stale or edited by hand; run make rules SLO=%s", filepath.ToSlash(filepath.Join(filepath.Dir(rel), "generated", name)), rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(committed)
		if want := slices.Sorted(maps.Keys(files)); !slices.Equal(committed, want) {
			t.Errorf("%s: committed files %v, want %v (run make rules SLO=%s)", dir, committed, want, rel)
		}
	}
}

// otherSpec differs from the orders spec in every field a fork edits:
// name, selector (two matchers), period, objectives, SLO names and an
// integral latency threshold.
const otherSpec = `
service: payments
selector: 'job="payments", env="prod"'
period: 28d
links: {runbooks: 'https://git.example.com/pay/runbooks/', grafana: 'https://grafana.example.com'}
slos:
  - {name: success, description: Non-5xx share., objective: 0.9995, sli: {type: availability}}
  - {name: fast, description: Under a second., objective: 0.9, sli: {type: latency, threshold_seconds: 1}}
`

// TestNothingSaysGlasshouse: a second service's folder names only it.
func TestNothingSaysGlasshouse(t *testing.T) {
	other, err := slo.Parse([]byte(otherSpec))
	if err != nil {
		t.Fatal(err)
	}
	for name, spec := range map[string]slo.Spec{"orders": load(t, ordersSpec), "payments": other} {
		files := render(t, spec, name+"/slo.yaml")
		for _, f := range []string{kit.RulesFile, kit.SymptomsFile, kit.ThresholdsFile, kit.SLOTestFile, kit.SymptomsTest,
			kit.RunbooksDir + "target-down.md", kit.DashboardsDir + name + "-red.json"} {
			if _, ok := files[f]; !ok {
				t.Errorf("%s: no %s", name, f)
			}
		}
		for f, b := range files {
			if i := bytes.Index(bytes.ToLower(b), []byte("glasshouse")); i >= 0 {
				t.Errorf("%s/%s says glasshouse: ...%s...", name, f, b[max(0, i-60):min(len(b), i+30)])
			}
			if !bytes.Contains(b, []byte(name)) {
				t.Errorf("%s/%s does not name the service", name, f)
			}
		}
	}
}

// TestPromtool: for both specs the rendered rules pass promtool check
// rules, and the rendered tests pass promtool test rules.
func TestPromtool(t *testing.T) {
	promtool := testenv.Binary(t, "promtool")
	other, err := slo.Parse([]byte(otherSpec))
	if err != nil {
		t.Fatal(err)
	}
	for name, spec := range map[string]slo.Spec{"orders": load(t, ordersSpec), "payments": other} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := kit.Write(dir, render(t, spec, name)); err != nil {
				t.Fatal(err)
			}
			run := func(dir string, args ...string) {
				t.Helper()
				cmd := exec.Command(promtool, args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("promtool %v: %v\n%s", args, err, out)
				}
			}
			run(dir, "check", "rules", kit.RulesFile, kit.SymptomsFile)
			run(filepath.Join(dir, "tests"), "test", "rules", "slo.test.yaml", "symptoms.test.yaml")
		})
	}
}

// TestEveryAlertTestedAndLinked: every alert of the folder fires in a
// generated test, and every runbook_url names a rendered runbook.
func TestEveryAlertTestedAndLinked(t *testing.T) {
	spec := load(t, ordersSpec)
	files := render(t, spec, "orders")
	tests := string(files[kit.SLOTestFile]) + string(files[kit.SymptomsTest])
	rulesText := string(files[kit.RulesFile]) + string(files[kit.SymptomsFile])
	for _, m := range regexp.MustCompile(`(?m)^\s+- alert: (\w+)`).FindAllStringSubmatch(rulesText, -1) {
		if !strings.Contains(tests, "alertname: "+m[1]) {
			t.Errorf("alert %s is in no generated test", m[1])
		}
	}
	for _, long := range []string{"1h", "6h", "1d", "3d"} {
		for _, o := range spec.SLOs {
			if !strings.Contains(tests, "long_window: "+long) || !strings.Contains(tests, "slo: "+o.Name) {
				t.Errorf("no firing test for %s %s", o.Name, long)
			}
		}
	}
	urls := regexp.MustCompile(`runbook_url: (\S+)`).FindAllStringSubmatch(rulesText, -1)
	if len(urls) < 6 {
		t.Fatalf("found %d runbook_urls", len(urls))
	}
	for _, m := range urls {
		name, ok := strings.CutPrefix(m[1], spec.Links.Runbooks)
		if !ok {
			t.Errorf("runbook_url %s is not under links.runbooks", m[1])
		}
		if _, ok := files[kit.RunbooksDir+name]; !ok {
			t.Errorf("runbook_url %s: no rendered runbook %s", m[1], name)
		}
	}
}

// TestThresholdsFollowSpec: the load thresholds are the spec's objectives.
func TestThresholdsFollowSpec(t *testing.T) {
	files := render(t, load(t, ordersSpec), "orders")
	for _, want := range []string{`"http_req_failed": [`, `"rate<0.005"`, `"slo_latency_good": [`, `"rate>=0.95"`} {
		if !bytes.Contains(files[kit.ThresholdsFile], []byte(want)) {
			t.Errorf("%s lacks %s:\n%s", kit.ThresholdsFile, want, files[kit.ThresholdsFile])
		}
	}
}

// TestWriteRemovesStale: a file no longer rendered (a renamed SLO's
// runbook) is removed; everything else is written.
func TestWriteRemovesStale(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "runbooks", "slo-old.md")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	names, err := kit.Write(dir, map[string][]byte{"a.yaml": []byte("a"), "runbooks/new.md": []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale runbook still there: %v", err)
	}
	if len(names) != 2 {
		t.Errorf("wrote %v, want two files", names)
	}
}

// TestRenderErrors: a selector the generated tests cannot satisfy is an
// error naming the field, not a folder whose tests fail later.
func TestRenderErrors(t *testing.T) {
	spec, err := slo.Parse([]byte(strings.Replace(otherSpec, `job="payments", env="prod"`, `job=~"pay.*"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kit.Render(spec, kit.Options{}); err == nil || !strings.Contains(err.Error(), "selector: generated promtool tests need equality matchers") {
		t.Errorf("Render = %v, want a selector error", err)
	}
}
