package scaleout

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/glasshouse-dev/glasshouse/compose/internal/nginxtest"
	"github.com/glasshouse-dev/glasshouse/internal/integration"
	"github.com/glasshouse-dev/glasshouse/internal/testcert"
	"github.com/glasshouse-dev/glasshouse/internal/testenv"
)

// repoRoot is the module root, seen from this package's directory.
const repoRoot = "../.."

// binary returns the path of name in PATH or /usr/sbin, or skips the test
// (a failure under GLASSHOUSE_REQUIRE_SERVICES=1).
func binary(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", name); isExec(p) {
		return p
	}
	integration.Skip(t, "%s not found in PATH (Debian: apt-get install %s)", name, pkg)
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// waitOK waits until u answers 200 through c; it fails the test when p
// exits first or after guard (a hang guard, not a timing assertion).
func waitOK(t *testing.T, c *http.Client, u string, p *testenv.Process, guard time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	if err := testenv.WaitReadyClient(ctx, c, p, u); err != nil {
		t.Fatal(err)
	}
}

// redisPrefix returns a key prefix of the run's own on the shared Redis and
// deletes its keys when the test ends.
func redisPrefix(t *testing.T, redisURL string) string {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		rdb.Close()
		integration.Skip(t, "Redis at TEST_REDIS_URL unreachable: %v", err)
	}
	prefix := "scaleout-" + randomHex(t, 6) + ":"
	t.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return prefix
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// replica is one API process; restarts reuse its ports and its log,
// dir/api-i.log.
type replica struct {
	i           int
	addr, admin string
	bin, dir    string
	env         []string
	p           *testenv.Process
	starts      int
}

func (r *replica) start(t *testing.T, c *http.Client) {
	t.Helper()
	r.starts++
	r.p = testenv.Start(t, r.dir, fmt.Sprintf("api-%d", r.i), r.bin, nil, r.env)
	waitOK(t, c, "http://"+r.addr+"/health/ready", r.p, 60*time.Second)
}

// deployment reads what the Kubernetes manifests promise about shutdown:
// the preStop sleep (the drain before SIGTERM, which natively is
// SHUTDOWN_DRAIN_DELAY) and SHUTDOWN_TIMEOUT.
func deployment(t *testing.T) (drain time.Duration, shutdownTimeout string) {
	t.Helper()
	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Lifecycle struct {
							PreStop struct {
								Sleep struct {
									Seconds int `yaml:"seconds"`
								} `yaml:"sleep"`
							} `yaml:"preStop"`
						} `yaml:"lifecycle"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	testenv.ReadYAML(t, filepath.Join(repoRoot, "compose/k8s/deployment.yaml"), &dep)
	cs := dep.Spec.Template.Spec.Containers
	if len(cs) == 0 || cs[0].Lifecycle.PreStop.Sleep.Seconds <= 0 {
		t.Fatal("compose/k8s/deployment.yaml: no preStop sleep on the first container")
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	testenv.ReadYAML(t, filepath.Join(repoRoot, "compose/k8s/configmap.yaml"), &cm)
	if cm.Data["SHUTDOWN_TIMEOUT"] == "" {
		t.Fatal("compose/k8s/configmap.yaml: no SHUTDOWN_TIMEOUT")
	}
	return time.Duration(cs[0].Lifecycle.PreStop.Sleep.Seconds) * time.Second, cm.Data["SHUTDOWN_TIMEOUT"]
}

// upstreamPolicy is the passive health check of the nginx upstream.
type upstreamPolicy struct {
	maxFails    int
	failTimeout time.Duration
}

var serverLine = regexp.MustCompile(`(?m)^\s*server 127\.0\.0\.1:\d+ max_fails=(\d+) fail_timeout=(\d+)s;\n`)

// nginxConfig renders the repository's nginx config for this run: its
// upstream lists the replicas with the committed max_fails/fail_timeout,
// TLS uses a self-signed certificate, listeners and logs move to loopback
// ports and prefix. Every replacement must apply, so a change to the config
// that this check no longer understands fails loudly. breakRetry turns
// proxy_next_upstream off (the deliberately broken variant).
func nginxConfig(t *testing.T, prefix, cert, key string, replicas []*replica, httpPort, httpsPort int, breakRetry bool) (string, upstreamPolicy) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "compose/deploy/nginx/glasshouse.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(raw)
	lines := serverLine.FindAllStringSubmatchIndex(conf, -1)
	if len(lines) != len(replicas) {
		t.Fatalf("glasshouse.conf upstream has %d server lines matching %s, want %d (one per replica)", len(lines), serverLine, len(replicas))
	}
	m := serverLine.FindStringSubmatch(conf)
	var pol upstreamPolicy
	pol.maxFails, _ = strconv.Atoi(m[1])
	secs, _ := strconv.Atoi(m[2])
	pol.failTimeout = time.Duration(secs) * time.Second
	var servers strings.Builder
	for _, r := range replicas {
		fmt.Fprintf(&servers, "    server %s max_fails=%s fail_timeout=%ss;\n", r.addr, m[1], m[2])
	}
	conf = conf[:lines[0][0]] + servers.String() + conf[lines[len(lines)-1][1]:]
	// Two workers, so the upstream's shared zone is what makes them agree.
	run := nginxtest.Run{Prefix: prefix, Cert: cert, Key: key, HTTPPort: httpPort, HTTPSPort: httpsPort,
		Workers: 2, WorkerConnections: 512}
	repl := append(run.Loopback(),
		// Every request of this check comes from 127.0.0.1: the edge's
		// per-address limit would measure itself, not the replicas.
		nginxtest.Replacement{Old: "limit_req zone=glasshouse_per_ip burst=200 nodelay;"})
	if breakRetry {
		repl = append(repl, nginxtest.Replacement{Old: "proxy_next_upstream error timeout;", New: "proxy_next_upstream off;"})
	}
	conf, err = nginxtest.Replace("compose/deploy/nginx/glasshouse.conf", conf, repl)
	if err != nil {
		t.Fatalf("%v; update the check's mapping", err)
	}
	mainPath, err := run.Write(conf)
	if err != nil {
		t.Fatal(err)
	}
	return mainPath, pol
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key, and
// returns their paths and a pool that trusts it.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return testcert.Write(t, dir)
}

func tlsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16},
	}
}

// prometheusConfig writes a Prometheus config scraping every replica's
// admin port each second as job glasshouse-api, with the project's rule
// files (alerts/generated/*.yaml, alerts/symptoms*.yaml) evaluated each
// second; alert `for` durations are left as committed.
func prometheusConfig(t *testing.T, dir string, replicas []*replica) string {
	t.Helper()
	gen, _ := filepath.Glob(filepath.Join(repoRoot, "alerts/generated/*.yaml"))
	sym, _ := filepath.Glob(filepath.Join(repoRoot, "alerts/symptoms*.yaml"))
	if len(gen) == 0 || len(sym) == 0 {
		t.Fatalf("rule files missing: generated %v, symptoms %v", gen, sym)
	}
	rulesDir := testenv.RulesEverySecond(t, filepath.Join(dir, "rules"), append(gen, sym...))
	var targets []string
	for _, r := range replicas {
		targets = append(targets, strconv.Quote(r.admin))
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s/*.yaml
scrape_configs:
  - job_name: glasshouse-api
    static_configs:
      - targets: [%s]
`, rulesDir, strings.Join(targets, ", "))
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var errNoData = errors.New("no data")
