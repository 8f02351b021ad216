package compose_test

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// engine describes what the stand-in docker answers.
type engine struct {
	up         bool   // `docker info` succeeds
	api        string // `docker version --format {{.Server.APIVersion}}`; "" fails
	contextURL string // `docker context inspect` endpoint host
}

// fakeDocker puts a `docker` on PATH that answers `docker info`, `docker
// compose version`, `docker version` and `docker context inspect` as e says
// and records every other call with the DOCKER_SOCK and SELINUX_RELABEL it
// saw, so the Docker branch of stack.sh runs without an engine. It proves
// what stack.sh asks compose to do, not what compose then does.
func fakeDocker(t *testing.T, e engine) (pathDir, callLog string) {
	t.Helper()
	dir := t.TempDir()
	callLog = filepath.Join(dir, "calls")
	info := "exit 1"
	if e.up {
		info = "exit 0"
	}
	version := "exit 1"
	if e.api != "" {
		version = "echo " + e.api + "; exit 0"
	}
	script := `#!/bin/sh
case "$1 $2" in
  "info "*) ` + info + ` ;;
  "compose version") echo "Docker Compose version v2.99.0"; exit 0 ;;
  "version --format") ` + version + ` ;;
  "context inspect") echo "` + e.contextURL + `"; exit 0 ;;
esac
echo "$* | DOCKER_SOCK=${DOCKER_SOCK-} SELINUX_RELABEL=${SELINUX_RELABEL-}" >> "` + callLog + `"
`
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, callLog
}

// fakeSocket listens on a unix socket in a temporary directory, standing in
// for the engine's socket that Alloy mounts.
func fakeSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "engine.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return path
}

