package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMCompletesInFlightRequest builds the real binary, starts it,
// and sends it SIGTERM while a request is in flight: the request completes
// with 201 after the listener has closed, and the process exits 0.
func TestSIGTERMCompletesInFlightRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on Windows")
	}
	const linkVersion = "v0.0.0-sigterm-test" // what make build and the Dockerfile do with -X
	addr, adminAddr := freeAddr(t), freeAddr(t)
	base := "http://" + addr
	p := startBinary(t, linkVersion, "ADDR="+addr, "ADMIN_ADDR="+adminAddr, "DATA_DIR="+t.TempDir(),
		"LOG_FORMAT=json", "SHUTDOWN_TIMEOUT=10s", "RATE_LIMIT_ENABLED=false")
	logs := p.out
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(base + "/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", logs)
		}
	}
	var health struct {
		Version string `json:"version"`
	}
	call(t, "GET", base+"/health", "", "", &health)
	if health.Version != linkVersion {
		t.Errorf("/health version %q, want the link-time %q", health.Version, linkVersion)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	call(t, "POST", base+"/api/v1/users", "", `{"username":"sig","email":"sig@example.com","password":"Passw0rd!"}`, nil)
	call(t, "POST", base+"/api/v1/auth/login", "", `{"username":"sig","password":"Passw0rd!"}`, &tok)

	pr, pw := io.Pipe()
	wrote := make(chan struct{})
	req, _ := http.NewRequest("POST", base+"/api/v1/items", pr)
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{WroteHeaders: func() { close(wrote) }}))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	status := make(chan int, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			t.Errorf("in-flight request: %v", err)
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	io.WriteString(pw, `{"name":"sig`)
	<-wrote
	waitInFlight(t, "http://"+adminAddr, 1)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener never closed after SIGTERM")
		}
	}
	io.WriteString(pw, `term"}`)
	pw.Close()
	if got := <-status; got != 201 {
		t.Errorf("in-flight request finished with %d, want 201", got)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("process exited with %v, want 0\n%s", p.err, logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("process did not exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), "shutdown complete") {
		t.Errorf("no shutdown log:\n%s", logs)
	}
}
