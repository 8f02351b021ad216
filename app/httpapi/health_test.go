package httpapi

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

func TestHealth(t *testing.T) {
	f := newFixture(t)
	before := time.Now().Truncate(time.Second) // the timestamp may be rounded
	w := f.do(t, req{method: "GET", path: "/health"})
	after := time.Now()
	h := decodeJSON[healthResponse](t, w)
	if w.Code != 200 || h.Status != "healthy" || h.Version != "v1.2.3-test" || h.Timestamp.Before(before) || h.Timestamp.After(after) {
		t.Errorf("/health: %d %+v, want healthy, v1.2.3-test and a timestamp taken during the request (%v..%v)", w.Code, h, before, after)
	}
	if w := f.do(t, req{method: "GET", path: "/health/live"}); w.Code != 200 || w.Body.String() != `{"status":"alive"}`+"\n" {
		t.Errorf("/health/live: %d %s, want 200 {\"status\":\"alive\"}", w.Code, w.Body)
	}
	w = f.do(t, req{method: "GET", path: "/health/ready"})
	ready := decodeJSON[map[string]any](t, w)
	if w.Code != 200 || ready["status"] != "ready" || ready["checks"].(map[string]any)["database"] != "healthy" {
		t.Errorf("/health/ready: %d %s", w.Code, w.Body)
	}
	if w := f.do(t, req{method: "HEAD", path: "/health/live"}); w.Code != 200 {
		t.Errorf("HEAD /health/live: %d", w.Code)
	}
}

func TestReadyFailsNamingTheCheck(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	f := newFixture(t, func(o *Options) {
		o.SystemDetails = true
		o.CheckTimeout = time.Second // the stuck check waits it out; the real database check needs far less
		o.Checks = append(o.Checks,
			app.Check{Name: "broken", Check: func(context.Context) error { return errors.New("dial tcp 10.1.2.3:5432: refused") }},
			app.Check{Name: "cache", Optional: true, Check: func(context.Context) error { return errors.New("redis down") }},
			app.Check{Name: "stuck", Check: func(context.Context) error { <-block; return nil }}, // ignores its deadline
			app.Check{Name: "panicky", Optional: true, Check: func(context.Context) error { panic("check bug") }},
		)
	})
	start := time.Now()
	w := f.do(t, req{method: "GET", path: "/health/ready"})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("readiness took %v with a stuck check; the timeout did not apply", elapsed)
	}
	p := problemOf(t, w)
	if w.Code != 503 || p.Code != "not_ready" || p.Detail != "check failed: broken, stuck" {
		t.Errorf("/health/ready: %d %+v; want 503 naming broken and stuck", w.Code, p)
	}
	want := map[string]string{"database": "healthy", "broken": "unhealthy: unavailable", "cache": "unhealthy: unavailable",
		"stuck": "unhealthy: timeout", "panicky": "unhealthy: unavailable"}
	for k, v := range want {
		if p.Checks[k] != v {
			t.Errorf("checks[%s] = %q, want %q (all: %v)", k, p.Checks[k], v, p.Checks)
		}
	}
	if containsAny(w.Body.String(), "10.1.2.3", "refused", "redis down") {
		t.Errorf("check errors leaked to the public port: %s", w.Body)
	}

	w = f.do(t, req{method: "GET", path: "/health/detailed"})
	d := decodeJSON[detailedResponse](t, w)
	if w.Code != 200 || d.Status != "unhealthy" || len(d.Dependencies) != 5 {
		t.Fatalf("/health/detailed: %d %+v", w.Code, d)
	}
	for k, v := range want {
		if d.Checks[k] != v {
			t.Errorf("/health/detailed checks.%s = %v, want %q", k, d.Checks[k], v)
		}
	}
	byName := map[string]checkResult{}
	for _, c := range d.Dependencies {
		byName[c.Name] = c
	}
	if c := byName["stuck"]; c.Error != "timeout" || c.LatencyMS < 250 {
		t.Errorf("stuck check = %+v; want error timeout after about 300 ms", c)
	}
	if c := byName["cache"]; c.Status != "degraded" || !c.Optional {
		t.Errorf("cache check = %+v", c)
	}
	if d.System == nil || d.System.Goroutines == 0 || d.System.MemoryUsedBytes == 0 || d.System.MemoryAvailBytes == 0 || d.System.ProcessRSSBytes == 0 {
		t.Errorf("system stats missing: %+v", d.System)
	}
	// CPU use and a fast check's latency may be 0, but they must be reported.
	raw := decodeJSON[struct {
		System       map[string]any   `json:"system"`
		Checks       map[string]any   `json:"checks"`
		Dependencies []map[string]any `json:"dependencies"`
	}](t, w)
	if _, ok := raw.System["cpu_percent"].(float64); !ok {
		t.Errorf("/health/detailed has no system.cpu_percent: %s", w.Body)
	}
	for _, name := range []string{"memory", "cpu"} {
		c, _ := raw.Checks[name].(map[string]any)
		if _, ok := c["usage_percent"].(float64); !ok || (c["status"] != "healthy" && c["status"] != "warning") {
			t.Errorf("/health/detailed checks.%s = %v, want status and usage_percent", name, raw.Checks[name])
		}
	}
	for _, c := range raw.Dependencies {
		if _, ok := c["latency_ms"].(float64); !ok {
			t.Errorf("check %v has no latency_ms", c)
		}
	}
}

