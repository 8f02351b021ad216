package scaleout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/glasshouse-dev/glasshouse/app/postgres/pgtest"
	"github.com/glasshouse-dev/glasshouse/internal/integration"
	"github.com/glasshouse-dev/glasshouse/internal/testenv"
)

// The check's bounds: loopback only, a steady load, every wait a hang guard.
const (
	loadRate     = 25 // iterations per second through nginx
	ledgerPause  = 150 * time.Millisecond
	steadyPhase  = 6 * time.Second   // before the rolling restart
	settlePhase  = 3 * time.Second   // between phases
	alertGuard   = 150 * time.Second // TargetDown has `for: 1m`
	processGuard = 60 * time.Second
	// restartGap stands for a new pod's start-up (scheduling, image,
	// process start): the replica's port refuses connections meanwhile.
	restartGap = time.Second
)

// TestScaleOut proves that three replicas behind nginx behave as one
// service. See the package documentation and compose/README.md ("Scaling
// out") for what it proves and what it does not.
func TestScaleOut(t *testing.T) {
	if os.Getenv("GLASSHOUSE_SCALEOUT") != "1" {
		t.Skip("set GLASSHOUSE_SCALEOUT=1 (make scaleout-check) to run the two-minute scale-out check")
	}
	// Breaks, chosen with SCALEOUT_BREAK, run the check against a
	// deliberately broken setup to show that it fails.
	breaks := map[string]string{
		"drain-delay-0":    "SHUTDOWN_DRAIN_DELAY=0s instead of the manifests' preStop sleep",
		"no-next-upstream": "nginx with proxy_next_upstream off",
		"no-redis":         "replicas without REDIS_URL: in-process limits and no shared cache",
	}
	brk := os.Getenv("SCALEOUT_BREAK")
	if _, ok := breaks[brk]; brk != "" && !ok {
		t.Fatalf("SCALEOUT_BREAK=%q: want one of %v", brk, breaks)
	}
	if brk != "" {
		t.Logf("SCALEOUT_BREAK=%s: %s; the check must fail", brk, breaks[brk])
	}
	nginxBin := binary(t, "nginx", "nginx")
	binary(t, "prometheus", "prometheus") // before the builds: testenv.StartPrometheus runs it
	dbURL, redisURL := os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_REDIS_URL")
	if dbURL == "" || redisURL == "" {
		integration.Skip(t, "TEST_DATABASE_URL and TEST_REDIS_URL must name a PostgreSQL server and a Redis (.ci/run starts both)")
	}

	dir := t.TempDir()
	apiBin := testenv.BuildBinary(t, repoRoot, "./app/cmd/glasshouse-api", dir)
	loadBin := testenv.BuildBinary(t, repoRoot, "./loadtest/cmd/glasshouse-load", dir)
	db := pgtest.NewDatabase(t)
	prefix := redisPrefix(t, redisURL)
	drain, shutdownTimeout := deployment(t)
	if brk == "drain-delay-0" {
		drain = 0
	}
	rate := loadRate
	if v := os.Getenv("SCALEOUT_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1000 {
			t.Fatalf("SCALEOUT_RATE=%q: want iterations per second, 1 to 1000", v)
		}
		rate = n
	}

	// Three replicas sharing the database, Redis and the JWT key, as a
	// Deployment's pods share the Secret.
	plain := &http.Client{Timeout: 15 * time.Second}
	env := []string{
		"APP_ENV=production", "JWT_SECRET=" + randomHex(t, 32),
		"DATABASE_URL=" + db, "REDIS_KEY_PREFIX=" + prefix,
		"SHUTDOWN_DRAIN_DELAY=" + drain.String(), "SHUTDOWN_TIMEOUT=" + shutdownTimeout,
		"LOG_FORMAT=json", "ACCESS_LOG=false", "OTEL_SDK_DISABLED=true",
		"DB_MIN_CONNS=2", "DB_MAX_CONNS=10",
		"RATE_LIMIT_LOGIN=" + loginLimit, "RATE_LIMIT_USER=" + userLimit,
		// Every client here is 127.0.0.1: the load generator logs its
		// users in at setup, more than the per-IP login limit (20 a minute
		// over all usernames) allows one address. The per-IP-and-username
		// limit above is the one this check proves global.
		"RATE_LIMIT_LOGIN_IP=off",
	}
	if brk != "no-redis" {
		// Redis stays up throughout, so its calls get a hang guard instead
		// of the 100 ms default, which a loaded machine can reach: the
		// replica would then decide its limits alone, or skip Redis, for a
		// second (an invalidation lost that way leaves the others a stale
		// entry), and the checks below would fail by chance.
		env = append(env, "REDIS_URL="+testenv.RedisHangGuardURL(t, redisURL), "REDIS_TIMEOUT="+testenv.RedisHangGuard.String())
	}
	var replicas []*replica
	for i := range 3 {
		r := &replica{i: i, addr: testenv.FreeAddr(t), admin: testenv.FreeAddr(t), bin: apiBin, dir: dir}
		r.env = append(slicesClone(env), "ADDR="+r.addr, "ADMIN_ADDR="+r.admin, "DATA_DIR="+filepath.Join(dir, fmt.Sprintf("data-%d", i)))
		replicas = append(replicas, r)
		r.start(t, plain)
	}

	// nginx with the repository's config in front of them.
	ngDir := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(ngDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cert, key, pool := selfSignedCert(t, ngDir)
	httpAddr, httpsAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	mainConf, policy := nginxConfig(t, ngDir, cert, key, replicas, port(httpAddr), port(httpsAddr), brk == "no-next-upstream")
	if out, err := execOut(nginxBin, "-t", "-p", ngDir, "-e", ngDir+"/logs/error.log", "-c", mainConf); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	ng := testenv.Start(t, ngDir, "nginx", nginxBin, []string{"-p", ngDir, "-e", ngDir + "/logs/error.log", "-c", mainConf}, nil)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(ngDir, "logs/glasshouse.error.log"))
			t.Logf("--- nginx error log (tail):\n%s", tailBytes(b, 4<<10))
		}
	})
	base := "https://" + httpsAddr
	client := tlsClient(pool)
	waitOK(t, client, base+"/health/ready", ng, 30*time.Second)

	// Prometheus scraping the three admin ports with the project's rules.
	promDir := filepath.Join(dir, "prometheus")
	if err := os.MkdirAll(promDir, 0o755); err != nil {
		t.Fatal(err)
	}
	prom := &promAPI{testenv.StartPrometheus(t, prometheusConfig(t, promDir, replicas))}
	waitFor(t, "Prometheus to see three replicas up", 30*time.Second, func() bool {
		v, err := prom.scalar(t.Context(), `count(up{job="glasshouse-api"} == 1)`)
		return err == nil && v == 3
	})

	rep := &report{}
	// Shared state across replicas, before any load: limits and cache.
	checkLimits(t, replicas, plain, rep)
	checkCache(t, replicas, plain, rep)

	// Steady load through nginx: the API scenario, and a ledger of creates.
	ctx, stopLedger := context.WithCancel(t.Context())
	led := &ledger{base: base, c: client}
	led.user(t)
	var wg sync.WaitGroup
	wg.Go(func() { led.run(ctx) })
	t.Cleanup(func() { stopLedger(); wg.Wait() })
	samples := filepath.Join(dir, "samples.json")
	load := testenv.Start(t, dir, "glasshouse-load", loadBin, []string{
		"-target", base, "-scenario", "soak", "-rate", strconv.Itoa(rate), "-duration", "5m",
		"-slo", filepath.Join(repoRoot, "alerts/slo.yaml"), "-out", "json=" + samples, "-no-progress",
	}, []string{"SSL_CERT_FILE=" + cert})
	waitFor(t, "the load's first requests", 60*time.Second, func() bool {
		fi, err := os.Stat(samples)
		return err == nil && fi.Size() > 0
	})
	rep.mark("steady")
	time.Sleep(steadyPhase)

	// Rolling restart: SIGTERM each replica in turn, start it again, wait
	// until it is ready, then the next (a Deployment's rolling update).
	rep.mark("rolling restart")
	for _, r := range replicas {
		r.p.Signal(syscall.SIGTERM)
		if err := r.p.Wait(processGuard); err != nil {
			t.Errorf("api-%d after SIGTERM: %v (want a clean exit)", r.i, err)
		}
		time.Sleep(restartGap)
		r.start(t, plain)
	}
	time.Sleep(settlePhase)

	// One replica killed: in-flight requests may fail, nothing acknowledged
	// is lost, nginx stops using it, TargetDown fires.
	victim := replicas[1]
	rep.mark("replica killed")
	killedAt := time.Now()
	victim.p.Signal(syscall.SIGKILL)
	_ = victim.p.Wait(processGuard)
	var firedAt time.Time
	waitFor(t, "TargetDown to fire", alertGuard, func() bool {
		v, err := prom.scalar(t.Context(), fmt.Sprintf(`count(ALERTS{alertname="TargetDown",alertstate="firing",instance=%q})`, victim.admin))
		if err == nil && v >= 1 {
			firedAt = time.Now()
			return true
		}
		return false
	})
	victim.start(t, plain)
	rep.mark("recovered")
	time.Sleep(2 * settlePhase)
	rep.mark("")

	load.Signal(syscall.SIGINT)
	if err := load.Wait(processGuard); err != nil {
		t.Logf("glasshouse-load exited with %v (its thresholds are the SLO's, not this check's)", err)
	}
	stopLedger()
	wg.Wait()

	// Every acknowledged create is in PostgreSQL.
	acked, found := led.verify(t, db)
	rep.acked, rep.found = acked, found

	// Per phase: requests, failures by cause, p99 through nginx.
	rep.phaseStats(t, samples, led)
	rep.nginxKill(t, filepath.Join(ngDir, "logs/glasshouse.access.log"), victim.addr, killedAt, policy)
	rep.alertAfter = firedAt.Sub(killedAt)

	// The RED and runtime dashboards sum and split by instance.
	checkDashboards(t, prom, replicas, rep)

	rep.print(t)
	rep.assert(t, policy)
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

