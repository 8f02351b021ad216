package compose_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/glasshouse-dev/glasshouse/internal/testenv"
)

// workflowStep is one step of a GitHub Actions job.
type workflowStep struct {
	ID   string         `yaml:"id"`
	Name string         `yaml:"name"`
	Uses string         `yaml:"uses"`
	Run  string         `yaml:"run"`
	With map[string]any `yaml:"with"`
	Env  map[string]any `yaml:"env"`
}

// workflowJob is the part of a job the tests read.
type workflowJob struct {
	If          string            `yaml:"if"`
	RunsOn      string            `yaml:"runs-on"`
	Needs       any               `yaml:"needs"`
	Container   any               `yaml:"container"`
	Permissions map[string]string `yaml:"permissions"`
	Services    map[string]any    `yaml:"services"`
	Env         map[string]string `yaml:"env"`
	Steps       []workflowStep    `yaml:"steps"`
}

// workflow is the part of a GitHub Actions workflow the tests read.
type workflow struct {
	On   map[string]any         `yaml:"on"`
	Jobs map[string]workflowJob `yaml:"jobs"`
}

func readWorkflow(t *testing.T) workflow {
	t.Helper()
	var wf workflow
	testenv.ReadYAML(t, filepath.Join(repo(t), ".github", "workflows", "ci.yml"), &wf)
	return wf
}