func TestDetailedDegradedWhenOnlyOptionalFails(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Checks = append(o.Checks, app.Check{Name: "redis", Optional: true, Check: func(context.Context) error { return app.ErrUnavailable }})
	})
	if w := f.do(t, req{method: "GET", path: "/health/ready"}); w.Code != 200 {
		t.Errorf("ready with only an optional check failing: %d, want 200", w.Code)
	}
	w := f.do(t, req{method: "GET", path: "/health/detailed"})
	if d := decodeJSON[detailedResponse](t, w); d.Status != "degraded" {
		t.Errorf("status %q, want degraded", d.Status)
	}
}

func TestReadyDuringShutdown(t *testing.T) {
	f := newFixture(t)
	f.draining.Store(true)
	w := f.do(t, req{method: "GET", path: "/health/ready"})
	if w.Code != 503 || problemOf(t, w).Code != "shutting_down" {
		t.Errorf("ready while draining: %d %s", w.Code, w.Body)
	}
	if w := f.do(t, req{method: "GET", path: "/health/live"}); w.Code != 200 {
		t.Errorf("live while draining: %d, want 200 (draining is not dead)", w.Code)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestDetailedShowsPartialSystemStats: when some system readings fail, the
// others are still shown, flagged as partial.
func TestDetailedShowsPartialSystemStats(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.SystemDetails = true })
	f.srv.systemStats = func(context.Context) (telemetry.SystemStats, error) {
		return telemetry.SystemStats{CPUPercent: 12.5, MemoryUsedBytes: 1 << 30, Goroutines: 7}, errors.New("load average: not implemented")
	}
	w := f.do(t, req{method: "GET", path: "/health/detailed"})
	d := decodeJSON[detailedResponse](t, w)
	if w.Code != 200 || d.System == nil || d.System.CPUPercent != 12.5 || d.System.MemoryUsedBytes != 1<<30 || !d.SystemPartial {
		t.Errorf("/health/detailed with a failed reading: %d %s; want the other readings, system_partial", w.Code, w.Body)
	}
	if d.Status != "healthy" {
		t.Errorf("status %q: a failed system reading is not a failed dependency", d.Status)
	}
}

// TestDetailedHidesSystemByDefault: the public port does not describe the
// host unless SystemDetails is set.
func TestDetailedHidesSystemByDefault(t *testing.T) {
	f := newFixture(t)
	w := f.do(t, req{method: "GET", path: "/health/detailed"})
	if w.Code != 200 || containsAny(w.Body.String(), `"system"`, `"memory"`, `"cpu"`) {
		t.Errorf("/health/detailed without SystemDetails: %d %s; want no system section", w.Code, w.Body)
	}
}

