package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/internal/syncbuf"
)

// shortDir is a temporary directory with a path short enough for a Unix
// socket (at most 108 bytes on Linux; t.TempDir's can be longer).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

// TestUnixSocket serves the API through run on ADDR=unix:PATH: the socket
// gets UNIX_SOCKET_MODE, a stale socket file from a dead process is
// replaced, requests over the socket are answered (and, with
// TRUSTED_PROXIES=unix, their X-Forwarded-For names the client, so two
// clients behind a local proxy get separate buckets), the health
// subcommand probes the socket, and shutdown removes the file.
func TestUnixSocket(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix sockets")
	}
	sock := filepath.Join(shortDir(t), "api.sock")
	// A socket file nobody listens on, as a killed process leaves it.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	env := map[string]string{"ADDR": "unix:" + sock, "UNIX_SOCKET_MODE": "0600", "ADMIN_ADDR": depFreeAddr(t),
		"DATA_DIR": t.TempDir(), "LOG_FORMAT": "json", "TRUSTED_PROXIES": "unix", "RATE_LIMIT_ANONYMOUS": "1/1h:1"}
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"glasshouse-api", "-env-file="}, func(k string) string { return env[k] }, strings.NewReader(""), logs, logs)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return within 30s of cancel")
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	})
	client := unixClient(sock)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(25 * time.Millisecond) {
		if resp, err := client.Get("http://localhost/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before ready: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s:\n%s", logs)
		}
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file mode %v, want a socket with 0600", fi.Mode())
	}
	for i, tc := range []struct {
		client string
		want   int
	}{{"203.0.113.1", 200}, {"203.0.113.2", 200}, {"203.0.113.1", 429}} {
		req, _ := http.NewRequest("GET", "http://localhost/openapi.json", nil)
		req.Header.Set("X-Forwarded-For", tc.client)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("request %d from %s over the socket: %d, want %d", i, tc.client, resp.StatusCode, tc.want)
		}
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"glasshouse-api", "health"}, func(k string) string { return env[k] }, nil, &out, &out); err != nil {
		t.Errorf("health over the socket: %v (%s)", err, out.String())
	}
	stop()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file after shutdown: %v, want it removed", err)
	}
}

func TestUnixSocketRefusesOtherFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix sockets")
	}
	dir := shortDir(t)
	regular := filepath.Join(dir, "notes.txt")
	os.WriteFile(regular, []byte("keep me"), 0o600)
	if ln, err := listen("unix:"+regular, 0o660); err == nil {
		ln.Close()
		t.Error("listen replaced a regular file")
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep me" {
		t.Errorf("regular file now %q", b)
	}
	live := filepath.Join(dir, "live.sock")
	ln, err := listen("unix:"+live, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln2, err := listen("unix:"+live, 0o660); err == nil {
		ln2.Close()
		t.Error("listen took over a socket another listener serves")
	}
	for _, tc := range []struct{ addr, mode, want string }{
		{"unix:", "0660", "ADDR"},
		{"unix:/x.sock", "0999", "UNIX_SOCKET_MODE"},
		{"unix:/x.sock", "01777", "UNIX_SOCKET_MODE"},
	} {
		_, err := parseConfig([]string{"api", "-env-file="}, envOf(map[string]string{"ADDR": tc.addr, "UNIX_SOCKET_MODE": tc.mode}), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ADDR=%s UNIX_SOCKET_MODE=%s: error %v, want one naming %s", tc.addr, tc.mode, err, tc.want)
		}
	}
}