func (j workflowJob) needs() []string {
	switch v := j.Needs.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

func (s workflowStep) with(key string) string {
	if v, ok := s.With[key]; ok {
		return fmt.Sprint(v)
	}
	return ""
}

// TestWorkflowRunsCIScript: the hosted test job runs .ci/run, the script the
// project's own CI runs, instead of a copy of it that drifts (the copy ran
// PostgreSQL with max_connections=100 where .ci/run uses 200).
func TestWorkflowRunsCIScript(t *testing.T) {
	wf := readWorkflow(t)
	if _, ok := wf.On["pull_request"]; !ok {
		t.Error("the workflow does not run on pull requests")
	}
	test, ok := wf.Jobs["test"]
	if !ok {
		t.Fatal("no test job")
	}
	// .ci/run expects Debian 12 as root: a pinned Debian container.
	if img, _ := test.Container.(string); !regexp.MustCompile(`^debian:12\.[0-9]+$`).MatchString(img) {
		t.Errorf("test job container = %v, want a pinned debian:12.N (the release .ci/run is written for)", test.Container)
	}
	if len(test.Services) > 0 {
		t.Errorf("test job has service containers %v; .ci/run starts PostgreSQL and Redis itself", slices.Sorted(func(yield func(string) bool) {
			for k := range test.Services {
				if !yield(k) {
					return
				}
			}
		}))
	}
	ciRunStep := regexp.MustCompile(`(?m)^\s*bash \.ci/run\s*$`)
	reimplemented := regexp.MustCompile(`\b(make (test|lint)|go (test|vet)|pg_ctl|initdb|redis-server|prometheus-alertmanager)\b`)
	var runs int
	for _, s := range test.Steps {
		if ciRunStep.MatchString(s.Run) {
			runs++
		}
		if m := reimplemented.FindString(s.Run); m != "" {
			t.Errorf("test job step %q runs %q itself; .ci/run does that", s.Name, m)
		}
	}
	if runs != 1 {
		t.Errorf("%d test job steps run `bash .ci/run`, want 1", runs)
	}
	for _, v := range []string{"TEST_DATABASE_URL", "TEST_REDIS_URL", "GLASSHOUSE_REQUIRE_SERVICES"} {
		if _, ok := test.Env[v]; ok {
			t.Errorf("test job sets %s; .ci/run exports it", v)
		}
	}

	ciRun, err := os.ReadFile(filepath.Join(repo(t), ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"max_connections=200", "make test", "export GLASSHOUSE_REQUIRE_SERVICES=1"} {
		if !strings.Contains(string(ciRun), want) {
			t.Errorf(".ci/run lacks %q, which the hosted CI relies on", want)
		}
	}
}

// currentMajors are the action majors the workflow must use at least
// (their release notes: Node 24 runtimes and the build action's attestation
// inputs).
var currentMajors = map[string]int{
	"actions/checkout":           7,
	"actions/setup-go":           7,
	"actions/upload-artifact":    7,
	"docker/setup-buildx-action": 4,
	"docker/setup-qemu-action":   4,
	"docker/build-push-action":   7,
	"docker/login-action":        4,
	"docker/metadata-action":     6,
}

func TestWorkflowActionsCurrent(t *testing.T) {
	wf := readWorkflow(t)
	tag := regexp.MustCompile(`^([^@]+)@v([0-9]+)(?:\.[0-9]+){0,2}$`)
	sha := regexp.MustCompile(`^[^@]+@[0-9a-f]{40}$`)
	for name, job := range wf.Jobs {
		for _, s := range job.Steps {
			if s.Uses == "" {
				continue
			}
			m := tag.FindStringSubmatch(s.Uses)
			switch {
			case m == nil && !sha.MatchString(s.Uses):
				t.Errorf("job %s uses %q: pin the action to a version tag or commit", name, s.Uses)
			case m != nil:
				major, _ := strconv.Atoi(m[2])
				if want, ok := currentMajors[m[1]]; ok && major < want {
					t.Errorf("job %s uses %s@v%d; the current major is v%d", name, m[1], major, want)
				}
			}
		}
	}
}

// TestWorkflowImageBuild: every push builds the image from compose/Dockerfile
// after the tests pass, without pushing it.
func TestWorkflowImageBuild(t *testing.T) {
	wf := readWorkflow(t)
	job, ok := wf.Jobs["image"]
	if !ok {
		t.Fatal("no image job")
	}
	if !slices.Contains(job.needs(), "test") {
		t.Error("the image job does not wait for the tests (needs: test)")
	}
	var built bool
	for _, s := range job.Steps {
		if strings.HasPrefix(s.Uses, "docker/build-push-action@") {
			built = true
			if s.with("file") != "compose/Dockerfile" || s.with("context") != "." {
				t.Errorf("image job builds file %q with context %q, want compose/Dockerfile and .", s.with("file"), s.with("context"))
			}
			if s.with("push") != "false" {
				t.Error("the image job pushes; only the release job may")
			}
		}
	}
	if !built {
		t.Error("the image job does not build with docker/build-push-action")
	}
}

// TestWorkflowRelease: a v* tag publishes the image the Kubernetes manifests
// run: multi-arch, to GHCR under the version, with SBOM and provenance, and
// the digest printed.
func TestWorkflowRelease(t *testing.T) {
	wf := readWorkflow(t)
	push, _ := wf.On["push"].(map[string]any)
	tags, _ := push["tags"].([]any)
	if !slices.ContainsFunc(tags, func(v any) bool { return strings.HasPrefix(fmt.Sprint(v), "v") }) {
		t.Errorf("on.push.tags = %v, want a v* pattern", tags)
	}
	rel, ok := wf.Jobs["release"]
	if !ok {
		t.Fatal("no release job")
	}
	if !strings.Contains(rel.If, "startsWith(github.ref, 'refs/tags/v')") {
		t.Errorf("release job if = %q, want it to run on v* tags only", rel.If)
	}
	if needs := rel.needs(); !slices.Contains(needs, "test") || !slices.Contains(needs, "image") {
		t.Errorf("release job needs %v, want test and image", needs)
	}
	if rel.Permissions["packages"] != "write" {
		t.Errorf("release job permissions %v: pushing to GHCR needs packages: write", rel.Permissions)
	}

	steps := map[string]workflowStep{}
	for _, s := range rel.Steps {
		if action, _, ok := strings.Cut(s.Uses, "@"); ok {
			steps[action] = s
		}
	}
	if login := steps["docker/login-action"]; login.with("registry") != "ghcr.io" || !strings.Contains(login.with("password"), "secrets.GITHUB_TOKEN") {
		t.Errorf("release job logs in to %q (password %q), want ghcr.io with GITHUB_TOKEN", login.with("registry"), login.with("password"))
	}
	meta := steps["docker/metadata-action"]
	if meta.ID == "" || meta.with("images") != "ghcr.io/${{ github.repository }}" || !strings.Contains(meta.with("tags"), "type=semver,pattern={{version}}") {
		t.Errorf("metadata step id %q images %q tags %q: want ghcr.io/${{ github.repository }} tagged with the version", meta.ID, meta.with("images"), meta.with("tags"))
	}
	build := steps["docker/build-push-action"]
	checks := map[string]func(string) bool{
		"file":       func(v string) bool { return v == "compose/Dockerfile" },
		"context":    func(v string) bool { return v == "." },
		"push":       func(v string) bool { return v == "true" },
		"sbom":       func(v string) bool { return v == "true" },
		"provenance": func(v string) bool { return v == "true" || strings.HasPrefix(v, "mode=") },
		"platforms": func(v string) bool {
			p := strings.Split(strings.ReplaceAll(v, " ", ""), ",")
			return slices.Contains(p, "linux/amd64") && slices.Contains(p, "linux/arm64")
		},
		"tags": func(v string) bool { return v == "${{ steps."+meta.ID+".outputs.tags }}" },
	}
	for key, ok := range checks {
		if !ok(build.with(key)) {
			t.Errorf("release build %s = %q", key, build.with(key))
		}
	}
	var digest bool
	for _, s := range rel.Steps {
		for _, v := range s.Env {
			if build.ID != "" && fmt.Sprint(v) == "${{ steps."+build.ID+".outputs.digest }}" && strings.Contains(s.Run, "GITHUB_STEP_SUMMARY") {
				digest = true
			}
		}
	}
	if !digest {
		t.Error("no release step writes the pushed digest to the job summary")
	}

	// The manifests run what this job publishes for the upstream repository:
	// ghcr.io/<module path without github.com/>.
	gomod, err := os.ReadFile(filepath.Join(repo(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod := regexp.MustCompile(`(?m)^module github\.com/(\S+)$`).FindSubmatch(gomod)
	if mod == nil {
		t.Fatal("go.mod's module is not on github.com")
	}
	var k kustomization
	b, err := os.ReadFile(filepath.Join("k8s", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeStrict(b, &k); err != nil {
		t.Fatalf("k8s/kustomization.yaml: %v", err)
	}
	want := "ghcr.io/" + strings.ToLower(string(mod[1]))
	if len(k.Images) != 1 || k.Images[0].Name != want {
		t.Errorf("k8s/kustomization.yaml images = %+v, want one entry for %s (what the release job pushes)", k.Images, want)
	}
}

// TestWorkflowUploadsCoverage: a job runs make cover and uploads its
// profile and summary, so coverage is a CI artifact.
func TestWorkflowUploadsCoverage(t *testing.T) {
	j, ok := readWorkflow(t).Jobs["cover"]
	if !ok {
		t.Fatal("no cover job")
	}
	var runs, uploads bool
	for _, s := range j.Steps {
		runs = runs || strings.Contains(s.Run, "make cover")
		uploads = uploads || (strings.HasPrefix(s.Uses, "actions/upload-artifact@") && strings.Contains(s.with("path"), "cover.out"))
	}
	if !runs || !uploads {
		t.Errorf("cover job: runs make cover %v, uploads cover.out %v", runs, uploads)
	}
}
