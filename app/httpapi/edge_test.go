package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
)

// heldStore holds UserByID calls until release is closed, reporting
// each arrival on entered.
type heldStore struct {
	app.Store
	entered chan struct{}
	release chan struct{}
}

func (b *heldStore) UserByID(ctx context.Context, id int64) (app.User, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.UserByID(ctx, id)
}

// TestInFlightBoundPerIP: one client IP holds at most
// ConcurrencyLimitPerIP requests in flight; other clients are unaffected.
func TestInFlightBoundPerIP(t *testing.T) {
	var bs *heldStore
	f := newFixture(t, func(o *Options) {
		o.ConcurrencyLimitPerIP = 2
		bs = &heldStore{Store: o.Store, entered: make(chan struct{}, 8), release: make(chan struct{})}
		o.Store = bs
	})
	_, token := f.signup(t, "holder")
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if w := f.do(t, req{method: "GET", path: "/api/v1/users/me", token: token, remote: "192.0.2.9:1"}); w.Code != 200 {
				t.Errorf("held request: %d, want 200", w.Code)
			}
		})
	}
	for range 2 {
		select {
		case <-bs.entered:
		case <-time.After(30 * time.Second):
			t.Fatal("held requests never reached the store")
		}
	}
	w := f.do(t, req{method: "GET", path: "/openapi.json", remote: "192.0.2.9:2"})
	if got, want := fmt.Sprint(w.Code, " ", problemOf(t, w).Code), "429 too_many_in_flight"; got != want {
		t.Errorf("third request from the same IP: %s, want %s", got, want)
	}
	if w := f.do(t, req{method: "GET", path: "/openapi.json", remote: "192.0.2.10:1"}); w.Code != 200 {
		t.Errorf("request from another IP: %d, want 200", w.Code)
	}
	close(bs.release)
	wg.Wait()
	if w := f.do(t, req{method: "GET", path: "/openapi.json", remote: "192.0.2.9:3"}); w.Code != 200 {
		t.Errorf("same IP after its requests completed: %d, want 200", w.Code)
	}
}

// TestBadTokensAreRateLimitedPerIP: requests with a missing or invalid
// token count against the client IP's anonymous limit.
func TestBadTokensAreRateLimitedPerIP(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Limits = Limits{Anonymous: ratelimit.Limit{Rate: 2, Period: time.Hour, Burst: 2}}
	})
	for i, token := range []string{"", "not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"} {
		w := f.do(t, req{method: "GET", path: "/api/v1/items", token: token})
		want := 401
		if i == 2 {
			want = 429
		}
		if w.Code != want {
			t.Errorf("request %d (token %q): %d, want %d", i+1, token, w.Code, want)
		}
	}
	// Refused before its body was read: close rather than wait for the body.
	w := f.do(t, req{method: "POST", path: "/api/v1/items", token: "bad", body: `{"name":"x"}`})
	if w.Code != 429 || w.Header().Get("Connection") != "close" {
		t.Errorf("POST with a body past the limit: %d, Connection %q; want 429 and close", w.Code, w.Header().Get("Connection"))
	}
	if w := f.do(t, req{method: "GET", path: "/api/v1/items", remote: "192.0.2.77:1"}); w.Code != 401 {
		t.Errorf("another IP: %d, want 401 (its own budget)", w.Code)
	}
}

// TestLoginLimitedPerIPOverAllUsernames: a spray of usernames meets the
// per-client login limit before any password is hashed.
func TestLoginLimitedPerIPOverAllUsernames(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Limits.LoginIP = ratelimit.Limit{Rate: 3, Period: time.Hour, Burst: 3}
	})
	for i := range 5 {
		w := f.do(t, req{method: "POST", path: "/api/v1/auth/login", body: fmt.Sprintf(`{"username":"spray%d","password":"Passw0rd!"}`, i)})
		want := 401
		if i >= 3 {
			want = 429
		}
		if w.Code != want {
			t.Errorf("attempt %d: %d, want %d", i+1, w.Code, want)
		}
	}
	if got := metric(t, f.tel.Registry, "app_http_rate_limited_total", map[string]string{"route": "/api/v1/auth/login", "scope": "login_ip"}); got != 2 {
		t.Errorf("app_http_rate_limited_total{scope=login_ip} = %v, want 2", got)
	}
	w := f.do(t, req{method: "POST", path: "/api/v1/auth/login", remote: "192.0.2.50:1", body: `{"username":"spray9","password":"Passw0rd!"}`})
	if w.Code != 401 {
		t.Errorf("another client: %d, want 401", w.Code)
	}
}