// TestReadyRunsOneCheckAtATime: many concurrent probes share one run of
// the checks, and a result is reused for ReadyCacheTTL.
func TestReadyRunsOneCheckAtATime(t *testing.T) {
	var runs, inFlight, maxInFlight atomic.Int64
	release := make(chan struct{})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	f := newFixture(t, func(o *Options) {
		o.Now = func() time.Time { return *clock.Load() }
		o.ReadyCacheTTL = 5 * time.Second
		o.Checks = []app.Check{{Name: "slow", Check: func(ctx context.Context) error {
			runs.Add(1)
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				m := maxInFlight.Load()
				if n <= m || maxInFlight.CompareAndSwap(m, n) {
					break
				}
			}
			<-release
			return nil
		}}}
	})
	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := range codes {
		wg.Go(func() { codes[i] = f.do(t, req{method: "GET", path: "/health/ready"}).Code })
	}
	// Let the probes pile up on the one run, then finish it.
	for deadline := time.Now().Add(30 * time.Second); runs.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("probe %d: %d, want 200", i, c)
		}
	}
	if got := maxInFlight.Load(); got != 1 {
		t.Errorf("checks in flight at once = %d, want 1", got)
	}
	before := runs.Load()
	f.do(t, req{method: "GET", path: "/health/ready"})
	if got := runs.Load(); got != before {
		t.Errorf("a probe within ReadyCacheTTL ran the checks again (%d runs, want %d)", got, before)
	}
	later := now.Add(6 * time.Second)
	clock.Store(&later)
	f.do(t, req{method: "GET", path: "/health/ready"})
	if got := runs.Load(); got != before+1 {
		t.Errorf("a probe after ReadyCacheTTL: %d runs, want %d", got, before+1)
	}
}

// TestDetailedResourceWarnings: memory at 90% and CPU at 80% or more are
// "warning", below is "healthy"; a warning does not change the overall
// status, which is the dependencies'.
func TestDetailedResourceWarnings(t *testing.T) {
	const gib = 1 << 30
	for _, tt := range []struct {
		name           string
		stats          telemetry.SystemStats
		memory, cpu    string
		memPct, cpuPct float64
	}{
		{"idle", telemetry.SystemStats{CPUPercent: 12.34, MemoryUsedBytes: 4 * gib, MemoryAvailBytes: 12 * gib}, "healthy", "healthy", 25, 12.3},
		{"just below", telemetry.SystemStats{CPUPercent: 79.9, MemoryUsedBytes: 899, MemoryAvailBytes: 101}, "healthy", "healthy", 89.9, 79.9},
		{"at the thresholds", telemetry.SystemStats{CPUPercent: 80, MemoryUsedBytes: 9 * gib, MemoryAvailBytes: 1 * gib}, "warning", "warning", 90, 80},
		{"saturated", telemetry.SystemStats{CPUPercent: 100, MemoryUsedBytes: 99, MemoryAvailBytes: 1}, "warning", "warning", 99, 100},
		{"no memory reading", telemetry.SystemStats{CPUPercent: 85}, "healthy", "warning", 0, 85},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.SystemDetails = true })
			f.srv.systemStats = func(context.Context) (telemetry.SystemStats, error) { return tt.stats, nil }
			w := f.do(t, req{method: "GET", path: "/health/detailed"})
			d := decodeJSON[struct {
				Status string `json:"status"`
				Checks struct {
					Memory, CPU resourceCheck
				} `json:"checks"`
			}](t, w)
			if got, want := d.Checks.Memory, (resourceCheck{tt.memory, tt.memPct}); got != want {
				t.Errorf("checks.memory = %+v, want %+v", got, want)
			}
			if got, want := d.Checks.CPU, (resourceCheck{tt.cpu, tt.cpuPct}); got != want {
				t.Errorf("checks.cpu = %+v, want %+v", got, want)
			}
			if d.Status != "healthy" {
				t.Errorf("status %q, want healthy: resource warnings do not change it", d.Status)
			}
		})
	}
}
