package scaleout

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// phase is one stretch of the run and what the load saw during it.
type phase struct {
	name       string
	start, end time.Time
	reqs       int
	limited    int            // 429s (expected from limits, not failures)
	fails      map[string]int // by cause: "502 POST /api/v1/items", "network: ..."
	durs       []float64      // milliseconds, through nginx
}

func (p *phase) failed() int {
	n := 0
	for _, v := range p.fails {
		n += v
	}
	return n
}

func (p *phase) p99() float64 {
	if len(p.durs) == 0 {
		return math.NaN()
	}
	slices.Sort(p.durs)
	return p.durs[int(math.Ceil(0.99*float64(len(p.durs))))-1]
}

// report gathers what the check measured; print shows it and assert judges it.
type report struct {
	phases []*phase

	login3, login1          int // attempt that met the first 429
	user3ok, user3lim       int
	user1ok, user1lim       int
	user3took, user1took    time.Duration
	cacheRounds, cacheReads int
	stale                   int
	cacheHits               float64 // shared-cache hits during the cache check
	acked, found            int
	maxFails                int
	killAttempts            int           // requests nginx sent the killed replica until it was back
	downAttempt             int           // attempts after the kill until nginx marked it down
	downAfter               time.Duration // kill -> that attempt
	downAfterReqs           int           // requests nginx completed in that time
	trialsTooSoon           int           // attempts after that less than fail_timeout apart (want 0)
	alertAfter              time.Duration
	dashQueries, dashSums   int
	dashSplit               int
}

// mark ends the current phase and starts name ("" ends the last).
func (r *report) mark(name string) {
	now := time.Now()
	if n := len(r.phases); n > 0 {
		r.phases[n-1].end = now
	}
	if name != "" {
		r.phases = append(r.phases, &phase{name: name, start: now, fails: map[string]int{}})
	}
}

func (r *report) phaseAt(at time.Time) *phase {
	for _, p := range r.phases {
		if !at.Before(p.start) && at.Before(p.end) {
			return p
		}
	}
	return nil
}

// phaseStats sorts the load's samples (k6 JSON lines) and the ledger's
// results into phases.
func (r *report) phaseStats(t *testing.T, samplesPath string, led *ledger) {
	t.Helper()
	f, err := os.Open(samplesPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var pt struct {
			Type   string `json:"type"`
			Metric string `json:"metric"`
			Data   struct {
				Time  time.Time         `json:"time"`
				Value float64           `json:"value"`
				Tags  map[string]string `json:"tags"`
			} `json:"data"`
		}
		if json.Unmarshal(sc.Bytes(), &pt) != nil || pt.Type != "Point" || pt.Metric != "http_req_duration" {
			continue
		}
		p := r.phaseAt(pt.Data.Time)
		if p == nil {
			continue
		}
		tg := pt.Data.Tags
		st, _ := strconv.Atoi(tg["status"])
		p.add(st, tg["error"], tg["method"]+" "+tg["name"], pt.Data.Value)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", samplesPath, err)
	}
	led.mu.Lock()
	defer led.mu.Unlock()
	for _, res := range led.res {
		if p := r.phaseAt(res.at); p != nil {
			p.add(res.status, res.err, "POST /api/v1/items (ledger)", float64(res.dur)/float64(time.Millisecond))
		}
	}
}

func (p *phase) add(status int, errMsg, what string, ms float64) {
	p.reqs++
	p.durs = append(p.durs, ms)
	switch {
	case status == 0:
		if i := strings.LastIndex(errMsg, ": "); i >= 0 {
			errMsg = errMsg[i+2:]
		}
		p.fails["network: "+what+": "+errMsg]++
	case status >= 500:
		p.fails[fmt.Sprintf("%d %s", status, what)]++
	case status == 429:
		p.limited++
	}
}

