package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

type healthResponse struct {
	Status    string    `json:"status"`
	Version   string    `json:"version"`
	Timestamp time.Time `json:"timestamp"`
}

// Health vocabulary, as FastAPI services commonly answer: /health says
// "healthy", /health/live "alive", /health/ready "ready"; a check is
// "healthy" or "unhealthy: <reason>"; a resource is "healthy" or
// "warning" past its threshold.
const (
	statusHealthy   = "healthy"
	statusUnhealthy = "unhealthy"
	statusDegraded  = "degraded" // an optional check failed
	statusWarning   = "warning"

	// memoryWarnPercent and cpuWarnPercent are the host usage at which
	// /health/detailed reports a resource as "warning".
	memoryWarnPercent = 90
	cpuWarnPercent    = 80
)

// handleHealth is a cheap summary for humans and uptime checkers.
func handleHealth(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, healthResponse{Status: statusHealthy, Version: s.opts.Version, Timestamp: s.opts.Now().UTC()})
	})
}

// handleLive does no I/O: if the process can answer, it is alive.
func handleLive() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "alive"})
	})
}

// checkResult is one dependency check's outcome.
type checkResult struct {
	Name      string  `json:"name"`
	Status    string  `json:"status"` // "healthy", "unhealthy", "degraded" (an optional check that failed)
	Optional  bool    `json:"optional,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"` // "timeout" or "unavailable"; details are logged
}

// state is the check in the checks map's vocabulary: "healthy", or
// "unhealthy: <reason>" (for an optional check too: its failure only
// degrades the service, but the check itself is unhealthy).
func (c checkResult) state() string {
	if c.Status == statusHealthy {
		return statusHealthy
	}
	return statusUnhealthy + ": " + c.Error
}

// checkStates maps each check's name to its state.
func checkStates(results []checkResult) map[string]string {
	states := make(map[string]string, len(results))
	for _, c := range results {
		states[c.Name] = c.state()
	}
	return states
}

// readiness shares the dependency checks between probes: a result is
// served for ttl, and when it is stale one run of the checks starts, which
// every probe arriving meanwhile waits for. So frequent or hostile probes
// cost at most one run per ttl and never more than one run at a time. A
// run does not end when the probe that started it gives up.
type readiness struct {
	ttl time.Duration
	now func() time.Time
	run func(context.Context) []checkResult

	mu      sync.Mutex
	results []checkResult
	at      time.Time     // when results were taken; zero before the first run
	pending chan struct{} // closed when the run in flight ends; nil when none
}

// get returns fresh-enough results, or an error if ctx ends first.
func (rd *readiness) get(ctx context.Context) ([]checkResult, error) {
	rd.mu.Lock()
	if !rd.at.IsZero() && rd.now().Sub(rd.at) < rd.ttl {
		res := rd.results
		rd.mu.Unlock()
		return res, nil
	}
	if rd.pending == nil {
		done := make(chan struct{})
		rd.pending = done
		runCtx := context.WithoutCancel(ctx)
		go func() {
			res := rd.run(runCtx)
			rd.mu.Lock()
			rd.results, rd.at, rd.pending = res, rd.now(), nil
			rd.mu.Unlock()
			close(done)
		}()
	}
	pending := rd.pending
	rd.mu.Unlock()
	select {
	case <-pending:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.results, nil
}

// runChecks runs every check concurrently under one timeout.
func (s *server) runChecks(ctx context.Context) []checkResult {
	ctx, cancel := context.WithTimeout(ctx, s.opts.CheckTimeout)
	defer cancel()
	results := make([]checkResult, len(s.opts.Checks))
	var wg sync.WaitGroup
	for i, c := range s.opts.Checks {
		wg.Go(func() {
			start := time.Now()
			err := runCheck(ctx, c)
			res := checkResult{Name: c.Name, Status: statusHealthy, Optional: c.Optional, LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
			if err != nil {
				res.Status, res.Error = statusUnhealthy, "unavailable"
				if c.Optional {
					res.Status = statusDegraded
				}
				if errors.Is(err, context.DeadlineExceeded) {
					res.Error = "timeout"
				}
				s.log.LogAttrs(ctx, slog.LevelWarn, "health check failed", slog.String("check", c.Name),
					slog.Bool("optional", c.Optional), slog.String("err", err.Error()))
			}
			results[i] = res
		})
	}
	wg.Wait()
	return results
}

// runCheck runs c, turning a panic or a check that ignores its deadline into
// an error instead of a hung or crashed probe.
func runCheck(ctx context.Context, c app.Check) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if rv := recover(); rv != nil {
				done <- errors.New("check panicked")
			}
		}()
		done <- c.Check(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handleReady answers 200 when every required check passes, 503 naming the
// failing checks otherwise, and 503 as soon as shutdown begins.
func handleReady(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Draining.Load() {
			w.Header().Set("Retry-After", "5")
			writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable, Code: "shutting_down",
				Detail: "the server is shutting down"})
			return
		}
		results, err := s.ready.get(r.Context())
		if err != nil {
			respondErr(s.errs, w, r, err)
			return
		}
		states := checkStates(results)
		var failed []string
		for _, c := range results {
			if c.Status == statusUnhealthy {
				failed = append(failed, c.Name)
			}
		}
		if len(failed) > 0 {
			detail := "check failed: " + failed[0]
			for _, f := range failed[1:] {
				detail += ", " + f
			}
			writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable, Code: "not_ready", Detail: detail, Checks: states})
			return
		}
		encode(w, http.StatusOK, map[string]any{"status": "ready", "checks": states})
	})
}

