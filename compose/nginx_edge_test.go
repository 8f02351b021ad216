package compose_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/compose/internal/nginxtest"
	"github.com/glasshouse-dev/glasshouse/internal/syncbuf"
)

// TestNginxEdgeInFrontOfAPI runs the real Debian nginx with
// deploy/nginx/glasshouse.conf in its Unix socket variant, in front of the
// real API binary listening on ADDR=unix:... with TRUSTED_PROXIES=unix.
// The per-IP limit is scaled down (1 request a minute, burst 5) so the
// count is exact: from one client address the 7th request is refused by
// nginx itself with the JSON 429 (the API never sees it: no
// X-Process-Time), while another client address is still served; and the
// API's access log names the two addresses apart, ignoring a forged
// X-Forwarded-For entry.
func TestNginxEdgeInFrontOfAPI(t *testing.T) {
	nginx := lookBin(t, "nginx", "nginx")
	prefix := t.TempDir()
	cert, key, pool := selfSignedCert(t, prefix)

	sockDir, err := os.MkdirTemp("", "ghn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "api.sock")

	bin := filepath.Join(t.TempDir(), "glasshouse-api")
	build := exec.Command("go", "build", "-o", bin, "./app/cmd/glasshouse-api")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	apiOut := &syncbuf.Buffer{}
	api := exec.Command(bin, "-env-file=")
	api.Env = append(os.Environ(), "ADDR=unix:"+sock, "UNIX_SOCKET_MODE=0666", "TRUSTED_PROXIES=unix",
		"ADMIN_ADDR="+fmt.Sprintf("127.0.0.1:%d", freePort(t)), "DATA_DIR="+t.TempDir(), "LOG_FORMAT=json")
	api.Stdout, api.Stderr = apiOut, apiOut
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	apiDone := make(chan struct{})
	go func() { api.Wait(); close(apiDone) }()
	t.Cleanup(func() {
		api.Process.Signal(os.Interrupt)
		select {
		case <-apiDone:
		case <-time.After(30 * time.Second):
			api.Process.Kill()
			<-apiDone
		}
		if t.Failed() {
			t.Logf("API output:\n%s", apiOut)
		}
	})
	overSocket := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(25 * time.Millisecond) {
		if resp, err := overSocket.Get("http://localhost/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-apiDone:
			t.Fatalf("API exited before ready:\n%s", apiOut)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("API not ready after 30s:\n%s", apiOut)
		}
	}

	httpPort, httpsPort := freePort(t), freePort(t)
	mainConf := nginxSite(t, prefix, cert, key, "unix:"+sock, httpPort, httpsPort,
		// One replica: the socket.
		nginxtest.Replacement{Old: "    server 127.0.0.1:8090 max_fails=3 fail_timeout=10s;\n"},
		nginxtest.Replacement{Old: "    server 127.0.0.1:8092 max_fails=3 fail_timeout=10s;\n"},
		// An exact count instead of a race against the refill.
		nginxtest.Replacement{Old: "rate=100r/s;", New: "rate=1r/m;"},
		nginxtest.Replacement{Old: "limit_req zone=glasshouse_per_ip burst=200 nodelay;", New: "limit_req zone=glasshouse_per_ip burst=5 nodelay;"},
	)
	if out, err := exec.CommandContext(t.Context(), nginx, "-t", "-p", prefix, "-e", prefix+"/logs/error.log", "-c", mainConf).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nginxOut, stop := startNginx(ctx, t, httpsPort, nginx, "-p", prefix, "-e", prefix+"/logs/error.log", "-c", mainConf)
	defer stop()

	// from returns a client whose connections leave from ip (any
	// 127.0.0.0/8 address is loopback on Linux).
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		tr := &http.Transport{DialContext: d.DialContext, ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "glasshouse.example.com"}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", httpsPort)
	type answer struct {
		status      int
		contentType string
		processTime string
		code        string
	}
	get := func(c *http.Client, xff string) answer {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
		req.Host = "glasshouse.example.com"
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET: %v\nnginx:\n%s", err, nginxOut.String())
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var p struct{ Code string }
		json.Unmarshal(body, &p)
		return answer{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Process-Time"), p.Code}
	}

	one, three := from("127.0.0.1"), from("127.0.0.3")
	var statuses []int
	for i := range 8 {
		a := get(one, "")
		statuses = append(statuses, a.status)
		if i < 6 && (a.status != 200 || a.processTime == "") {
			t.Errorf("request %d from 127.0.0.1: %+v, want 200 from the API", i+1, a)
		}
		if i >= 6 && (a.status != 429 || a.contentType != "application/problem+json" || a.code != "rate_limited" || a.processTime != "") {
			t.Errorf("request %d from 127.0.0.1: %+v, want nginx's own 429 problem+json rate_limited", i+1, a)
		}
	}
	t.Logf("127.0.0.1: %v", statuses)
	// Another address has its own bucket at the edge, and a forged
	// X-Forwarded-For does not change who it is to the API.
	if a := get(three, "6.6.6.6"); a.status != 200 || a.processTime == "" {
		t.Errorf("first request from 127.0.0.3 (after 127.0.0.1 was limited): %+v, want 200 from the API", a)
	}

	// The API's access log: 127.0.0.1 six times, 127.0.0.3 once, never the
	// forged address. Records are written when each handler returns.
	count := map[string]int{}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		clear(count)
		for line := range strings.Lines(apiOut.String()) {
			var rec struct {
				Msg, Path string
				ClientIP  string `json:"client_ip"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "http request" && rec.Path == "/health" {
				count[rec.ClientIP]++
			}
		}
		if count["127.0.0.1"] == 6 && count["127.0.0.3"] == 1 {
			break
		}
	}
	if count["127.0.0.1"] != 6 || count["127.0.0.3"] != 1 || len(count) != 2 {
		t.Errorf("API access log client_ip counts %v, want 127.0.0.1:6 127.0.0.3:1", count)
	}
}

// TestComposeEdgeConfig runs the compose stack's nginx configuration
// (nginx/nginx.conf and nginx/glasshouse.conf, as compose mounts them) with
// the real Debian nginx, its container paths and the api:8080 upstream
// mapped to a temporary prefix and a stand-in API: it passes `nginx -t`,
// the healthcheck URL answers, and a request over TLS reaches the API with
// the client's address in X-Forwarded-For and X-Real-IP.
func TestComposeEdgeConfig(t *testing.T) {
	nginx := lookBin(t, "nginx", "nginx")
	prefix := t.TempDir()
	cert, key, pool := selfSignedCert(t, prefix)
	var (
		mu   sync.Mutex
		seen http.Header
	)
	api := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		io.WriteString(w, "from the api")
	})
	tlsPort, healthPort := freePort(t), freePort(t)
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	site := read("nginx/glasshouse.conf")
	mainConf := read("nginx/nginx.conf")
	for _, m := range []struct {
		conf     *string
		old, new string
	}{
		{&site, "server api:8080;", "server " + api + ";"},
		{&site, "listen 8443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", tlsPort)},
		{&site, "listen 8088;", fmt.Sprintf("listen 127.0.0.1:%d;", healthPort)},
		{&site, "/etc/nginx/certs/tls.pem", cert},
		{&site, "/etc/nginx/certs/tls-key.pem", key},
		{&mainConf, "/tmp/", prefix + "/"}, // before the next: prefix itself may be under /tmp
		{&mainConf, "/etc/nginx/conf.d/glasshouse.conf", filepath.Join(prefix, "glasshouse.conf")},
	} {
		if !strings.Contains(*m.conf, m.old) {
			t.Fatalf("compose nginx config no longer contains %q; update the test's mapping", m.old)
		}
		*m.conf = strings.ReplaceAll(*m.conf, m.old, m.new)
	}
	if os.Geteuid() == 0 {
		mainConf = "user root root;\n" + mainConf // workers must read the test's 0700 temp dirs
	}
	os.WriteFile(filepath.Join(prefix, "glasshouse.conf"), []byte(site), 0o644)
	mainPath := filepath.Join(prefix, "nginx.conf")
	os.WriteFile(mainPath, []byte(mainConf), 0o644)
	if out, err := exec.CommandContext(t.Context(), nginx, "-t", "-p", prefix, "-c", mainPath).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, stop := startNginx(ctx, t, tlsPort, nginx, "-p", prefix, "-c", mainPath, "-g", "daemon off;")
	defer stop()

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/nginx-health", healthPort))
	if err != nil {
		t.Fatalf("healthcheck URL: %v\n%s", err, out.String())
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthcheck URL: %d", resp.StatusCode)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "glasshouse.example.com"}, ForceAttemptHTTP2: true}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/health", tlsPort), nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatalf("GET over TLS: %v\n%s", err, out.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "from the api" || resp.ProtoMajor != 2 {
		t.Errorf("GET over TLS: %s %d %q", resp.Proto, resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := seen.Get("X-Forwarded-For"); got != "6.6.6.6, 127.0.0.1" {
		t.Errorf("X-Forwarded-For at the API = %q, want the client's entry then the peer nginx saw", got)
	}
	if got := seen.Get("X-Real-Ip"); got != "127.0.0.1" {
		t.Errorf("X-Real-IP at the API = %q, want 127.0.0.1", got)
	}
}

// httptestServer starts a plain HTTP stand-in API and returns its address.
func httptestServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