func port(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	p, _ := strconv.Atoi(addr[i+1:])
	return p
}

func execOut(bin string, args ...string) (string, error) {
	var b bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

func tailBytes(b []byte, n int) string {
	if len(b) > n {
		return "...\n" + string(b[len(b)-n:])
	}
	return string(b)
}

// waitFor polls cond every 200ms; guard is a hang guard, not a timing
// assertion.
func waitFor(t *testing.T, what string, guard time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %s for %s", guard, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// apiCall sends a JSON request and returns the status and body; a transport
// error is returned as status 0.
func apiCall(c *http.Client, method, u, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// signup creates a user through base and returns a token for it.
func signup(t *testing.T, c *http.Client, base, name string) string {
	t.Helper()
	pw := "Scale-Out-secret!9a" // a password may not contain the username
	if st, b, err := apiCall(c, "POST", base+"/api/v1/users", "", map[string]string{"username": name, "email": name + "@example.com", "password": pw}); st != http.StatusCreated {
		t.Fatalf("sign up %s: %d %v %s", name, st, err, b)
	}
	st, b, err := apiCall(c, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": name, "password": pw})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("log in %s: %d %v %s", name, st, err, b)
	}
	return tok.AccessToken
}

// ledger creates items through nginx at a steady pace and remembers the ID
// of every acknowledged create, so none can be lost unnoticed.
type ledger struct {
	base  string
	c     *http.Client
	token string

	mu  sync.Mutex
	ids []int64
	res []result
}

type result struct {
	at     time.Time
	status int
	err    string
	dur    time.Duration
}

func (l *ledger) user(t *testing.T) {
	t.Helper()
	l.token = signup(t, l.c, l.base, "ledger_"+randomHex(t, 4))
}

func (l *ledger) run(ctx context.Context) {
	for n := 0; ctx.Err() == nil; n++ {
		start := time.Now()
		st, b, err := apiCall(l.c, "POST", l.base+"/api/v1/items", l.token, map[string]string{"name": fmt.Sprintf("ledger %d", n)})
		r := result{at: time.Now(), status: st, dur: time.Since(start)}
		if err != nil {
			r.err = err.Error()
		}
		var it struct {
			ID int64 `json:"id"`
		}
		l.mu.Lock()
		if st == http.StatusCreated && json.Unmarshal(b, &it) == nil && it.ID > 0 {
			l.ids = append(l.ids, it.ID)
		}
		l.res = append(l.res, r)
		l.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(ledgerPause):
		}
	}
}

// verify counts the acknowledged creates found in PostgreSQL.
func (l *ledger) verify(t *testing.T, db string) (acked, found int) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	l.mu.Lock()
	ids := slicesCloneInt(l.ids)
	l.mu.Unlock()
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM items WHERE id = ANY($1)`, ids).Scan(&found); err != nil {
		t.Fatal(err)
	}
	return len(ids), found
}

func slicesCloneInt(s []int64) []int64 { return append([]int64(nil), s...) }

// promAPI queries Prometheus's HTTP API.
type promAPI struct {
	*testenv.Prometheus
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query evaluates expr at ts (zero: now) and returns the vector (a scalar
// becomes one sample without labels).
func (p *promAPI) query(ctx context.Context, expr string, ts time.Time) ([]sample, error) {
	q := url.Values{"query": {expr}}
	if !ts.IsZero() {
		q.Set("time", strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64))
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.API(ctx, "/api/v1/query", q, &data); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	switch data.ResultType {
	case "vector":
		var v []sample
		err := json.Unmarshal(data.Result, &v)
		return v, err
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		return []sample{{Value: v}}, nil
	}
	return nil, fmt.Errorf("query %s: result type %s", expr, data.ResultType)
}

func (p *promAPI) scalar(ctx context.Context, expr string) (float64, error) {
	v, err := p.query(ctx, expr, time.Time{})
	if err != nil {
		return 0, err
	}
	if len(v) != 1 {
		return 0, errNoData
	}
	return v[0].value(), nil
}

func (s sample) value() float64 {
	f, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
	return f
}
