// Package testenv starts the real Prometheus and Alertmanager binaries on
// loopback for the tests that need them (alerts, the gameday, the live
// dashboard check, the scale-out check), and rewrites
// alerts/alertmanager.yml for them. It also starts other child processes
// with their output in a log, builds the repository's binaries, waits for
// readiness and queries Prometheus's HTTP API. Tests that need a binary
// that is not installed are skipped with a message saying how to install it.
//
// It is test support: it imports testing and must not be imported by
// non-test code.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/internal/freeport"
	"github.com/glasshouse-dev/glasshouse/internal/integration"
	"gopkg.in/yaml.v3"
)

// Binary returns the path of the first of names found in PATH (also
// looking in /usr/sbin and /usr/local/bin), or skips the test.
func Binary(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/bin"} {
			if p := filepath.Join(dir, n); isExec(p) {
				return p
			}
		}
	}
	integration.Skip(t, "none of %v found in PATH; install Debian's prometheus and prometheus-alertmanager packages to run this test", names)
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return freeport.Addr(t)
}

// Process is a started child process whose output is kept in a log file.
type Process struct {
	Name     string
	cmd      *exec.Cmd
	logPath  string
	logStart int64 // the log's size when this process started
	done     chan struct{}
	mu       sync.Mutex
	err      error
	logEnd   int64 // the log's size when it ended; -1 while it runs
}

// Start runs bin with args and env (added to the current environment),
// appending its output to the log file dir/name.log, so a process started
// again under the same name keeps the earlier runs' output before its own.
// The process (its whole process group) is killed when the test ends; what
// it wrote is printed if the test failed.
func Start(t testing.TB, dir, name, bin string, args, env []string) *Process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := logf.Stat()
	if err != nil {
		logf.Close()
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Name: name, cmd: cmd, logPath: logPath, logStart: fi.Size(), logEnd: -1, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		end, _ := logf.Seek(0, io.SeekEnd)
		logf.Close()
		p.mu.Lock()
		p.err, p.logEnd = err, end
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- %s log (%s):\n%s", name, logPath, p.Log())
		}
	})
	return p
}

// Kill sends SIGKILL to the process (and its process group) and waits for it.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to grace before killing.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// Signal sends sig to the process (not to its process group); it does
// nothing once the process has ended.
func (p *Process) Signal(sig os.Signal) {
	_ = p.cmd.Process.Signal(sig)
}

// Wait waits for the process to end, at most guard (a hang guard, not a
// timing assertion), and returns its exit error, or an error saying it is
// still running.
func (p *Process) Wait(guard time.Duration) error {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-time.After(guard):
		return fmt.Errorf("%s still running after %s", p.Name, guard)
	}
}

// Exited reports whether the process has ended, and its error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// Log returns what the process has written so far (the last 8 KiB),
// without what earlier or later processes wrote to the same log.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logPath)
	p.mu.Lock()
	end := p.logEnd
	p.mu.Unlock()
	if end >= p.logStart && end <= int64(len(b)) {
		b = b[:end]
	}
	if int64(len(b)) >= p.logStart {
		b = b[p.logStart:]
	}
	if len(b) > 8<<10 {
		b = append([]byte("...\n"), b[len(b)-8<<10:]...)
	}
	return string(b)
}

// WaitReady polls url with http.DefaultClient until it answers 200, the
// process exits, or ctx ends.
func WaitReady(ctx context.Context, p *Process, url string) error {
	return WaitReadyClient(ctx, http.DefaultClient, p, url)
}

// WaitReadyClient is WaitReady with the client c (one that trusts a test
// certificate, for example).
func WaitReadyClient(ctx context.Context, c *http.Client, p *Process, url string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := c.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("%s exited before %s was ready: %v\n%s", p.Name, url, err, p.Log())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not ready: %w\n%s", p.Name, url, ctx.Err(), p.Log())
		case <-tick.C:
		}
	}
}

// AlertmanagerTimings shortens Alertmanager's waits for tests.
type AlertmanagerTimings struct {
	GroupWait, GroupInterval, RepeatInterval string
}

// AlertmanagerConfig reads the Alertmanager configuration at src (the
// committed alerts/alertmanager.yml), points its Slack webhook at
// webhookURL through a secret file, makes template paths absolute, applies
// timings to every route when non-empty, and writes the result into dir.
// Routing, grouping, inhibition and templates are left exactly as committed.
func AlertmanagerConfig(src, webhookURL, dir string, tm AlertmanagerTimings) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("%s: %w", src, err)
	}
	secret := filepath.Join(dir, "slack_webhook_url")
	if err := os.WriteFile(secret, []byte(webhookURL+"\n"), 0o600); err != nil {
		return "", err
	}
	global, ok := cfg["global"].(map[string]any)
	if !ok || global["slack_api_url_file"] == nil {
		return "", errors.New(src + ": global.slack_api_url_file not set")
	}
	global["slack_api_url_file"] = secret
	base, err := filepath.Abs(filepath.Dir(src))
	if err != nil {
		return "", err
	}
	if tpls, ok := cfg["templates"].([]any); ok {
		for i, tp := range tpls {
			if s, ok := tp.(string); ok && !filepath.IsAbs(s) {
				tpls[i] = filepath.Join(base, s)
			}
		}
	}
	var walk func(r map[string]any)
	walk = func(r map[string]any) {
		for k, v := range map[string]string{"group_wait": tm.GroupWait, "group_interval": tm.GroupInterval, "repeat_interval": tm.RepeatInterval} {
			if v != "" {
				r[k] = v
			}
		}
		if subs, ok := r["routes"].([]any); ok {
			for _, s := range subs {
				if m, ok := s.(map[string]any); ok {
					walk(m)
				}
			}
		}
	}
	if route, ok := cfg["route"].(map[string]any); ok {
		walk(route)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "alertmanager.yml")
	return path, os.WriteFile(path, out, 0o644)
}

