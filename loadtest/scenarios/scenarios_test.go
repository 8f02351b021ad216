package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/alerts/slo"
	"github.com/glasshouse-dev/glasshouse/internal/freeport"
	"github.com/glasshouse-dev/glasshouse/loadtest"
)

func spec(t *testing.T) slo.Spec {
	t.Helper()
	s, err := slo.Load("../../alerts/slo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestThresholdsAreDerivedFromTheSLOSpec(t *testing.T) {
	s := spec(t)
	th, metrics, expected, observe := Thresholds(s, false)
	var avail, lat slo.SLO
	for _, o := range s.SLOs {
		switch o.SLI.Type {
		case slo.Availability:
			avail = o
		case slo.Latency:
			lat = o
		}
	}
	// The committed spec: 99.9% availability, 99% under 250 ms.
	wantFailed := "rate<" + num(1-avail.Objective)
	wantGood := "rate>=" + num(lat.Objective)
	if got := th["http_req_failed"]; len(got) != 1 || got[0].Expr != wantFailed {
		t.Errorf("http_req_failed thresholds = %v, want %s", got, wantFailed)
	}
	if got := th["slo_latency_good"]; len(got) != 1 || got[0].Expr != wantGood {
		t.Errorf("slo_latency_good thresholds = %v, want %s", got, wantGood)
	}
	if wantFailed != "rate<0.001" || wantGood != "rate>=0.99" {
		t.Errorf("derived %q and %q from the committed spec; want rate<0.001 and rate>=0.99", wantFailed, wantGood)
	}
	if len(metrics) != 1 || metrics[0] != loadtest.NewRate("slo_latency_good") {
		t.Errorf("metrics = %v, want the Rate slo_latency_good", metrics)
	}
	for status, want := range map[int]bool{200: true, 201: true, 404: true, 429: true, 499: true, 500: false, 503: false, 0: false} {
		if expected(status) != want {
			t.Errorf("status %d expected = %v, want %v (only 5xx fail the availability SLO)", status, expected(status), want)
		}
	}
	if observe == nil {
		t.Fatal("no latency observer")
	}
	abort, _, _, _ := Thresholds(s, true)
	for k, ths := range abort {
		for _, x := range ths {
			if !x.AbortOnFail || x.DelayAbortEval <= 0 {
				t.Errorf("%s %s: breakpoint thresholds must abort on fail after a delay", k, x.Expr)
			}
		}
	}
}

// TestLatencyObserver feeds the observer responses of known durations
// (below and above the 250 ms threshold, a 5xx and a network error, which
// are not counted) inside a real run, plus one real 5xx from a loopback
// server: the latency SLI counts 3 good of 4, and both SLO thresholds
// fail. No assertion depends on how fast this machine answers.
func TestLatencyObserver(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/err", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	srv := newServer(t, mux)
	th, metrics, expected, observe := Thresholds(spec(t), false)
	responses := []*loadtest.Response{
		{Status: 200, Timings: loadtest.Timings{Duration: time.Millisecond}},
		{Status: 201, Timings: loadtest.Timings{Duration: 100 * time.Millisecond}},
		{Status: 404, Timings: loadtest.Timings{Duration: 249 * time.Millisecond}},
		{Status: 200, Timings: loadtest.Timings{Duration: 300 * time.Millisecond}},
		{Status: 503, Timings: loadtest.Timings{Duration: time.Millisecond}},
		{Err: errors.New("connection refused"), Timings: loadtest.Timings{Duration: time.Millisecond}},
	}
	res, err := loadtest.Run(t.Context(), loadtest.Test{
		Metrics: metrics, Thresholds: th,
		Options: loadtest.Options{ResponseCallback: expected, OnResponse: observe},
		Scenarios: []loadtest.Scenario{{Name: "s", Executor: loadtest.PerVUIterations{VUs: 1, Iterations: 1},
			Exec: func(ctx context.Context, vu *loadtest.VU) error {
				for _, r := range responses {
					observe(vu, r)
				}
				vu.Get(ctx, srv+"/err", nil) // observed by OnResponse: a 5xx, not counted
				return nil
			}}},
	}, loadtest.RunOptions{})
	if loadtest.ExitCode(err) != loadtest.ExitThresholdsFailed {
		t.Fatalf("err = %v, want both SLO thresholds to fail", err)
	}
	a, _ := res.Aggregate("slo_latency_good")
	if a.Count != 4 || a.Passes != 3 {
		t.Errorf("slo_latency_good = %d good of %d, want 3 of 4 (5xx and errors are not counted)", a.Passes, a.Count)
	}
	if got := res.FailedThresholds(); !slices.Equal(got, []string{"http_req_failed: rate<0.001", "slo_latency_good: rate>=0.99"}) {
		t.Errorf("failed = %v", got)
	}
}

func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestBuildEveryScenario(t *testing.T) {
	for _, name := range Names() {
		test, err := Build(name, Config{Target: "http://127.0.0.1:1", SLO: spec(t)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := loadtest.New(test, loadtest.RunOptions{}); err != nil {
			t.Errorf("%s does not validate: %v", name, err)
		}
		if len(test.Thresholds["http_req_failed"]) == 0 || len(test.Thresholds["slo_latency_good"]) == 0 {
			t.Errorf("%s lacks the SLO thresholds: %v", name, test.Thresholds)
		}
	}
	_, err := Build("nope", Config{Target: "ftp://x"})
	for _, want := range []string{`unknown scenario "nope"`, `target "ftp://x"`, "no SLOs"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Build error %v does not mention %q", err, want)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return freeport.Addr(t)
}

// startAPI builds and starts the real API binary on loopback with a fresh
// SQLite database, and waits until it is ready.
func startAPI(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the API: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "glasshouse-api")
	build := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, "github.com/glasshouse-dev/glasshouse/app/cmd/glasshouse-api")
	if out, err := build.CombinedOutput(); err != nil {
		// The API exists: a build failure must fail the CI smoke test, not hide it.
		t.Fatalf("cannot build the API (app/cmd/glasshouse-api): %v\n%s", err, out)
	}
	addr, admin := freeAddr(t), freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ADDR="+addr, "ADMIN_ADDR="+admin, "DATA_DIR="+filepath.Join(dir, "data"),
		"LOG_FORMAT=json", "ACCESS_LOG=false", "APP_ENV=development", "DATABASE_URL=", "REDIS_URL=")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("API logs:\n%s", logs.String())
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(url + "/health/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("API not ready after 30s (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSmokeAgainstTheAPI starts the real API and runs the smoke scenario
// for a few seconds. It asserts correctness only: the run exits 0, every
// check passes, no request fails and the summary shows the workload. The
// latency SLO is not asserted here: on a shared CI machine one request
// slowed by a parallel compile would fail it (a few dozen requests cannot
// judge a 99% objective); `make slo-gate` judges it alone, over 1,000+
// requests.
func TestSmokeAgainstTheAPI(t *testing.T) {
	target := startAPI(t)
	test, err := Build("smoke", Config{Target: target, SLO: spec(t), Duration: 3 * time.Second, VUs: 2, Users: 2})
	if err != nil {
		t.Fatal(err)
	}
	for sel := range test.Thresholds {
		if strings.HasPrefix(sel, "slo_") { // the latency SLIs
			delete(test.Thresholds, sel)
		}
	}
	var log bytes.Buffer
	res, err := loadtest.Run(t.Context(), test, loadtest.RunOptions{Log: &log})
	var summary bytes.Buffer
	if res != nil {
		res.WriteSummary(&summary)
	}
	if code := loadtest.ExitCode(err); code != 0 {
		t.Fatalf("smoke exit code %d: %v\n%s\n%s", code, err, log.String(), summary.String())
	}
	reqs, _ := res.Value("http_reqs{scenario:smoke}", "count")
	checks, _ := res.Aggregate("checks")
	if reqs < 10 || checks.Count < 10 || checks.Passes != checks.Count {
		t.Errorf("smoke sent %v requests with %d/%d checks passing; want a real workload, all passing\n%s", reqs, checks.Passes, checks.Count, summary.String())
	}
	if failed, _ := res.Aggregate("http_req_failed"); failed.Count == 0 || failed.Passes != 0 {
		t.Errorf("http_req_failed = %d of %d, want 0 of at least one\n%s", failed.Passes, failed.Count, summary.String())
	}
	// Smoke VUs walk sweepOrder, create then get first, so with ten requests
	// sent both routes have been met; no weighted draw decides it.
	for _, name := range []string{"/api/v1/items", "/api/v1/items/{id}"} {
		if n, _ := res.Value(fmt.Sprintf("http_reqs{name:%s}", name), "count"); n == 0 {
			t.Errorf("no requests named %s\n%s", name, summary.String())
		}
	}
	for _, want := range []string{"█ TOTAL RESULTS", "checks_succeeded", "http_req_failed", "smoke (constant-vus"} {
		if !strings.Contains(summary.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, summary.String())
		}
	}
	t.Logf("smoke summary:\n%s", summary.String())

	// Bulk create is fifth in the sweep, which a slow machine may not reach
	// in 3s: run it on its own here.
	a := &api{target: target, runID: "bulk" + fmt.Sprint(time.Now().UnixNano()), users: 1}
	res, err = loadtest.Run(t.Context(), loadtest.Test{
		Setup: a.setup,
		Scenarios: []loadtest.Scenario{{Name: "bulk", Executor: loadtest.PerVUIterations{VUs: 2, Iterations: 2},
			Exec: func(ctx context.Context, vu *loadtest.VU) error {
				return a.bulkCreate(ctx, vu, vu.Data().(*pool).users[0], &vuState{})
			}}},
	}, loadtest.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := res.Aggregate("checks{check:bulk create: 207 with every item created}"); c.Count != 4 || c.Passes != 4 {
		t.Errorf("bulk create checks: %d of %d passed, want 4 of 4", c.Passes, c.Count)
	}
	if n, _ := res.Value("http_reqs{name:/api/v1/items/bulk}", "count"); n != 4 {
		t.Errorf("%v requests named /api/v1/items/bulk, want 4", n)
	}
}

// TestExpiredTokenIsRefreshedOnce: when every request of a shared user gets
// 401 for an expired token, the VUs log the user in again once, not once
// each, and retry with the new token.
func TestExpiredTokenIsRefreshedOnce(t *testing.T) {
	var mu sync.Mutex
	logins, token := 0, "t0"
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/users", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		logins++
		token = fmt.Sprintf("t%d", logins)
		tok := token
		mu.Unlock()
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":60}`, tok)
	})
	mux.HandleFunc("GET /api/v1/users/me", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cur := token
		mu.Unlock()
		// The first token expires at once; later ones are valid.
		if r.Header.Get("Authorization") != "Bearer "+cur || cur == "t1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"username":"u"}`)
	})
	target := newServer(t, mux)
	a := &api{target: target, runID: "x", users: 1}
	res, err := loadtest.Run(t.Context(), loadtest.Test{
		Setup: a.setup,
		Scenarios: []loadtest.Scenario{{Name: "s", Executor: loadtest.PerVUIterations{VUs: 4, Iterations: 1},
			Exec: func(ctx context.Context, vu *loadtest.VU) error {
				p := vu.Data().(*pool)
				r := a.do(ctx, vu, p.users[0], http.MethodGet, "/api/v1/users/me", "/api/v1/users/me", nil)
				vu.Check("me after refresh", r.Status == http.StatusOK)
				return nil
			}}},
	}, loadtest.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if logins != 2 {
		t.Errorf("%d logins, want 2 (setup + one refresh shared by 4 VUs)", logins)
	}
	if c, _ := res.Aggregate("checks{check:me after refresh}"); c.Passes != 4 {
		t.Errorf("%d of %d VUs got through after the refresh", c.Passes, c.Count)
	}
}

// TestSmokeSweepsEveryAction: a smoke VU takes every action in turn, so a
// short run exercises every route; the other scenarios draw from the mix.
func TestSmokeSweepsEveryAction(t *testing.T) {
	a := &api{sweep: true}
	st := &vuState{}
	seen := map[action]int{}
	var got []action
	for range 2 * len(sweepOrder) {
		act := a.next(nil, st)
		seen[act]++
		got = append(got, act)
	}
	if got[0] != actCreate || got[1] != actGet {
		t.Errorf("sweep starts %v, want create then get", got[:2])
	}
	for act := actCreate; act <= actDelete; act++ {
		if seen[act] != 2 {
			t.Errorf("action %d taken %d times in two sweeps, want 2 (sequence %v)", act, seen[act], got)
		}
	}
}
