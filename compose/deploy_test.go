package compose_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/compose/internal/nginxtest"
	"github.com/glasshouse-dev/glasshouse/internal/freeport"
	"github.com/glasshouse-dev/glasshouse/internal/testcert"
)

// unitFile is a parsed systemd unit: section -> key -> values in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: malformed line %q", path, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	return env
}

func TestSystemdUnit(t *testing.T) {
	const unitPath = "deploy/systemd/glasshouse-api.service"
	u := parseUnit(t, unitPath)
	env := readEnvFile(t, "deploy/systemd/glasshouse.env.example")

	svc := u["Service"]
	if svc == nil || u["Unit"] == nil || u["Install"] == nil {
		t.Fatalf("want [Unit], [Service] and [Install] sections, have %v", keys(u))
	}
	if got := u.last("Service", "ExecStart"); !strings.HasSuffix(strings.Fields(got)[0], "/glasshouse-api") {
		t.Errorf("ExecStart = %q, want the glasshouse-api binary", got)
	}
	if u.last("Service", "EnvironmentFile") == "" {
		t.Error("no EnvironmentFile: secrets belong in a root-owned file, not the unit")
	}
	if r := u.last("Service", "Restart"); r != "on-failure" && r != "always" {
		t.Errorf("Restart = %q, want on-failure or always", r)
	}
	if u.last("Service", "KillSignal") != "SIGTERM" {
		t.Error("KillSignal is not SIGTERM (the API drains on SIGTERM)")
	}

	shutdown, err := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("glasshouse.env.example SHUTDOWN_TIMEOUT: %v", err)
	}
	stop, err := time.ParseDuration(u.last("Service", "TimeoutStopSec") + "s")
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if stop <= shutdown {
		t.Errorf("TimeoutStopSec %v <= SHUTDOWN_TIMEOUT %v: systemd would SIGKILL in-flight requests", stop, shutdown)
	}

	// Hardening that must be present with exactly these values.
	for k, want := range map[string]string{
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectControlGroups":    "yes",
		"RestrictNamespaces":      "yes",
		"RestrictSUIDSGID":        "yes",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"CapabilityBoundingSet":   "",
		"SystemCallArchitectures": "native",
		"DynamicUser":             "yes",
	} {
		if v, ok := svc[k]; !ok || v[len(v)-1] != want {
			t.Errorf("%s = %v, want %q", k, v, want)
		}
	}
	if !strings.Contains(u.last("Service", "RestrictAddressFamilies"), "AF_INET") {
		t.Error("RestrictAddressFamilies must allow AF_INET (and nothing exotic)")
	}
	// DATA_DIR is the directory systemd creates and lets the service write.
	var dataDir string
	for _, e := range svc["Environment"] {
		if v, ok := strings.CutPrefix(e, "DATA_DIR="); ok {
			dataDir = v
		}
	}
	if want := "/var/lib/" + u.last("Service", "StateDirectory"); dataDir != want {
		t.Errorf("DATA_DIR = %q, want %q (StateDirectory), the only writable place under ProtectSystem=strict", dataDir, want)
	}
	if a := env["ADMIN_ADDR"]; !strings.HasPrefix(a, "127.0.0.1:") {
		t.Errorf("glasshouse.env.example ADMIN_ADDR = %q: keep /metrics and /debug on loopback", a)
	}
	for _, k := range []string{"DATABASE_URL", "REDIS_URL", "JWT_SECRET"} {
		if v, ok := env[k]; !ok || v != "" {
			t.Errorf("glasshouse.env.example %s = %q: list it, leave it empty", k, v)
		}
	}

	// systemd's own checker, with ExecStart pointed at a binary that exists
	// here (verify refuses a missing one).
	analyze := lookBin(t, "systemd-analyze", "systemd")
	raw, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, "glasshouse-api.service")
	patched := strings.Replace(string(raw), "ExecStart=/usr/local/bin/glasshouse-api", "ExecStart="+self, 1)
	if err := os.WriteFile(unit, []byte(patched), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: err %v, output (must be empty):\n%s", err, out)
	}
	out, err = exec.CommandContext(t.Context(), analyze, "security", "--offline=true", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Logf("systemd-analyze security --offline unavailable (%v): %s", err, lastLine(string(out)))
		return
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze security output:\n%s", out)
	}
	t.Logf("systemd-analyze security: exposure %s (0 = fully sandboxed, 10 = none)", m[1])
	var level float64
	fmt.Sscan(string(m[1]), &level)
	if level >= 2.0 {
		t.Errorf("exposure level %.1f, want below 2.0 (\"OK\")", level)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// selfSignedCert writes a certificate and key for glasshouse.example.com and
// 127.0.0.1 and returns their paths and a pool that trusts the certificate.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return testcert.Write(t, dir)
}