// Alertmanager is a running prometheus-alertmanager.
type Alertmanager struct {
	*Process
	URL string // http://127.0.0.1:PORT
}

// StartAlertmanager runs Alertmanager with configPath on a free loopback
// port (clustering off) and waits until it is ready.
func StartAlertmanager(t testing.TB, configPath string) *Alertmanager {
	t.Helper()
	bin := Binary(t, "prometheus-alertmanager", "alertmanager")
	p, url := startServer(t, "alertmanager", bin, configPath, "--storage.path", 30*time.Second,
		"--cluster.listen-address=")
	return &Alertmanager{Process: p, URL: url}
}

// Prometheus is a running Prometheus server.
type Prometheus struct {
	*Process
	URL string
}

// StartPrometheus runs Prometheus with configPath (exemplar storage on, a
// temporary TSDB) on a free loopback port and waits until it is ready.
func StartPrometheus(t testing.TB, configPath string) *Prometheus {
	t.Helper()
	bin := Binary(t, "prometheus")
	p, url := startServer(t, "prometheus", bin, configPath, "--storage.tsdb.path", 60*time.Second,
		"--enable-feature=exemplar-storage")
	return &Prometheus{Process: p, URL: url}
}

// startServer runs bin, a server of the Prometheus family (Prometheus,
// Alertmanager: the same config and web flags, the same /-/ready), as name
// with configPath, its data under storageFlag in a temporary directory and
// the extra flags, on a free loopback port. It waits up to wait for the
// server to be ready and returns the process and its URL.
func startServer(t testing.TB, name, bin, configPath, storageFlag string, wait time.Duration, extra ...string) (*Process, string) {
	t.Helper()
	dir := t.TempDir()
	addr := FreeAddr(t)
	url := "http://" + addr
	args := append([]string{
		"--config.file=" + configPath,
		storageFlag + "=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--web.external-url=" + url,
		"--log.level=info",
	}, extra...)
	p := Start(t, dir, name, bin, args, nil)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := WaitReady(ctx, p, url+"/-/ready"); err != nil {
		t.Fatal(err)
	}
	return p, url
}

// BuildBinary compiles the Go package pkg (an import path or ./dir relative
// to the module root) into dir and returns the binary's path.
func BuildBinary(t testing.TB, moduleRoot, pkg, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not in PATH; cannot build " + pkg)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command(goBin, "build", "-o", out, pkg)
	cmd.Dir = moduleRoot
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, stderr.String())
	}
	return out
}

// ReadYAML decodes the YAML file at path into v, failing the test when the
// file cannot be read or decoded.
func ReadYAML(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}

// RulesEverySecond copies the Prometheus rule files at paths into dir
// (created if needed) with every group evaluated each second, its interval
// set to 1s, so a test need not wait a group's committed interval. Rule
// names, expressions and `for` durations are left as they are. It returns
// dir.
func RulesEverySecond(t testing.TB, dir string, paths []string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		var doc map[string]any
		ReadYAML(t, p, &doc)
		groups, _ := doc["groups"].([]any)
		for _, g := range groups {
			if gm, ok := g.(map[string]any); ok {
				gm["interval"] = "1s"
			}
		}
		b, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ModuleRoot returns the directory holding go.mod above the working directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// API GETs path of the Prometheus HTTP API with the query q and decodes the
// data of a successful answer into out; an error answer is an error with
// Prometheus's message.
func (p *Prometheus) API(ctx context.Context, path string, q url.Values, out any) error {
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := GetJSON(ctx, p.URL+path+"?"+q.Encode(), &body); err != nil {
		return err
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s", path, body.Error)
	}
	return json.Unmarshal(body.Data, out)
}

// GetJSON GETs url and decodes its JSON body into out, whatever the status.
func GetJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// Query evaluates expr as an instant query and returns the label sets of
// the samples whose value is a number (NaN and ±Inf are left out, as "no
// data" in a panel).
func (p *Prometheus) Query(ctx context.Context, expr string) ([]map[string]string, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.API(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	number := func(v []any) bool {
		s, _ := v[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		return err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	var out []map[string]string
	switch data.ResultType {
	case "vector":
		var vs []struct {
			Metric map[string]string
			Value  []any
		}
		if err := json.Unmarshal(data.Result, &vs); err != nil {
			return nil, err
		}
		for _, v := range vs {
			if len(v.Value) == 2 && number(v.Value) {
				out = append(out, v.Metric)
			}
		}
	case "scalar":
		var v []any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		if len(v) == 2 && number(v) {
			out = append(out, map[string]string{})
		}
	}
	return out, nil
}

// RedisHangGuard is the per-call Redis timeout of tests that need Redis to
// answer: long enough that a call slowed by a loaded machine (GC, the race
// detector, parallel test binaries) still succeeds, so only a hang fails
// it. The cache's and the limiter's production timeout (100 ms) would
// count such a call as an outage and fall back for a cooldown, changing the
// outcome a test asserts; tests that cut or stall Redis keep that one.
const RedisHangGuard = 5 * time.Second

// RedisHangGuardURL returns the Redis URL u with RedisHangGuard as the
// client's dial, read, write and pool timeouts, except those u sets (the
// API takes client timeouts from REDIS_URL).
func RedisHangGuardURL(t testing.TB, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("Redis URL: %v", err)
	}
	q := pu.Query()
	for _, k := range []string{"dial_timeout", "read_timeout", "write_timeout", "pool_timeout"} {
		if !q.Has(k) {
			q.Set(k, RedisHangGuard.String())
		}
	}
	pu.RawQuery = q.Encode()
	return pu.String()
}
