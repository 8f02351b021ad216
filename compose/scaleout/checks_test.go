package scaleout

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/dashboards"
)

// The limits the replicas run with (the defaults, set explicitly so the
// check knows them): login 5 per minute with a burst of 5 per client IP and
// username; 100 per second with a burst of 200 per user.
const (
	loginLimit = "5/1m:5"
	userLimit  = "100/1s:200"
	userBurst  = 200
	userRate   = 100.0 // per second
	userSent   = 400   // requests in the per-user burst
)

// checkLimits proves the login and per-user limits are global: requests for
// one username spread over all three replicas meet the 429 where requests
// to one replica do.
func checkLimits(t *testing.T, replicas []*replica, c *http.Client, rep *report) {
	t.Helper()
	first429 := func(name string, to func(i int) *replica) int {
		for i := range 12 {
			st, b, err := apiCall(c, "POST", "http://"+to(i).addr+"/api/v1/auth/login", "", map[string]string{"username": name, "password": "wrong-password-1A!"})
			switch st {
			case http.StatusTooManyRequests:
				return i + 1
			case http.StatusUnauthorized:
			default:
				t.Errorf("login %s attempt %d: %d %v %s, want 401 or 429", name, i+1, st, err, b)
			}
		}
		return 0
	}
	spread := func(i int) *replica { return replicas[i%len(replicas)] }
	one := func(int) *replica { return replicas[0] }
	// Each user logs in once at sign-up: both start with one attempt used.
	n3, n1 := "limit3_"+randomHex(t, 4), "limit1_"+randomHex(t, 4)
	tok3 := signup(t, c, "http://"+replicas[0].addr, n3)
	tok1 := signup(t, c, "http://"+replicas[0].addr, n1)
	rep.login3 = first429(n3, spread)
	rep.login1 = first429(n1, one)

	burst := func(tok string, to func(i int) *replica) (ok, limited int, took time.Duration) {
		var okN, limN atomic.Int64
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 16 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= userSent {
						return
					}
					st, _, _ := apiCall(c, "GET", "http://"+to(i).addr+"/api/v1/users/me", tok, nil)
					switch st {
					case http.StatusOK:
						okN.Add(1)
					case http.StatusTooManyRequests:
						limN.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return int(okN.Load()), int(limN.Load()), time.Since(start)
	}
	rep.user3ok, rep.user3lim, rep.user3took = burst(tok3, spread)
	rep.user1ok, rep.user1lim, rep.user1took = burst(tok1, one)
}

// checkCache proves no stale read: an item updated or deleted through one
// replica, read through the others (which have just read and cached it).
func checkCache(t *testing.T, replicas []*replica, c *http.Client, rep *report) {
	t.Helper()
	hitsBefore := cacheHits(t, c, replicas)
	defer func() { rep.cacheHits = cacheHits(t, c, replicas) - hitsBefore }()
	tok := signup(t, c, "http://"+replicas[0].addr, "cache_"+randomHex(t, 4))
	at := func(r *replica, p string) string { return "http://" + r.addr + "/api/v1/items" + p }
	type item struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	get := func(r *replica, id int64) (int, item) {
		st, b, _ := apiCall(c, "GET", at(r, fmt.Sprintf("/%d", id)), tok, nil)
		var it item
		_ = json.Unmarshal(b, &it)
		return st, it
	}
	for round := range 12 {
		w := replicas[round%3]
		others := []*replica{replicas[(round+1)%3], replicas[(round+2)%3]}
		st, b, err := apiCall(c, "POST", at(w, ""), tok, map[string]string{"name": fmt.Sprintf("cache %d v1", round)})
		var it item
		if st != http.StatusCreated || json.Unmarshal(b, &it) != nil {
			t.Fatalf("create through api-%d: %d %v %s", w.i, st, err, b)
		}
		for _, o := range others { // read twice: the second read is the cached one
			get(o, it.ID)
			get(o, it.ID)
		}
		want := fmt.Sprintf("cache %d v2", round)
		if st, b, err := apiCall(c, "PUT", at(w, fmt.Sprintf("/%d", it.ID)), tok, map[string]string{"name": want}); st != http.StatusOK {
			t.Fatalf("update through api-%d: %d %v %s", w.i, st, err, b)
		}
		for _, o := range others {
			rep.cacheReads++
			if st, got := get(o, it.ID); st != http.StatusOK || got.Name != want {
				rep.stale++
				t.Errorf("round %d: item %d updated through api-%d, read through api-%d: %d %q, want 200 %q", round, it.ID, w.i, o.i, st, got.Name, want)
			}
		}
		if st, b, err := apiCall(c, "DELETE", at(w, fmt.Sprintf("/%d", it.ID)), tok, nil); st != http.StatusNoContent {
			t.Fatalf("delete through api-%d: %d %v %s", w.i, st, err, b)
		}
		for _, o := range others {
			rep.cacheReads++
			if st, got := get(o, it.ID); st != http.StatusNotFound {
				rep.stale++
				t.Errorf("round %d: item %d deleted through api-%d, read through api-%d: %d %q, want 404", round, it.ID, w.i, o.i, st, got.Name)
			}
		}
		rep.cacheRounds++
	}
}

// cacheHits sums app_cache_requests_total{result="hit"} over the replicas'
// /metrics: the stale-read check means something only if reads were served
// from the shared cache.
func cacheHits(t *testing.T, c *http.Client, replicas []*replica) float64 {
	t.Helper()
	var sum float64
	for _, r := range replicas {
		resp, err := c.Get("http://" + r.admin + "/metrics")
		if err != nil {
			t.Fatalf("api-%d /metrics: %v", r.i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("api-%d /metrics: %v", r.i, err)
		}
		for l := range strings.Lines(string(b)) {
			if strings.HasPrefix(l, "app_cache_requests_total{") && strings.Contains(l, `result="hit"`) {
				f := strings.Fields(l)
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				sum += v
			}
		}
	}
	return sum
}

// checkDashboards evaluates the RED and runtime dashboards' queries, as
// committed in dashboards/json, for all instances and for each replica at
// one instant: a top-level sum over all instances must equal the sum of the
// per-replica results, and a query split by instance must name all three.
func checkDashboards(t *testing.T, prom *promAPI, replicas []*replica, rep *report) {
	t.Helper()
	var exprs []string
	for _, f := range []string{"glasshouse-red.json", "glasshouse-runtime.json"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "dashboards/json", f))
		if err != nil {
			t.Fatal(err)
		}
		var d any
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		walkExprs(d, &exprs)
	}
	slices.Sort(exprs)
	exprs = slices.Compact(exprs)
	ts := time.Now().Add(-2 * time.Second)
	vars := func(instance string) map[string]string {
		return map[string]string{"job": "glasshouse-api", "instance": instance, "route": ".*", "__rate_interval": "20s", "__interval": "5s", "__range": "5m"}
	}
	instances := map[string]bool{}
	for _, r := range replicas {
		instances[r.admin] = true
	}
	for _, e := range exprs {
		if !strings.Contains(e, "$instance") {
			continue
		}
		rep.dashQueries++
		all, err := dashboards.Expand(e, vars(".*"))
		if err != nil {
			t.Errorf("dashboard query: %v", err)
			continue
		}
		whole, err := prom.query(t.Context(), all, ts)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if strings.Contains(e, "by (instance") && len(whole) > 0 {
			got := map[string]bool{}
			for _, s := range whole {
				got[s.Metric["instance"]] = true
			}
			if !maps.Equal(got, instances) {
				t.Errorf("%s split by instance names %v, want the three replicas %v", all, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(instances)))
			}
			rep.dashSplit++
		}
		if !topLevelSum(e) {
			continue
		}
		parts := map[string]float64{}
		for _, r := range replicas {
			one, _ := dashboards.Expand(e, vars(r.admin))
			vs, err := prom.query(t.Context(), one, ts)
			if err != nil {
				t.Errorf("%v", err)
				continue
			}
			for _, s := range vs {
				parts[labelKey(s.Metric)] += s.value()
			}
		}
		for _, s := range whole {
			w, p := s.value(), parts[labelKey(s.Metric)]
			if math.Abs(w-p) > 1e-6*math.Max(1, math.Abs(w)) {
				t.Errorf("%s%v = %g over all instances, but the three replicas sum to %g", all, s.Metric, w, p)
			}
			rep.dashSums++
		}
	}
}

func walkExprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		if e, ok := v["expr"].(string); ok {
			*out = append(*out, e)
		}
		for _, c := range v {
			walkExprs(c, out)
		}
	case []any:
		for _, c := range v {
			walkExprs(c, out)
		}
	}
}

// topLevelSum reports whether expr is one sum aggregation around
// everything (`sum(...)` or `sum by (...) (...)`), whose value over all
// instances is the sum of its per-instance values.
func topLevelSum(expr string) bool {
	rest, ok := strings.CutPrefix(expr, "sum")
	if !ok {
		return false
	}
	rest = strings.TrimSpace(rest)
	if r, ok := strings.CutPrefix(rest, "by"); ok {
		r = strings.TrimSpace(r)
		i := strings.IndexByte(r, ')')
		if !strings.HasPrefix(r, "(") || i < 0 {
			return false
		}
		rest = strings.TrimSpace(r[i+1:])
	}
	if !strings.HasPrefix(rest, "(") {
		return false
	}
	depth := 0
	for i, c := range rest {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i == len(rest)-1
			}
		}
	}
	return false
}

func labelKey(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, m[k])
	}
	return b.String()
}

func TestTopLevelSum(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{`sum(rate(x[1m]))`, true},
		{`sum by (code) (rate(x[1m]))`, true},
		{`sum(rate(x[1m])) / sum(rate(y[1m]))`, false},
		{`(sum(x) or 0 * sum(y)) / sum(y)`, false},
		{`histogram_quantile(0.99, sum by (le) (rate(x[1m])))`, false},
		{`max by (instance) (x)`, false},
	} {
		if got := topLevelSum(tc.expr); got != tc.want {
			t.Errorf("topLevelSum(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}