// nginxKill reads nginx's access log (one JSON line per request, with
// $upstream_addr listing every replica tried) for the attempts nginx made
// at the killed replica after the kill.
func (r *report) nginxKill(t *testing.T, logPath, victim string, killedAt time.Time, pol upstreamPolicy) {
	t.Helper()
	r.maxFails = pol.maxFails
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var back time.Time
	for _, p := range r.phases {
		if p.name == "recovered" {
			back = p.start
		}
	}
	type line struct {
		at       time.Time
		upstream []string
	}
	var lines []line
	for l := range strings.Lines(string(b)) {
		var e struct {
			UpstreamAddr string  `json:"upstream_addr"`
			Msec         float64 `json:"msec"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("nginx access log line is not JSON with upstream_addr and msec: %v\n%s", err, l)
		}
		at := time.UnixMilli(int64(e.Msec * 1000))
		if at.Before(killedAt) || !at.Before(back) {
			continue
		}
		lines = append(lines, line{at, strings.Split(e.UpstreamAddr, ", ")})
	}
	slices.SortStableFunc(lines, func(a, b line) int { return a.at.Compare(b.at) })
	var attempts []time.Time
	var reqsBefore []int // requests nginx completed before each attempt
	for i, l := range lines {
		for _, u := range l.upstream {
			if u == victim {
				attempts = append(attempts, l.at)
				reqsBefore = append(reqsBefore, i+1)
			}
		}
	}
	r.killAttempts = len(attempts)
	// nginx marked the replica down at the first attempt after which it
	// sent nothing for fail_timeout (less a second: log times are request
	// ends). Failures from just before the kill (the rolling restart) count
	// towards max_fails too, so it may take fewer attempts than max_fails.
	// From then on it gets one trial request per fail_timeout.
	slack := pol.failTimeout - time.Second
	r.downAttempt = -1
	for i, a := range attempts {
		if r.downAttempt >= 0 {
			if a.Sub(attempts[i-1]) < slack {
				r.trialsTooSoon++
			}
			continue
		}
		next := back
		if i+1 < len(attempts) {
			next = attempts[i+1]
		}
		if next.Sub(a) >= slack {
			r.downAttempt = i + 1
			r.downAfter = a.Sub(killedAt)
			r.downAfterReqs = reqsBefore[i]
		}
	}
}

func (r *report) print(t *testing.T) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "\nscale-out report (3 replicas behind nginx, PostgreSQL + Redis)\n")
	fmt.Fprintf(&b, "%-16s %8s %8s %6s %10s  %s\n", "phase", "seconds", "requests", "429s", "p99 ms", "failures by cause")
	for _, p := range r.phases {
		causes := "none"
		if len(p.fails) > 0 {
			var cs []string
			for _, k := range slices.Sorted(maps.Keys(p.fails)) {
				cs = append(cs, fmt.Sprintf("%d× %s", p.fails[k], k))
			}
			causes = strings.Join(cs, "; ")
		}
		fmt.Fprintf(&b, "%-16s %8.1f %8d %6d %10.1f  %s\n", p.name, p.end.Sub(p.start).Seconds(), p.reqs, p.limited, p.p99(), causes)
	}
	fmt.Fprintf(&b, "writes acknowledged %d, found in PostgreSQL %d\n", r.acked, r.found)
	fmt.Fprintf(&b, "killed replica: nginx stopped using it after %d failed attempts (max_fails %d), %s and %d requests after the kill; then %d trial requests, %d of them sooner than fail_timeout (want 0)\n",
		r.downAttempt, r.maxFails, r.downAfter.Round(time.Millisecond), r.downAfterReqs, r.killAttempts-max(r.downAttempt, 0), r.trialsTooSoon)
	fmt.Fprintf(&b, "TargetDown firing for the killed replica %s after the kill\n", r.alertAfter.Round(time.Second))
	fmt.Fprintf(&b, "login limit %s: first 429 at attempt %d spread over 3 replicas, %d on one\n", loginLimit, r.login3, r.login1)
	fmt.Fprintf(&b, "user limit %s: %d requests, %d allowed / %d limited over 3 replicas in %s; %d / %d on one in %s\n",
		userLimit, userSent, r.user3ok, r.user3lim, r.user3took.Round(time.Millisecond), r.user1ok, r.user1lim, r.user1took.Round(time.Millisecond))
	fmt.Fprintf(&b, "shared cache: %d rounds, %d reads after an update or delete through another replica, %d stale; %.0f cache hits\n", r.cacheRounds, r.cacheReads, r.stale, r.cacheHits)
	fmt.Fprintf(&b, "dashboards: %d queries with $instance, %d sums equal to their per-replica parts, %d split by instance over all three\n", r.dashQueries, r.dashSums, r.dashSplit)
	t.Log(b.String())
}

// assert judges correctness only; latencies are printed, never asserted.
func (r *report) assert(t *testing.T, pol upstreamPolicy) {
	t.Helper()
	for _, p := range r.phases {
		if p.reqs == 0 {
			t.Errorf("phase %q saw no requests: the load did not run through it", p.name)
		}
		if p.name != "replica killed" && p.failed() > 0 {
			t.Errorf("phase %q: %d failed requests (5xx or network errors), want 0", p.name, p.failed())
		}
	}
	if r.acked == 0 || r.found != r.acked {
		t.Errorf("writes acknowledged %d, found %d: want every acknowledged write in PostgreSQL (and some writes)", r.acked, r.found)
	}
	switch {
	case r.downAttempt < 0:
		t.Errorf("nginx made %d attempts at the killed replica and never left it alone for fail_timeout %s", r.killAttempts, pol.failTimeout)
	case r.downAttempt > pol.maxFails || r.downAfter > pol.failTimeout:
		t.Errorf("nginx stopped using the killed replica after %d attempts and %s, want at most max_fails %d within fail_timeout %s", r.downAttempt, r.downAfter, pol.maxFails, pol.failTimeout)
	case r.trialsTooSoon > 0:
		t.Errorf("nginx sent the killed replica %d requests sooner than fail_timeout after marking it down, want 0", r.trialsTooSoon)
	}
	if r.login1 == 0 || r.login3 != r.login1 {
		t.Errorf("login limit: first 429 at attempt %d over 3 replicas, %d on one; want the same, non-zero", r.login3, r.login1)
	}
	for _, u := range []struct {
		where   string
		ok, lim int
		took    time.Duration
	}{{"3 replicas", r.user3ok, r.user3lim, r.user3took}, {"one replica", r.user1ok, r.user1lim, r.user1took}} {
		// GCRA: at most the burst plus what refilled while the requests ran,
		// give or take a few for Redis's clock against this process's. A
		// limit counted per replica would allow all 400.
		most := userBurst + int(math.Ceil(userRate*u.took.Seconds())) + 10
		if u.lim == 0 || u.ok < userBurst || u.ok > most {
			t.Errorf("user limit over %s: %d allowed, %d limited in %s; want at least the burst %d and at most %d", u.where, u.ok, u.lim, u.took, userBurst, most)
		}
	}
	if r.cacheReads == 0 || r.stale > 0 {
		t.Errorf("shared cache: %d stale of %d reads, want 0 of some", r.stale, r.cacheReads)
	}
	if r.cacheHits == 0 {
		t.Error("shared cache: no cache hits during the check, so it proved nothing about staleness; want reads served from Redis")
	}
	if r.dashSums == 0 || r.dashSplit == 0 {
		t.Errorf("dashboards: %d sums and %d instance splits checked, want some of each", r.dashSums, r.dashSplit)
	}
}
