package compose_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// workflow is the part of a GitHub Actions workflow the test reads.
type workflow struct {
	On   map[string]any `yaml:"on"`
	Jobs map[string]struct {
		RunsOn   string `yaml:"runs-on"`
		Needs    any    `yaml:"needs"`
		Services map[string]struct {
			Image string            `yaml:"image"`
			Env   map[string]string `yaml:"env"`
			Ports []string          `yaml:"ports"`
		} `yaml:"services"`
		Env   map[string]string `yaml:"env"`
		Steps []struct {
			Name string            `yaml:"name"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// TestHostedCIWorkflowMirrorsCIRun checks .github/workflows/ci.yml does what
// .ci/run does (same packages, same test environment, `make test`) and then
// builds the image from compose/Dockerfile. The workflow itself only runs on
// a hosted runner.
func TestHostedCIWorkflowMirrorsCIRun(t *testing.T) {
	root := repo(t)
	var wf workflow
	readYAML(t, filepath.Join(root, ".github", "workflows", "ci.yml"), &wf)
	ciRun, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := wf.On["pull_request"]; !ok {
		t.Error("the workflow does not run on pull requests")
	}

	test, ok := wf.Jobs["test"]
	if !ok {
		t.Fatal("no test job")
	}
	var run strings.Builder
	for _, s := range test.Steps {
		run.WriteString(s.Run + "\n")
		if s.Uses != "" && !regexp.MustCompile(`@v[0-9]+(\.[0-9]+){0,2}$|@[0-9a-f]{40}$`).MatchString(s.Uses) {
			t.Errorf("step uses %q: pin the action to a version tag or commit", s.Uses)
		}
	}
	if !regexp.MustCompile(`(?m)^\s*make test\s*$`).MatchString(run.String()) {
		t.Error("the test job does not run `make test` (the README's test command)")
	}

	// Every Debian package .ci/run installs is either installed by the
	// workflow or provided as a service container.
	services := map[string]string{"postgresql": "postgres", "redis-server": "redis"}
	for _, m := range regexp.MustCompile(`pkgs\+=\(([a-z0-9.+-]+)\)`).FindAllStringSubmatch(string(ciRun), -1) {
		pkg := m[1]
		if svc, ok := services[pkg]; ok {
			if _, ok := test.Services[svc]; !ok {
				t.Errorf(".ci/run installs %s; the workflow has no %s service", pkg, svc)
			}
			continue
		}
		if !regexp.MustCompile(`apt-get install[^\n]*(\\\n[^\n]*)*\b` + regexp.QuoteMeta(pkg) + `\b`).MatchString(run.String()) {
			t.Errorf(".ci/run installs %s; the workflow does not", pkg)
		}
	}

	// The same test environment, pointing at the service containers.
	for _, v := range []string{"TEST_DATABASE_URL", "TEST_REDIS_URL"} {
		if !strings.Contains(string(ciRun), "export "+v) {
			t.Errorf(".ci/run no longer exports %s; update the workflow and this test", v)
		}
	}
	// Every variable .ci/run exports for the tests is set in the test job
	// too (a literal value must match), so a switch such as
	// GLASSHOUSE_REQUIRE_SERVICES=1 (skips become failures) cannot be
	// forgotten in one of the two.
	for _, m := range regexp.MustCompile(`(?m)^export ([A-Z_][A-Z0-9_]*)="?([^"\n]*)"?$`).FindAllStringSubmatch(string(ciRun), -1) {
		name, value := m[1], m[2]
		if name == "PATH" || name == "GOFLAGS" {
			continue // the runner's own toolchain setup
		}
		got, ok := test.Env[name]
		switch {
		case !ok || got == "":
			t.Errorf(".ci/run exports %s; the test job does not set it", name)
		case !strings.Contains(value, "$") && got != value:
			t.Errorf("the test job sets %s=%q; .ci/run exports %q", name, got, value)
		}
	}
	for name, want := range map[string]string{"postgres": test.Env["TEST_DATABASE_URL"], "redis": test.Env["TEST_REDIS_URL"]} {
		svc := test.Services[name]
		if !pinnedImage.MatchString(svc.Image) && !pinnedTwoPart.MatchString(svc.Image) {
			t.Errorf("service %s image %q is not pinned", name, svc.Image)
		}
		if len(svc.Ports) != 1 {
			t.Errorf("service %s ports = %v, want one mapping", name, svc.Ports)
			continue
		}
		host, _, _ := strings.Cut(svc.Ports[0], ":")
		if !strings.Contains(want, "127.0.0.1:"+host+"/") {
			t.Errorf("service %s is published on %s, but the test URL is %s", name, host, want)
		}
	}
	if !strings.Contains(test.Env["TEST_DATABASE_URL"], "/"+test.Services["postgres"].Env["POSTGRES_DB"]+"?") {
		t.Errorf("TEST_DATABASE_URL %s names a database the service does not create (%s)", test.Env["TEST_DATABASE_URL"], test.Services["postgres"].Env["POSTGRES_DB"])
	}

	// Then the image, built from compose/Dockerfile with the repository as
	// context, after the tests pass.
	var built bool
	for name, job := range wf.Jobs {
		for _, s := range job.Steps {
			if strings.HasPrefix(s.Uses, "docker/build-push-action@") {
				built = true
				if s.With["file"] != "compose/Dockerfile" || s.With["context"] != "." {
					t.Errorf("job %s builds file %q with context %q, want compose/Dockerfile and .", name, s.With["file"], s.With["context"])
				}
				if s.With["push"] != "false" {
					t.Errorf("job %s pushes the image; CI only builds it", name)
				}
				needs, _ := job.Needs.(string)
				if needs != "test" && !slices.Contains(toStrings(job.Needs), "test") {
					t.Errorf("job %s builds the image without waiting for the tests (needs: test)", name)
				}
			}
		}
	}
	if !built {
		t.Error("no job builds the image with docker/build-push-action")
	}
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
