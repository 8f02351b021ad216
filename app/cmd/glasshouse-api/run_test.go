package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/internal/freeport"
	"github.com/glasshouse-dev/glasshouse/internal/syncbuf"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	return freeport.Addr(t)
}

type instance struct {
	base, admin string
	dataDir     string
	cancel      context.CancelFunc
	done        chan error
	logs        *syncbuf.Buffer
}

// start calls run with env (on top of free loopback ports, a temp data
// dir and quiet defaults) and waits until /health/ready answers 200.
func start(t *testing.T, env map[string]string) *instance {
	t.Helper()
	e := map[string]string{
		"ADDR":       freeAddr(t),
		"ADMIN_ADDR": freeAddr(t),
		"DATA_DIR":   t.TempDir(),
		"LOG_FORMAT": "json",
	}
	for k, v := range env {
		e[k] = v
	}
	ctx, cancel := context.WithCancel(t.Context())
	in := &instance{base: "http://" + e["ADDR"], admin: "http://" + e["ADMIN_ADDR"], dataDir: e["DATA_DIR"], cancel: cancel, done: make(chan error, 1), logs: &syncbuf.Buffer{}}
	go func() {
		in.done <- run(ctx, []string{"glasshouse-api", "-env-file="}, func(k string) string { return e[k] }, strings.NewReader(""), in.logs, in.logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-in.done:
		case <-time.After(30 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(in.base + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return in
			}
		}
		select {
		case err := <-in.done:
			t.Fatalf("run returned before ready: %v\n%s", err, in.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 20s:\n%s", in.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call sends a JSON request and decodes a JSON response into out (if not nil).
func call(t *testing.T, method, url, token, body string, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
	return resp
}

func TestRunEndToEnd(t *testing.T) {
	in := start(t, nil)
	var user struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
	}
	if r := call(t, "POST", in.base+"/api/v1/users", "", `{"username":"alice","email":"alice@example.com","password":"Passw0rd!"}`, &user); r.StatusCode != 201 {
		t.Fatalf("signup: %d", r.StatusCode)
	}
	if r := call(t, "POST", in.base+"/api/v1/users", "", `{"username":"ALICE","email":"x@example.com","password":"Passw0rd!"}`, nil); r.StatusCode != 409 {
		t.Errorf("duplicate signup: %d, want 409", r.StatusCode)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if r := call(t, "POST", in.base+"/api/v1/auth/login", "", `{"username":"alice","password":"Passw0rd!"}`, &tok); r.StatusCode != 200 || tok.TokenType != "bearer" || tok.ExpiresIn != 1800 {
		t.Fatalf("login: %d %+v", r.StatusCode, tok)
	}
	var me struct{ Username string }
	if r := call(t, "GET", in.base+"/api/v1/users/me", tok.AccessToken, "", &me); r.StatusCode != 200 || me.Username != "alice" {
		t.Errorf("me: %d %+v", r.StatusCode, me)
	}
	var item struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	if r := call(t, "POST", in.base+"/api/v1/items", tok.AccessToken, `{"name":"Milk"}`, &item); r.StatusCode != 201 {
		t.Fatalf("create item: %d", r.StatusCode)
	}
	itemURL := fmt.Sprintf("%s/api/v1/items/%d", in.base, item.ID)
	if r := call(t, "PUT", itemURL, tok.AccessToken, `{"name":"Oat milk","description":"1l"}`, &item); r.StatusCode != 200 || item.Name != "Oat milk" {
		t.Errorf("update: %d %+v", r.StatusCode, item)
	}
	var list struct{ Total int }
	if r := call(t, "GET", in.base+"/api/v1/items?limit=5", tok.AccessToken, "", &list); r.StatusCode != 200 || list.Total != 1 {
		t.Errorf("list: %d %+v", r.StatusCode, list)
	}
	if r := call(t, "DELETE", itemURL, tok.AccessToken, "", nil); r.StatusCode != 204 {
		t.Errorf("delete: %d", r.StatusCode)
	}
	if r := call(t, "GET", itemURL, tok.AccessToken, "", nil); r.StatusCode != 404 || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("get deleted: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/health", "/health/live", "/health/detailed", "/openapi.json", "/docs"} {
		if r := call(t, "GET", in.base+path, "", "", nil); r.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, r.StatusCode)
		}
	}

	// The admin listener has metrics and pprof; the public one has neither.
	resp, err := http.Get(in.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`http_server_request_duration_seconds_count{code="201",method="POST",route="/api/v1/users"} 1`,
		`http_server_request_duration_seconds_count{code="409",method="POST",route="/api/v1/users"} 1`,
		`http_server_request_duration_seconds_count{code="204",method="DELETE",route="/api/v1/items/{id}"} 1`,
		`app_signups_total 1`, `app_items_created_total 1`, `app_logins_total{result="success"} 1`,
		`app_db_pool_connections{db="sqlite",state="max"}`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("admin /metrics lacks %s", want)
		}
	}
	if r := call(t, "GET", in.admin+"/debug/pprof/", "", "", nil); r.StatusCode != 200 {
		t.Errorf("admin pprof: %d", r.StatusCode)
	}
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		if r := call(t, "GET", in.base+path, "", "", nil); r.StatusCode != 404 {
			t.Errorf("public %s: %d, want 404", path, r.StatusCode)
		}
	}
	if !strings.Contains(in.logs.String(), "INSECURE") {
		t.Error("no loud warning about the development JWT key")
	}

	// Data survives a restart on the same DATA_DIR.
	in.cancel()
	if err := <-in.done; err != nil {
		t.Fatalf("run: %v", err)
	}
	in.done <- nil // for the cleanup
	again := start(t, map[string]string{"DATA_DIR": in.dataDir})
	if r := call(t, "POST", again.base+"/api/v1/auth/login", "", `{"username":"alice","password":"Passw0rd!"}`, nil); r.StatusCode != 200 {
		t.Errorf("login after restart: %d", r.StatusCode)
	}
}

// TestGracefulShutdown: a request in flight when shutdown begins completes
// successfully; readiness turns 503 first; new connections are refused
// afterwards; run returns nil.
func TestGracefulShutdown(t *testing.T) {
	// The drain delay is the window in which readiness must be seen to turn
	// 503: 3 s, so that a busy machine's pause cannot hide it. The
	// in-flight request's body is held back for longer than that, on
	// purpose: the body-rate limit's grace must not end it first.
	in := start(t, map[string]string{"SHUTDOWN_DRAIN_DELAY": "3s", "SHUTDOWN_TIMEOUT": "10s", "RATE_LIMIT_ENABLED": "false", "MIN_BODY_RATE_GRACE": "30s"})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	call(t, "POST", in.base+"/api/v1/users", "", `{"username":"bob","email":"bob@example.com","password":"Passw0rd!"}`, nil)
	call(t, "POST", in.base+"/api/v1/auth/login", "", `{"username":"bob","password":"Passw0rd!"}`, &tok)

	// Start a request whose body arrives in two halves.
	pr, pw := io.Pipe()
	wrote := make(chan struct{})
	req, _ := http.NewRequest("POST", in.base+"/api/v1/items", pr)
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteHeaders: func() { close(wrote) },
	}))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	type result struct {
		status int
		err    error
	}
	inflight := make(chan result, 1)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		resp.Body.Close()
		inflight <- result{status: resp.StatusCode}
	}()
	io.WriteString(pw, `{"name":"in fl`)
	<-wrote
	waitInFlight(t, in.admin, 1)

	in.cancel() // what SIGTERM does through signal.NotifyContext

	// Readiness turns 503 while the listener is still open (drain delay):
	// poll until it does, or until the listener has closed without it.
	sawNotReady := false
	for deadline := time.Now().Add(10 * time.Second); !sawNotReady && time.Now().Before(deadline); {
		resp, err := client.Get(in.base + "/health/ready")
		if err != nil {
			break // the drain delay is over and the listener closed
		}
		resp.Body.Close()
		sawNotReady = resp.StatusCode == http.StatusServiceUnavailable
	}
	if !sawNotReady {
		t.Error("/health/ready never answered 503 during the drain delay")
	}
	// Wait until the listener is closed (srv.Shutdown is running), then
	// finish the in-flight request: Shutdown must wait for it.
	addr := strings.TrimPrefix(in.base, "http://")
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // refused: new connections are no longer accepted
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener was never closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-in.done:
		t.Fatalf("run returned (%v) while a request was still in flight", err)
	default:
	}
	io.WriteString(pw, `ight"}`)
	pw.Close()
	select {
	case r := <-inflight:
		if r.err != nil || r.status != 201 {
			t.Errorf("in-flight request: status %d, err %v; want 201", r.status, r.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("in-flight request never completed")
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
		in.done <- nil
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
	if logs := in.logs.String(); !strings.Contains(logs, "readiness now 503") || !strings.Contains(logs, "shutdown complete") {
		t.Errorf("shutdown not logged:\n%s", logs)
	}
}

func TestHealthSubcommand(t *testing.T) {
	in := start(t, nil)
	var out bytes.Buffer
	env := func(string) string { return "" }
	if err := run(t.Context(), []string{"glasshouse-api", "health", "-url", in.base + "/health/live"}, env, nil, &out, &out); err != nil {
		t.Errorf("health against a live server: %v", err)
	}
	addr := strings.TrimPrefix(in.base, "http://")
	if err := run(t.Context(), []string{"glasshouse-api", "health"}, func(k string) string {
		return map[string]string{"ADDR": addr}[k]
	}, nil, &out, &out); err != nil {
		t.Errorf("health with the URL derived from ADDR: %v", err)
	}
	dead := "http://" + freeAddr(t) + "/health/live"
	if err := run(t.Context(), []string{"glasshouse-api", "health", "-url", dead}, env, nil, &out, &out); err == nil {
		t.Error("health against a closed port succeeded")
	}
	if err := run(t.Context(), []string{"glasshouse-api", "health", "-url", in.base + "/nope"}, env, nil, &out, &out); err == nil {
		t.Error("health against a 404 succeeded")
	}
}

// waitInFlight polls the admin /metrics until the server reports n
// requests in its handlers, so a shutdown test knows its request was
// accepted and is being served (not just sitting in the accept backlog).
func waitInFlight(t *testing.T, admin string, n int) {
	t.Helper()
	want := fmt.Sprintf("http_server_active_requests %d", n)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		resp, err := http.Get(admin + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want+"\n") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never reported %q", want)
		}
	}
}

// TestBuildVersionPrefersLinkTimeVersion: -X main.version wins over the
// build info, which is the fallback when it is empty.
func TestBuildVersionPrefersLinkTimeVersion(t *testing.T) {
	saved := version
	t.Cleanup(func() { version = saved })
	version = ""
	fallback := buildVersion()
	if fallback == "" {
		t.Fatal("buildVersion without a link-time version is empty")
	}
	version = "v9.8.7"
	if got := buildVersion(); got != "v9.8.7" {
		t.Errorf("buildVersion() = %q with version set, want v9.8.7 (fallback was %q)", got, fallback)
	}
}
