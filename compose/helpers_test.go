package compose_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/glasshouse-dev/glasshouse/internal/integration"
	"github.com/glasshouse-dev/glasshouse/internal/syncbuf"
)

// testSecrets are placeholder values for the variables compose.yaml requires;
// the real ones live in compose/.env, which the tests never read.
var testSecrets = map[string]string{
	"POSTGRES_PASSWORD":      "test-only-postgres",
	"JWT_SECRET":             "test-only-jwt-secret-0123456789abcdef",
	"GRAFANA_ADMIN_PASSWORD": "test-only-grafana",
	"SLACK_WEBHOOK_URL":      "http://slacksink:9095/hooks/glasshouse",
}

// repo returns the absolute repository root (tests run in compose/).
func repo(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}

// loadCompose loads compose.yaml with the compose-spec loader (schema
// validation, interpolation, normalisation, path resolution) using env only,
// never compose/.env or the caller's environment.
func loadCompose(t testing.TB, env map[string]string, profiles ...string) (*types.Project, error) {
	t.Helper()
	file, err := filepath.Abs("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(file),
		ConfigFiles: []types.ConfigFile{{Filename: file}},
		Environment: env,
	}
	return loader.LoadWithContext(t.Context(), details, func(o *loader.Options) {
		o.ResolvePaths = true
		o.Profiles = profiles
	})
}

// mustLoadCompose loads compose.yaml with every profile enabled.
func mustLoadCompose(t testing.TB) *types.Project {
	t.Helper()
	p, err := loadCompose(t, testSecrets, "*")
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	return p
}

func service(t testing.TB, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("compose.yaml has no service %q", name)
	}
	return s
}

func envValue(s types.ServiceConfig, key string) string {
	if v, ok := s.Environment[key]; ok && v != nil {
		return *v
	}
	return ""
}

// portOf returns the port of a host:port string ("" when there is none).
func portOf(hostport string) string {
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return ""
	}
	return port
}

var addrFlag = regexp.MustCompile(`^--?[a-z.-]*(?:addr|address)[a-z.-]*=(.*)$`)

// listenPorts returns the container ports service s listens on, as far as
// its config says: published and exposed ports, *ADDR environment variables
// and listen-address flags in its command.
func listenPorts(s types.ServiceConfig) map[string]bool {
	ports := map[string]bool{}
	for _, p := range s.Ports {
		ports[strconv.Itoa(int(p.Target))] = true
	}
	for _, e := range s.Expose {
		ports[e] = true
	}
	for k, v := range s.Environment {
		if strings.HasSuffix(k, "ADDR") && v != nil {
			if p := portOf(*v); p != "" {
				ports[p] = true
			}
		}
	}
	args := append(append([]string{}, s.Entrypoint...), s.Command...)
	for i, a := range args {
		if m := addrFlag.FindStringSubmatch(a); m != nil {
			if p := portOf(m[1]); p != "" {
				ports[p] = true
			}
		} else if strings.HasSuffix(a, "addr") && i+1 < len(args) {
			if p := portOf(args[i+1]); p != "" {
				ports[p] = true
			}
		}
	}
	return ports
}

// hostPathOf maps a container path of service s to the host path of the
// bind mount that covers it ("" when none does).
func hostPathOf(s types.ServiceConfig, containerPath string) string {
	best, src := "", ""
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if (containerPath == v.Target || strings.HasPrefix(containerPath, v.Target+"/")) && len(v.Target) > len(best) {
			best, src = v.Target, v.Source
		}
	}
	if best == "" {
		return ""
	}
	return src + strings.TrimPrefix(containerPath, best)
}

// lookBin finds a binary on PATH or in /usr/sbin (Debian puts nginx there),
// skipping the test with a message naming the package when it is missing.
func lookBin(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	integration.Skip(t, "%s not found: install Debian's %s to run this test (CI does)", name, pkg)
	return ""
}

// runTool runs a command and fails the test with its output when it fails.
func runTool(t testing.TB, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// startNginx starts nginx with args, killed when ctx ends, and waits until
// something listens on port. It returns nginx's output and stop, which
// sends SIGINT (nginx's fast shutdown) and waits; the caller defers it.
func startNginx(ctx context.Context, t *testing.T, port int, nginx string, args ...string) (out *syncbuf.Buffer, stop func()) {
	t.Helper()
	cmd := exec.CommandContext(ctx, nginx, args...)
	out = &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
	ready := false
	defer func() {
		if !ready { // waitPort failed the test
			stop()
		}
	}()
	waitPort(t, port)
	ready = true
	return out, stop
}
