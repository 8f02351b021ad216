package main

// The TestAttack* tests replay attacks on the running API: one client
// (127.0.0.9) attacks while another (127.0.0.1) uses the service, over real
// HTTP against run(). Each prints what it measured. Under plain go test
// they run at a small scale and assert correctness only (statuses and
// counts); with GLASSHOUSE_ATTACK=1 (make attack) they run at full scale
// and also check the latency bounds the defences promise.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// attackFull reports whether GLASSHOUSE_ATTACK=1 asks for the full-scale
// attacks and their latency bounds.
func attackFull() bool { return os.Getenv("GLASSHOUSE_ATTACK") == "1" }

var (
	attackerIP = net.IPv4(127, 0, 0, 9)
	probeIP    = net.IPv4(127, 0, 0, 1)
)

// dialerFrom dials from ip, so the API sees that client address.
func dialerFrom(ip net.IP) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
}

// clientFrom is an HTTP client whose connections come from ip.
func clientFrom(ip net.IP, conns int, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext:         dialerFrom(ip).DialContext,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
	}}
}

// tally counts statuses (0 for transport errors) from many goroutines.
type tally struct {
	mu sync.Mutex
	n  map[int]int
}

func (c *tally) add(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int]int{}
	}
	c.n[status]++
}

func (c *tally) get(status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[status]
}

func (c *tally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	codes := make([]int, 0, len(c.n))
	for k := range c.n {
		codes = append(codes, k)
	}
	slices.Sort(codes)
	var b strings.Builder
	for _, k := range codes {
		label := fmt.Sprint(k)
		if k == 0 {
			label = "error"
		}
		fmt.Fprintf(&b, " %s:%d", label, c.n[k])
	}
	return strings.TrimSpace(b.String())
}

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = append(l.d, d)
}

// quantile returns the q-quantile (nearest rank) and the maximum.
func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (l *latencies) String() string {
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", len(l.d), l.quantile(0.5).Round(10*time.Microsecond),
		l.quantile(0.99).Round(10*time.Microsecond), l.quantile(1).Round(10*time.Microsecond))
}

