package httpapi

import (
	"context"
	"errors"
	"log/slog"
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

// handleHealth is a cheap summary for humans and uptime checkers.
func handleHealth(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, healthResponse{Status: "ok", Version: s.opts.Version, Timestamp: s.opts.Now().UTC()})
	})
}

// handleLive does no I/O: if the process can answer, it is alive.
func handleLive() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// checkResult is one dependency check's outcome.
type checkResult struct {
	Name      string  `json:"name"`
	Status    string  `json:"status"` // "ok", "failed", "degraded" (an optional check that failed)
	Optional  bool    `json:"optional,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"` // "timeout" or "unavailable"; details are logged
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
			res := checkResult{Name: c.Name, Status: "ok", Optional: c.Optional, LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
			if err != nil {
				res.Status, res.Error = "failed", "unavailable"
				if c.Optional {
					res.Status = "degraded"
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
			respondErr(s.log, w, r, err)
			return
		}
		states := make(map[string]string, len(results))
		var failed []string
		for _, c := range results {
			states[c.Name] = c.Status
			if c.Status == "failed" {
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

type detailedResponse struct {
	Status        string                 `json:"status"` // "ok", "degraded", "unavailable"
	Version       string                 `json:"version"`
	Timestamp     time.Time              `json:"timestamp"`
	UptimeSeconds float64                `json:"uptime_seconds"`
	Draining      bool                   `json:"draining"`
	Checks        []checkResult          `json:"checks"`
	System        *telemetry.SystemStats `json:"system,omitempty"`
	// SystemPartial is set when some readings failed (load average on
	// Windows, say): they are 0 in System, the others are real.
	SystemPartial bool `json:"system_partial,omitempty"`
}

// handleDetailed always answers 200 with a report: every check with its
// latency (the cached readiness result), and, with SystemDetails, host and
// process resource use. Probes use /health/ready.
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
			respondErr(s.log, w, r, err)
			return
		}
		now := s.opts.Now()
		resp := detailedResponse{Status: "ok", Version: s.opts.Version, Timestamp: now.UTC(),
			UptimeSeconds: now.Sub(s.started).Seconds(), Draining: s.opts.Draining.Load(), Checks: results}
		if s.opts.SystemDetails {
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
			case c.Status == "failed":
				resp.Status = "unavailable"
			case c.Status == "degraded" && resp.Status == "ok":
				resp.Status = "degraded"
			}
		}
		if resp.Checks == nil {
			resp.Checks = []checkResult{}
		}
		encode(w, http.StatusOK, resp)
	})
}