func freePort(t *testing.T) int {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n distinct free loopback ports (freeport never hands
// out a port twice).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freeport.Port(t)
	}
	return ports
}

// nginxSite maps glasshouse.conf's deployment paths and ports into a
// temporary prefix, points the upstream's first server at upstream, and
// applies the test's extra replacements and writes the main config around
// it (one worker, access log on). Every replacement must apply, so a change
// to the config that the test no longer understands fails loudly.
func nginxSite(t *testing.T, prefix, cert, key, upstream string, httpPort, httpsPort int, extra ...nginxtest.Replacement) string {
	t.Helper()
	raw, err := os.ReadFile("deploy/nginx/glasshouse.conf")
	if err != nil {
		t.Fatal(err)
	}
	run := nginxtest.Run{Prefix: prefix, Cert: cert, Key: key, HTTPPort: httpPort, HTTPSPort: httpsPort,
		Workers: 1, WorkerConnections: 64, AccessLog: true}
	rs := append(run.Loopback(), nginxtest.Replacement{Old: "server 127.0.0.1:8080 ", New: "server " + upstream + " "})
	rs = append(rs, extra...)
	conf, err := nginxtest.Replace("deploy/nginx/glasshouse.conf", string(raw), rs)
	if err != nil {
		t.Fatalf("%v; update the test's mapping", err)
	}
	mainPath, err := run.Write(conf)
	if err != nil {
		t.Fatal(err)
	}
	return mainPath
}