// composeCalls returns the recorded calls, one per line.
func composeCalls(t *testing.T, callLog string) []string {
	t.Helper()
	b, err := os.ReadFile(callLog)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// stackEnv is the environment of one stack.sh run: PATH starts at bin, the
// secrets file is envFile, and no variable of the caller leaks in.
func stackEnv(bin, envFile string, extra ...string) []string {
	env := []string{
		"PATH=" + bin + ":" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"STACK_ENV_FILE=" + envFile,
		// The nginx edge's certificate goes next to the env file, not into
		// the checkout.
		"STACK_CERT_DIR=" + filepath.Dir(envFile),
		"STACK_MODE=docker",
	}
	return append(env, extra...)
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
	bin, calls := fakeDocker(t, engine{up: true, api: "1.47"})
	envFile := filepath.Join(t.TempDir(), "stack.env")
	env := append(os.Environ(),
		"PATH="+bin+":"+os.Getenv("PATH"),
		"STACK_ENV_FILE="+envFile,
		"STACK_CERT_DIR="+filepath.Dir(envFile),
		"STACK_MODE=auto",
		"STACK_GRAFANA_PORT=13000",
		"DOCKER_SOCK="+fakeSocket(t),
		"GRAFANA_ADMIN_PASSWORD=", "POSTGRES_PASSWORD=", "JWT_SECRET=",
	)

	out, err := runStackSh(t, env, "up")
	if err != nil {
		t.Fatalf("stack.sh up: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(calls)
	if !regexp.MustCompile(`(?m)^compose -f compose/compose.yaml --env-file \S+ -f compose/compose.start-interval.yaml --profile logs up --build --wait --wait-timeout [0-9]+ \|`).Match(b) {
		t.Errorf("stack.sh up ran %q, want docker compose ... up --build --wait", b)
	}
	// The nginx edge's self-signed certificate was generated, once.
	if c, err := os.ReadFile(filepath.Join(filepath.Dir(envFile), "tls.pem")); err != nil || !strings.Contains(string(c), "BEGIN CERTIFICATE") {
		t.Errorf("stack.sh up made no certificate for the nginx edge: %v", err)
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
	if len(lines) != 2 || strings.Contains(lines[0], "--volumes") || !strings.Contains(lines[1], "--profile load --profile logs down --remove-orphans --volumes |") {
		t.Errorf("down calls = %q, want one without and one with --volumes", lines)
	}
}

func TestStackShWithoutDocker(t *testing.T) {
	bin, calls := fakeDocker(t, engine{})
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

// TestStackShEngineAPIGate: healthcheck start_interval makes Docker Engine
// older than 25.0 (API 1.44) refuse every container, so stack.sh merges
// compose.start-interval.yaml only when the engine's API is new enough and
// says what is needed otherwise.
func TestStackShEngineAPIGate(t *testing.T) {
	for _, tc := range []struct {
		api     string
		overlay bool
	}{
		{"1.43", false}, // Docker Engine 24
		{"1.41", false}, // Podman's Docker-compatible API
		{"1.9", false},  // minor versions compare as numbers, not strings
		{"", false},     // `docker version` failed: unknown, so not assumed
		{"1.44", true},  // Docker Engine 25.0
		{"1.51", true},
		{"2.0", true},
	} {
		t.Run("api="+tc.api, func(t *testing.T) {
			bin, calls := fakeDocker(t, engine{up: true, api: tc.api})
			env := stackEnv(bin, filepath.Join(t.TempDir(), "stack.env"), "DOCKER_SOCK="+fakeSocket(t))
			out, err := runStackSh(t, env, "up")
			if err != nil {
				t.Fatalf("stack.sh up: %v\n%s", err, out)
			}
			got := composeCalls(t, calls)
			if len(got) != 1 || !strings.Contains(got[0], " up --build --wait ") {
				t.Fatalf("compose calls = %q, want one up", got)
			}
			if merged := strings.Contains(got[0], "-f compose/compose.start-interval.yaml"); merged != tc.overlay {
				t.Errorf("API %q: start_interval file merged = %v, want %v (call %q)", tc.api, merged, tc.overlay, got[0])
			}
			needs := "healthcheck start_interval needs API 1.44 (Docker Engine 25.0 or later)"
			if said := strings.Contains(out, needs); said == tc.overlay {
				t.Errorf("API %q: output mentions the requirement = %v, want %v:\n%s", tc.api, said, !tc.overlay, out)
			}
		})
	}
}

// TestStackShDockerSocket: rootless Docker and Podman keep the engine's
// socket away from /var/run/docker.sock. stack.sh finds it (DOCKER_SOCK,
// DOCKER_HOST, the docker context), hands it to compose, and starts the
// stack without Alloy (profile "logs") when there is no socket to mount.
func TestStackShDockerSocket(t *testing.T) {
	sock := fakeSocket(t)
	missing := filepath.Join(t.TempDir(), "no.sock")
	for _, tc := range []struct {
		name       string
		env        []string
		contextURL string
		wantSock   string
		wantLogs   bool
	}{
		{"DOCKER_SOCK", []string{"DOCKER_SOCK=" + sock}, "unix:///elsewhere.sock", sock, true},
		{"DOCKER_HOST", []string{"DOCKER_HOST=unix://" + sock}, "unix:///elsewhere.sock", sock, true},
		{"docker context", nil, "unix://" + sock, sock, true},
		{"no socket there", []string{"DOCKER_SOCK=" + missing}, "", missing, false},
		{"remote engine", []string{"DOCKER_HOST=ssh://build@example.com"}, "", "/var/run/docker.sock", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "remote engine" {
				if fi, err := os.Stat("/var/run/docker.sock"); err == nil && fi.Mode()&os.ModeSocket != 0 {
					t.Skip("this host has /var/run/docker.sock, so the fallback finds a socket")
				}
			}
			bin, calls := fakeDocker(t, engine{up: true, api: "1.47", contextURL: tc.contextURL})
			out, err := runStackSh(t, stackEnv(bin, filepath.Join(t.TempDir(), "stack.env"), tc.env...), "up")
			if err != nil {
				t.Fatalf("stack.sh up: %v\n%s", err, out)
			}
			got := composeCalls(t, calls)
			if len(got) != 1 {
				t.Fatalf("compose calls = %q, want one", got)
			}
			if !strings.Contains(got[0], "| DOCKER_SOCK="+tc.wantSock+" ") {
				t.Errorf("compose saw %q, want DOCKER_SOCK=%s", got[0], tc.wantSock)
			}
			if logs := strings.Contains(got[0], "--profile logs"); logs != tc.wantLogs {
				t.Errorf("profile logs = %v, want %v (call %q)", logs, tc.wantLogs, got[0])
			}
			if !tc.wantLogs && !strings.Contains(out, "starting without Alloy") {
				t.Errorf("no socket, but stack.sh did not say Alloy stays off:\n%s", out)
			}
		})
	}
}

// TestStackShSELinux: on an SELinux host the containers may read the
// bind-mounted configs only when they are relabelled (:z).
func TestStackShSELinux(t *testing.T) {
	for _, tc := range []struct {
		name, getenforce string
		env              []string
		want             string // SELINUX_RELABEL compose sees; "fail" = refused
	}{
		{"enforcing", "Enforcing", nil, "z"},
		{"permissive", "Permissive", nil, "z"},
		{"disabled", "Disabled", nil, ""},
		{"set by hand", "Disabled", []string{"SELINUX_RELABEL=z"}, "z"},
		{"private label refused", "Enforcing", []string{"SELINUX_RELABEL=Z"}, "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, calls := fakeDocker(t, engine{up: true, api: "1.47"})
			script := "#!/bin/sh\necho " + tc.getenforce + "\n"
			if err := os.WriteFile(filepath.Join(bin, "getenforce"), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			env := stackEnv(bin, filepath.Join(t.TempDir(), "stack.env"), append([]string{"DOCKER_SOCK=" + fakeSocket(t)}, tc.env...)...)
			out, err := runStackSh(t, env, "up")
			if tc.want == "fail" {
				if err == nil || !strings.Contains(out, "SELINUX_RELABEL=Z: want z") {
					t.Errorf("SELINUX_RELABEL=Z: err %v, output %q; want a refusal", err, out)
				}
				if got := composeCalls(t, calls); len(got) > 0 {
					t.Errorf("compose ran after a refusal: %q", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("stack.sh up: %v\n%s", err, out)
			}
			got := composeCalls(t, calls)
			if len(got) != 1 || !strings.HasSuffix(got[0], " SELINUX_RELABEL="+tc.want) {
				t.Errorf("compose calls = %q, want SELINUX_RELABEL=%s", got, tc.want)
			}
		})
	}
}

// TestStackShUnreadableConfig: Prometheus, Tempo, Loki and Grafana read their
// bind-mounted configs as non-root users, so a checkout made with umask 077
// crash-loops them. stack.sh refuses before compose runs and names the fix.
func TestStackShUnreadableConfig(t *testing.T) {
	probe := filepath.Join(repo(t), "compose", "tempo", ".unreadable-probe")
	if err := os.WriteFile(probe, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(probe) })
	bin, calls := fakeDocker(t, engine{up: true, api: "1.47"})
	out, err := runStackSh(t, stackEnv(bin, filepath.Join(t.TempDir(), "stack.env"), "DOCKER_SOCK="+fakeSocket(t)), "up")
	if err == nil || !strings.Contains(out, "compose/tempo/.unreadable-probe") || !strings.Contains(out, "chmod -R o+rX") {
		t.Errorf("unreadable config: err %v, output %q; want a refusal naming the file and the chmod", err, out)
	}
	if got := composeCalls(t, calls); len(got) > 0 {
		t.Errorf("compose ran with an unreadable config: %q", got)
	}
}