// detailedResponse is /health/detailed's body. Checks maps each dependency
// check's name to its state ("healthy" or "unhealthy: <reason>") and, with
// SystemDetails, "memory" and "cpu" to a resourceCheck; Dependencies gives
// each check's latency.
type detailedResponse struct {
	Status        string                 `json:"status"` // "healthy", "degraded", "unhealthy"
	Version       string                 `json:"version"`
	Timestamp     time.Time              `json:"timestamp"`
	UptimeSeconds float64                `json:"uptime_seconds"`
	Draining      bool                   `json:"draining"`
	Checks        map[string]any         `json:"checks"`
	Dependencies  []checkResult          `json:"dependencies"`
	System        *telemetry.SystemStats `json:"system,omitempty"`
	// SystemPartial is set when some readings failed (load average on
	// Windows, say): they are 0 in System, the others are real.
	SystemPartial bool `json:"system_partial,omitempty"`
}

// resourceCheck is a host resource in /health/detailed's checks: its use
// (0..100) and "healthy", or "warning" at or past the threshold.
type resourceCheck struct {
	Status       string  `json:"status"`
	UsagePercent float64 `json:"usage_percent"`
}

func newResourceCheck(percent, warnAt float64) resourceCheck {
	c := resourceCheck{Status: statusHealthy, UsagePercent: math.Round(percent*10) / 10}
	if percent >= warnAt {
		c.Status = statusWarning
	}
	return c
}

// handleDetailed always answers 200 with a report: every check's state and
// latency (the cached readiness result), and, with SystemDetails, memory
// and CPU use with a warning past memoryWarnPercent and cpuWarnPercent,
// and the host and process readings behind them. A resource warning does
// not change the overall status, which is the dependencies'. Probes use
// /health/ready.
func handleDetailed(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var (
			results []checkResult
			err     error
			stats   telemetry.SystemStats
			statErr error
			wg      sync.WaitGroup
		)
		wg.Go(func() { results, err = s.ready.get(r.Context()) })
		if s.opts.SystemDetails {
			wg.Go(func() { stats, statErr = s.systemStats(r.Context()) })
		}
		wg.Wait()
		if err != nil {
			respondErr(s.errs, w, r, err)
			return
		}
		now := s.opts.Now()
		resp := detailedResponse{Status: statusHealthy, Version: s.opts.Version, Timestamp: now.UTC(),
			UptimeSeconds: now.Sub(s.started).Seconds(), Draining: s.opts.Draining.Load(),
			Checks: make(map[string]any, len(results)+2), Dependencies: results}
		for _, c := range results {
			resp.Checks[c.Name] = c.state()
		}
		if s.opts.SystemDetails {
			var memPercent float64
			if total := stats.MemoryUsedBytes + stats.MemoryAvailBytes; total > 0 {
				memPercent = float64(stats.MemoryUsedBytes) / float64(total) * 100
			}
			resp.Checks["memory"] = newResourceCheck(memPercent, memoryWarnPercent)
			resp.Checks["cpu"] = newResourceCheck(stats.CPUPercent, cpuWarnPercent)
			// A failed reading is 0 and the error says which; the rest
			// are still worth showing.
			resp.System = &stats
			if statErr != nil {
				resp.SystemPartial = true
				s.log.LogAttrs(r.Context(), slog.LevelWarn, "some system stats unavailable", slog.String("err", statErr.Error()))
			}
		}
		for _, c := range results {
			switch {
			case c.Status == statusUnhealthy:
				resp.Status = statusUnhealthy
			case c.Status == statusDegraded && resp.Status == statusHealthy:
				resp.Status = statusDegraded
			}
		}
		if resp.Dependencies == nil {
			resp.Dependencies = []checkResult{}
		}
		encode(w, http.StatusOK, resp)
	})
}