// TestNginxConfig checks the reverse-proxy config with `nginx -t`, then runs
// nginx on loopback in front of a stand-in API and checks what the config
// promises: TLS with HTTP/2, the HTTP->HTTPS redirect, security headers,
// X-Request-ID passed through or generated, forwarded headers, gzip, the
// /health location and upstream keepalive.
func TestNginxConfig(t *testing.T) {
	nginx := lookBin(t, "nginx", "nginx")
	prefix := t.TempDir()
	cert, key, pool := selfSignedCert(t, prefix)

	var (
		mu    sync.Mutex
		seen  []http.Header
		conns atomic.Int32
	)
	big := `{"items":[` + strings.Repeat(`{"id":"0123456789","title":"a fairly repetitive item title"},`, 60) + `{}]}`
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		seen = append(seen, h)
		mu.Unlock()
		// The API sets some of the same security headers nginx adds.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Request-ID", r.Header.Get("X-Request-ID"))
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/health":
			io.WriteString(w, `{"status":"healthy"}`)
		case "/api/v1/items":
			io.WriteString(w, big)
		default:
			http.NotFound(w, r)
		}
	}))
	api.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	api.Start()
	defer api.Close()

	ps := freePorts(t, 2)
	httpPort, httpsPort := ps[0], ps[1]
	mainConf := nginxSite(t, prefix, cert, key, api.Listener.Addr().String(), httpPort, httpsPort)

	out, err := exec.CommandContext(t.Context(), nginx, "-t", "-p", prefix, "-e", prefix+"/logs/error.log", "-c", mainConf).CombinedOutput()
	t.Logf("nginx -t:\n%s", out)
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("nginx -t failed: %v", err)
	}
	if strings.Contains(string(out), "[warn]") {
		t.Errorf("nginx -t warns:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	nginxOut, stop := startNginx(ctx, t, httpsPort, nginx, "-p", prefix, "-e", prefix+"/logs/error.log", "-c", mainConf)
	defer stop()

	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "glasshouse.example.com"},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", httpsPort)
	get := func(url string, hdr map[string]string) (*http.Response, []byte, http.Header) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Host = "glasshouse.example.com"
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v\nnginx:\n%s", url, err, nginxOut.String())
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		mu.Lock()
		defer mu.Unlock()
		var up http.Header
		if len(seen) > 0 {
			up = seen[len(seen)-1]
		}
		return resp, body, up
	}

	t.Run("tls, http2, security headers, generated request id", func(t *testing.T) {
		resp, _, up := get(base+"/api/v1/items", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("protocol %s, want HTTP/2 over TLS", resp.Proto)
		}
		for k, want := range map[string]string{
			"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
			"X-Content-Type-Options":    "nosniff",
			"X-Frame-Options":           "DENY",
			"Referrer-Policy":           "no-referrer",
		} {
			if got := resp.Header.Values(k); len(got) != 1 || got[0] != want {
				t.Errorf("%s = %q, want exactly [%q]", k, got, want)
			}
		}
		id := up.Get("X-Request-ID")
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
			t.Errorf("upstream X-Request-ID = %q, want nginx's generated 32-hex id", id)
		}
		if got := resp.Header.Values("X-Request-ID"); len(got) != 1 || got[0] != id {
			t.Errorf("response X-Request-ID = %q, want exactly the id the API saw (%q)", got, id)
		}
		if up.Get("X-Forwarded-Proto") != "https" || up.Get("X-Forwarded-For") != "127.0.0.1" || up.Get("X-Real-Ip") != "127.0.0.1" {
			t.Errorf("forwarded headers: proto %q for %q real-ip %q", up.Get("X-Forwarded-Proto"), up.Get("X-Forwarded-For"), up.Get("X-Real-Ip"))
		}
		if up.Get("Host") != "glasshouse.example.com" {
			t.Errorf("upstream Host = %q, want the client's", up.Get("Host"))
		}
		if resp.Header.Get("Server") != "nginx" {
			t.Errorf("Server = %q, want plain nginx (server_tokens off)", resp.Header.Get("Server"))
		}
	})

	t.Run("request id passed through or replaced", func(t *testing.T) {
		_, _, up := get(base+"/api/v1/items", map[string]string{"X-Request-ID": "req-abc_123.4:5"})
		if got := up.Get("X-Request-ID"); got != "req-abc_123.4:5" {
			t.Errorf("well-formed X-Request-ID reached the API as %q", got)
		}
		resp, _, up := get(base+"/api/v1/items", map[string]string{"X-Request-ID": "bad id <script>"})
		got := up.Get("X-Request-ID")
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got) {
			t.Errorf("malformed X-Request-ID reached the API as %q, want a generated one", got)
		}
		if resp.Header.Get("X-Request-ID") != got {
			t.Errorf("response X-Request-ID %q, API saw %q", resp.Header.Get("X-Request-ID"), got)
		}
	})

	t.Run("gzip", func(t *testing.T) {
		resp, body, _ := get(base+"/api/v1/items", map[string]string{"Accept-Encoding": "gzip"})
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding = %q, want gzip for a %d-byte JSON body", resp.Header.Get("Content-Encoding"), len(big))
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Vary = %q, want Accept-Encoding", resp.Header.Get("Vary"))
		}
		zr, err := gzip.NewReader(strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if string(plain) != big {
			t.Error("gunzipped body differs from the API's")
		}
		t.Logf("gzip: %d -> %d bytes", len(plain), len(body))
	})

	t.Run("health location", func(t *testing.T) {
		resp, body, _ := get(base+"/health", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"healthy"`) {
			t.Errorf("/health = %d %s", resp.StatusCode, body)
		}
	})

	t.Run("http redirects to https", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/api/v1/items?x=1", httpPort), nil)
		req.Host = "glasshouse.example.com"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "https://glasshouse.example.com/api/v1/items?x=1" {
			t.Errorf("plain HTTP: %d Location %q, want 301 to the https URL", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("upstream keepalive", func(t *testing.T) {
		before := conns.Load()
		for range 10 {
			get(base+"/health", nil)
		}
		if n := conns.Load() - before; n > 1 {
			t.Errorf("10 sequential requests opened %d new upstream connections, want keepalive reuse (at most 1)", n)
		}
	})

	// The access log is one JSON object per request, with the request ID.
	logb, err := os.ReadFile(filepath.Join(prefix, "logs", "glasshouse.access.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logb), `"request_id":"req-abc_123.4:5"`) {
		t.Errorf("access log lacks the passed-through request id:\n%s", logb)
	}
	if strings.Contains(string(logb), `"uri":"/health"`) {
		t.Error("health checks are logged; the /health location should not log")
	}
}

func waitPort(t *testing.T, port int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on 127.0.0.1:%d", port)
}