// timedGet GETs url with client and returns the status (0 on error) and
// how long it took.
func timedGet(ctx context.Context, client *http.Client, url, token string) (int, time.Duration) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, 0
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(start)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// loginAs signs name up and logs in from the probe address, returning an
// access token.
func loginAs(t *testing.T, base, name string) string {
	t.Helper()
	if r := call(t, "POST", base+"/api/v1/users", "", `{"username":"`+name+`","email":"`+name+`@example.com","password":"Passw0rd!"}`, nil); r.StatusCode != 201 {
		t.Fatalf("signup %s: %d", name, r.StatusCode)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if r := call(t, "POST", base+"/api/v1/auth/login", "", `{"username":"`+name+`","password":"Passw0rd!"}`, &tok); r.StatusCode != 200 {
		t.Fatalf("login %s: %d", name, r.StatusCode)
	}
	return tok.AccessToken
}

// slowBodyAttacker holds one connection from 127.0.0.9 that sends
// POST /api/v1/users with Content-Length: 1000 and then one body byte per
// second. When the API answers or closes the connection, it records the
// status and dials again at its next tick, until ctx ends.
func slowBodyAttacker(ctx context.Context, addr string, statuses *tally, started *atomic.Int64) {
	d := dialerFrom(attackerIP)
	head := "POST /api/v1/users HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	first := true
	for ctx.Err() == nil {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_, err = io.WriteString(conn, head)
		}
		if first {
			started.Add(1)
			first = false
		}
		if err != nil {
			statuses.add(0)
			if conn != nil {
				conn.Close()
			}
		} else {
			answered := make(chan int, 1)
			go func() {
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					answered <- 0
					return
				}
				resp.Body.Close()
				answered <- resp.StatusCode
			}()
		trickle:
			for {
				select {
				case <-ctx.Done():
					conn.Close()
					<-answered
					return
				case status := <-answered:
					statuses.add(status)
					conn.Close()
					break trickle
				case <-tick.C:
					if _, err := conn.Write([]byte{' '}); err != nil {
						conn.Close()
						statuses.add(<-answered)
						break trickle
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// TestAttackSlowBodies: many connections from one IP trickle request
// bodies at one byte per second. They are opened at the anonymous rate
// limit's pace (100/s), so that each passes it. Requests from another IP
// to /openapi.json and to an authenticated item read must keep getting 200
// (not 503 overloaded) throughout.
func TestAttackSlowBodies(t *testing.T) {
	conns, limit, hold := 80, "64", 3*time.Second
	if attackFull() {
		conns, limit, hold = 1200, "1024", 4*time.Second
	}
	const pace = 10 * time.Millisecond // 100 new connections a second
	in := start(t, map[string]string{"CONCURRENCY_LIMIT": limit, "ACCESS_LOG": "false", "LOG_LEVEL": "warn"})
	addr := strings.TrimPrefix(in.base, "http://")
	token := loginAs(t, in.base, "prober")
	var item struct{ ID int64 }
	if r := call(t, "POST", in.base+"/api/v1/items", token, `{"name":"probe"}`, &item); r.StatusCode != 201 {
		t.Fatalf("create item: %d", r.StatusCode)
	}

	flood := time.Duration(conns)*pace + hold
	ctx, cancel := context.WithTimeout(t.Context(), flood+60*time.Second)
	defer cancel()
	var (
		attack  tally
		started atomic.Int64
		wg      sync.WaitGroup
	)
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		tick := time.NewTicker(pace)
		defer tick.Stop()
		for range conns {
			wg.Go(func() { slowBodyAttacker(ctx, addr, &attack, &started) })
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})

	probe := clientFrom(probeIP, 4, 10*time.Second)
	var (
		lat    latencies
		status = map[string]*tally{"/openapi.json": {}, "/api/v1/items/{id}": {}}
	)
	urls := map[string]string{"/openapi.json": in.base + "/openapi.json", "/api/v1/items/{id}": fmt.Sprintf("%s/api/v1/items/%d", in.base, item.ID)}
	for end := time.Now().Add(flood); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for route, url := range urls {
			tok := ""
			if route != "/openapi.json" {
				tok = token
			}
			code, d := timedGet(t.Context(), probe, url, tok)
			status[route].add(code)
			lat.add(d)
		}
	}
	cancel()
	wg.Wait()
	t.Logf("slow bodies: %d connections from %s opened at 100/s, probed for %v (CONCURRENCY_LIMIT=%s)", started.Load(), attackerIP, flood, limit)
	t.Logf("  attacker answers: %s", &attack)
	for route, s := range status {
		t.Logf("  probe %s from %s: %s", route, probeIP, s)
	}
	t.Logf("  probe latency: %s", &lat)
	for route, s := range status {
		if s.get(200) == 0 || s.String() != fmt.Sprintf("200:%d", s.get(200)) {
			t.Errorf("probe %s during the flood: %s, want only 200", route, s)
		}
	}
	if attack.get(http.StatusTooManyRequests) == 0 {
		t.Errorf("the attacker got no 429: %s", &attack)
	}
	if attackFull() {
		if max := lat.quantile(1); max >= time.Second {
			t.Errorf("slowest probe took %v, want under 1s each", max)
		}
	}
}

// TestAttackLoginSpray: many connections from one IP try random usernames
// on POST /api/v1/auth/login. The spray must be refused (429) before it
// costs password hashes, and valid logins from another IP must succeed.
func TestAttackLoginSpray(t *testing.T) {
	conns, spray := 20, 3*time.Second
	if attackFull() {
		conns, spray = 150, 10*time.Second
	}
	in := start(t, map[string]string{"ACCESS_LOG": "false", "LOG_LEVEL": "warn"})
	const tries = 10
	for i := range tries {
		name := fmt.Sprintf("valid%d", i)
		if r := call(t, "POST", in.base+"/api/v1/users", "", `{"username":"`+name+`","email":"`+name+`@example.com","password":"Passw0rd!"}`, nil); r.StatusCode != 201 {
			t.Fatalf("signup %s: %d", name, r.StatusCode)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), spray)
	defer cancel()
	attacker := clientFrom(attackerIP, conns, 30*time.Second)
	var (
		attack tally
		wg     sync.WaitGroup
		n      atomic.Int64
	)
	sprayStart := time.Now()
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				body := fmt.Sprintf(`{"username":"nobody%d","password":"Guess1234!"}`, n.Add(1))
				req, err := http.NewRequestWithContext(ctx, "POST", in.base+"/api/v1/auth/login", strings.NewReader(body))
				if err != nil {
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := attacker.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						attack.add(0)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				attack.add(resp.StatusCode)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	time.Sleep(spray / 5) // the spray is in full swing
	probe := clientFrom(probeIP, 1, 30*time.Second)
	var (
		lat   latencies
		valid tally
	)
	for i := range tries {
		req, err := http.NewRequestWithContext(t.Context(), "POST", in.base+"/api/v1/auth/login",
			strings.NewReader(fmt.Sprintf(`{"username":"valid%d","password":"Passw0rd!"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := probe.Do(req)
		if err != nil {
			valid.add(0)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat.add(time.Since(start))
		valid.add(resp.StatusCode)
	}
	<-ctx.Done()
	wg.Wait()
	elapsed := time.Since(sprayStart)

	t.Logf("login spray: %d connections from %s for %v, %d attempts", conns, attackerIP, spray, n.Load())
	t.Logf("  attacker answers: %s (401 = a password was hashed)", &attack)
	t.Logf("  valid logins from %s: %s; latency %s", probeIP, &valid, &lat)
	if attack.get(http.StatusTooManyRequests) == 0 {
		t.Errorf("the spray got no 429: %s", &attack)
	}
	// Each 401 is a password hash spent on the spray. The per-client login
	// limit (default 20 per minute, bursts of 20) allows at most this many.
	if hashed, most := attack.get(http.StatusUnauthorized), 20+int(elapsed/(3*time.Second))+1; hashed > most {
		t.Errorf("the spray got %d passwords hashed (401s) in %v, want at most %d", hashed, elapsed.Round(time.Millisecond), most)
	}
	if valid.get(200) != tries {
		t.Errorf("valid logins during the spray: %s, want %d × 200", &valid, tries)
	}
	if attackFull() {
		if p50 := lat.quantile(0.5); p50 >= 500*time.Millisecond {
			t.Errorf("valid login p50 = %v during the spray, want under 500ms", p50)
		}
	}
}

// TestAttackAdminCrossSite: what a web page open on the operator's
// machine can send to the admin listener (a cross-site form post, a fetch
// with its Origin, a DNS-rebound host name) is refused, and a catch-all
// fault never reaches /health/live.
func TestAttackAdminCrossSite(t *testing.T) {
	in := start(t, map[string]string{"ACCESS_LOG": "false", "LOG_LEVEL": "warn"})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(in.admin, "http://"))
	fault := `{"errors":[{"route":"*","ratio":1,"status":503}]}`
	var got tally
	for _, a := range []struct {
		name, method, path, host, origin, ctype, body string
	}{
		{"form post", "POST", "/debug/fault", "", "", "text/plain", fault},
		{"fetch with Origin", "PUT", "/debug/fault", "", "http://evil.example", "application/json", fault},
		{"rebound fault", "PUT", "/debug/fault", "evil.example:" + port, "", "application/json", fault},
		{"rebound metrics", "GET", "/metrics", "evil.example:" + port, "", "", ""},
		{"rebound pprof", "GET", "/debug/pprof/cmdline", "evil.example:" + port, "", "", ""},
	} {
		req, err := http.NewRequestWithContext(t.Context(), a.method, in.admin+a.path, strings.NewReader(a.body))
		if err != nil {
			t.Fatal(err)
		}
		if a.host != "" {
			req.Host = a.host
		}
		if a.origin != "" {
			req.Header.Set("Origin", a.origin)
		}
		if a.ctype != "" {
			req.Header.Set("Content-Type", a.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got.add(resp.StatusCode)
		t.Logf("  %s: %s %s -> %d", a.name, a.method, a.path, resp.StatusCode)
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("%s: %d, want 403 or 415", a.name, resp.StatusCode)
		}
	}
	if r := call(t, "GET", in.base+"/openapi.json", "", "", nil); r.StatusCode != 200 {
		t.Errorf("a refused request switched a fault on: /openapi.json = %d", r.StatusCode)
	}
	// The operator's own catch-all fault leaves liveness alone.
	if r := call(t, "PUT", in.admin+"/debug/fault", "", fault, nil); r.StatusCode != 200 {
		t.Fatalf("operator PUT: %d", r.StatusCode)
	}
	live := call(t, "GET", in.base+"/health/live", "", "", nil).StatusCode
	other := call(t, "GET", in.base+"/openapi.json", "", "", nil).StatusCode
	t.Logf("admin cross-site: attacker answers %s; with a * fault: /health/live %d, /openapi.json %d", &got, live, other)
	if live != 200 || other != 503 {
		t.Errorf("with a * fault: /health/live %d (want 200), /openapi.json %d (want 503)", live, other)
	}
}