// TestHashQueueFull: with a client's share of the hasher's queue, or the
// whole queue, taken, signups and logins get a fast 503 instead of waiting.
func TestHashQueueFull(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.HashQueue = 8 }) // 2 per client IP
	f.signup(t, "queued")
	login := func(remote string) req {
		return req{method: "POST", path: "/api/v1/auth/login", remote: remote, body: `{"username":"queued","password":"Passw0rd!"}`}
	}
	signup := req{method: "POST", path: "/api/v1/users", remote: "192.0.2.99:1", body: `{"username":"other","email":"o@example.com","password":"Passw0rd!"}`}
	busy := func(when string, rq req) {
		t.Helper()
		w := f.do(t, rq)
		if got, want := fmt.Sprint(w.Code, " ", problemOf(t, w).Code), "503 overloaded"; got != want || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s from %s: %s (Retry-After %q), want %s", when, rq.path, rq.remote, got, w.Header().Get("Retry-After"), want)
		}
	}
	gate := f.srv.hashGate
	held := []string{"192.0.2.1", "192.0.2.1"} // the first client's share
	for _, ip := range held {
		if !gate.enter(ip) {
			t.Fatal("gate refused a slot in an empty queue")
		}
	}
	busy("with its share taken", login("192.0.2.1:5"))
	if w := f.do(t, login("192.0.2.2:1")); w.Code != 200 {
		t.Errorf("another client with room in the queue: %d, want 200", w.Code)
	}
	for i := range 6 { // the rest of the queue, from other clients
		ip := fmt.Sprintf("198.51.100.%d", i)
		if !gate.enter(ip) {
			t.Fatalf("gate refused slot %d", i+3)
		}
		held = append(held, ip)
	}
	busy("with the queue full", login("192.0.2.3:1"))
	busy("with the queue full", signup)
	for _, ip := range held {
		gate.leave(ip)
	}
	if w := f.do(t, login("192.0.2.1:6")); w.Code != 200 {
		t.Errorf("login with the queue free: %d, want 200", w.Code)
	}
	if len(gate.byIP) != 0 || gate.n != 0 {
		t.Errorf("gate after every request left: n=%d byIP=%v, want empty", gate.n, gate.byIP)
	}
}

// TestSlowBodyTimesOut sends a body one byte at a time, slower than
// MinBodyRate, over a real connection: the answer is a 408 problem and the
// connection is closed. A body sent at once still succeeds.
func TestSlowBodyTimesOut(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts func(*Options)
	}{
		{"below MinBodyRate", func(o *Options) { o.MinBodyRate, o.BodyRateGrace = 100, 100*time.Millisecond }},
		// The rate deadlines replace the server's: ReadTimeout still caps the body.
		{"past ReadTimeout", func(o *Options) { o.MinBodyRate, o.BodyRateGrace, o.ReadTimeout = 1, time.Hour, 300*time.Millisecond }},
	} {
		t.Run(tt.name, func(t *testing.T) { testSlowBody(t, newFixture(t, tt.opts)) })
	}
}

func testSlowBody(t *testing.T, f *fixture) {
	ts := httptest.NewServer(f.h)
	t.Cleanup(ts.Close)

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := `{"username":"slowpoke","email":"slow@example.com","password":"Passw0rd!"}`
	fmt.Fprintf(conn, "POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	go func() {
		for i := range len(body) {
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // 20 B/s
		}
	}()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // hang guard
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	var p Problem
	if err := json.Unmarshal(b, &p); err != nil || resp.StatusCode != 408 || p.Code != "body_timeout" ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("slow body: %d %s (%v), want 408 body_timeout problem+json", resp.StatusCode, b, err)
	}
	if !resp.Close {
		t.Errorf("slow body: connection kept open, want Connection: close")
	}

	r, err := http.Post(ts.URL+"/api/v1/users", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 201 {
		t.Errorf("body sent at once: %d, want 201", r.StatusCode)
	}
}

// TestFramingScan feeds the scanner byte streams split at every position.
func TestFramingScan(t *testing.T) {
	for _, tt := range []struct {
		name   string
		stream string
		want   bool
	}{
		{"content-length only", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", false},
		{"chunked only", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", false},
		{"both", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"both, other case, bare LF", "POST / HTTP/1.1\ntransfer-ENCODING: chunked\nCONTENT-length: 5\n\n0\r\n\r\n", true},
		{"both in a pipelined request", "GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"in different requests", "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"names inside values", "GET / HTTP/1.1\r\nX-A: content-length: 1\r\nX-B: transfer-encoding: chunked\r\n\r\n", false},
		{"long header lines", "GET / HTTP/1.1\r\nX-Very-Long-Header-Name-Here: 1\r\nContent-Length: 0\r\n\r\n", false},
	} {
		for split := range len(tt.stream) + 1 {
			c := &framingConn{lineStart: true}
			c.scan([]byte(tt.stream[:split]))
			c.scan([]byte(tt.stream[split:]))
			if got := c.ambiguous.Load(); got != tt.want {
				t.Errorf("%s, split at %d: ambiguous = %v, want %v", tt.name, split, got, tt.want)
				break
			}
		}
	}
}
