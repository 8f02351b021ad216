package compose_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeDocker puts a `docker` on PATH that answers `docker info` and
// `docker compose version` as told and records every other call, so the
// Docker branch of stack.sh runs without an engine. It proves what stack.sh
// asks compose to do, not what compose then does.
func fakeDocker(t *testing.T, engineUp bool) (pathDir, callLog string) {
	t.Helper()
	dir := t.TempDir()
	callLog = filepath.Join(dir, "calls")
	info := "exit 1"
	if engineUp {
		info = "exit 0"
	}
	script := `#!/bin/sh
case "$1 $2" in
  "info "*) ` + info + ` ;;
  "compose version") echo "Docker Compose version v2.99.0"; exit 0 ;;
esac
echo "$*" >> "` + callLog + `"
`
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, callLog
}

func runStackSh(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(repo(t), "compose", "stack.sh"), args...)
	cmd.Dir = t.TempDir() // stack.sh must find the repository by itself
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestStackShDockerMode(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	bin, calls := fakeDocker(t, true)
	envFile := filepath.Join(t.TempDir(), "stack.env")
	env := append(os.Environ(),
		"PATH="+bin+":"+os.Getenv("PATH"),
		"STACK_ENV_FILE="+envFile,
		"STACK_MODE=auto",
		"STACK_GRAFANA_PORT=13000",
		"GRAFANA_ADMIN_PASSWORD=", "POSTGRES_PASSWORD=", "JWT_SECRET=",
	)

	out, err := runStackSh(t, env, "up")
	if err != nil {
		t.Fatalf("stack.sh up: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(calls)
	if !regexp.MustCompile(`(?m)^compose -f compose/compose.yaml --env-file \S+ up --build --wait --wait-timeout [0-9]+$`).Match(b) {
		t.Errorf("stack.sh up ran %q, want docker compose ... up --build --wait", b)
	}
	// The secrets file was created from the example with random values,
	// readable by the owner only.
	fi, err := os.Stat(envFile)
	if err != nil {
		t.Fatalf("no env file created: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("env file mode %v, want 0600", fi.Mode().Perm())
	}
	vals := readEnvFile(t, envFile)
	for _, k := range []string{"POSTGRES_PASSWORD", "JWT_SECRET", "GRAFANA_ADMIN_PASSWORD"} {
		if !regexp.MustCompile(`^[0-9a-f]{48}$`).MatchString(vals[k]) {
			t.Errorf("%s = %q, want 48 random hex digits", k, vals[k])
		}
	}
	if vals["POSTGRES_PASSWORD"] == vals["JWT_SECRET"] {
		t.Error("secrets are not independent")
	}
	if vals["SLACK_WEBHOOK_URL"] != "http://slacksink:9095/hooks/glasshouse" {
		t.Errorf("SLACK_WEBHOOK_URL = %q, want the Slack sink by default", vals["SLACK_WEBHOOK_URL"])
	}
	// URLs printed with the configured ports.
	for _, want := range []string{"http://127.0.0.1:13000", "http://127.0.0.1:9090", "http://127.0.0.1:9093", "http://127.0.0.1:9095/messages", "http://127.0.0.1:8080/docs"} {
		if !strings.Contains(out, want) {
			t.Errorf("stack.sh up did not print %s:\n%s", want, out)
		}
	}

	// A second run keeps the secrets (a new password would lock PostgreSQL's
	// existing volume out).
	if out, err := runStackSh(t, env, "up"); err != nil {
		t.Fatalf("second up: %v\n%s", err, out)
	}
	if again := readEnvFile(t, envFile); again["POSTGRES_PASSWORD"] != vals["POSTGRES_PASSWORD"] {
		t.Error("a second stack-up changed POSTGRES_PASSWORD")
	}

	// down keeps volumes unless VOLUMES=1.
	os.Remove(calls)
	if out, err := runStackSh(t, append(env, "STACK_MODE=docker"), "down"); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if out, err := runStackSh(t, append(env, "STACK_MODE=docker", "VOLUMES=1"), "down"); err != nil {
		t.Fatalf("down VOLUMES=1: %v\n%s", err, out)
	}
	b, _ = os.ReadFile(calls)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || strings.Contains(lines[0], "--volumes") || !strings.HasSuffix(lines[1], "down --remove-orphans --volumes") {
		t.Errorf("down calls = %q, want one without and one with --volumes", lines)
	}
}

func TestStackShWithoutDocker(t *testing.T) {
	bin, calls := fakeDocker(t, false)
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "STACK_RUN_DIR="+t.TempDir())

	// STACK_MODE=docker refuses clearly when no engine answers.
	out, err := runStackSh(t, append(env, "STACK_MODE=docker"), "up")
	if err == nil || !strings.Contains(out, "no Docker engine answered") {
		t.Errorf("STACK_MODE=docker without an engine: err %v, output %q", err, out)
	}
	// auto falls back to the native stack (down: nothing recorded).
	out, err = runStackSh(t, append(env, "STACK_MODE=auto"), "down")
	if err != nil || !strings.Contains(out, "nothing to stop") {
		t.Errorf("auto down without an engine: err %v, output %q", err, out)
	}
	if b, _ := os.ReadFile(calls); len(b) > 0 {
		t.Errorf("stack.sh called compose without an engine: %q", b)
	}
	if out, err := runStackSh(t, env, "restart"); err == nil || !strings.Contains(out, "usage") {
		t.Errorf("unknown command: err %v, output %q", err, out)
	}
	if out, err := runStackSh(t, append(env, "STACK_MODE=kubernetes"), "up"); err == nil || !strings.Contains(out, "want auto, docker or native") {
		t.Errorf("bad STACK_MODE: err %v, output %q", err, out)
	}
}
