package redislimit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/app/redislimit"
)

// flaky is a shared limiter that fails while down is set.
type flaky struct {
	mu    sync.Mutex
	down  bool
	calls int
}

func (f *flaky) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

func (f *flaky) Allow(_ context.Context, _ string, l ratelimit.Limit) (ratelimit.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return ratelimit.Decision{}, errors.New("dial tcp: connection refused")
	}
	// A shared limiter that always allows, with a recognisable Remaining.
	return ratelimit.Decision{Allowed: true, Limit: l.Burst, Remaining: 999}, nil
}

type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) RateLimitFallback(mode string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[mode]++
}

func (c *counter) get(mode string) int { c.mu.Lock(); defer c.mu.Unlock(); return c.n[mode] }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }
func allow(t *testing.T, l ratelimit.Limiter, lim ratelimit.Limit) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(t.Context(), "client", lim)
	if err != nil {
		t.Fatalf("Allow returned an error: %v", err)
	}
	return d
}

var login = ratelimit.Limit{Rate: 5, Period: time.Minute, Burst: 5}

func TestFallbackOpenUsesInProcessLimits(t *testing.T) {
	shared, rec, clk := &flaky{}, &counter{}, newClock()
	var events []error
	f := redislimit.NewFallback(shared, nil, redislimit.FallbackOptions{
		Mode: redislimit.FailOpen, Recorder: rec, Now: clk.now,
		OnError: func(err error) { events = append(events, err) },
	})
	if d := allow(t, f, login); d.Remaining != 999 {
		t.Fatalf("healthy: %+v, want the shared limiter's decision", d)
	}

	shared.set(true)
	for i := range 5 {
		if d := allow(t, f, login); !d.Allowed || d.Remaining != 4-i {
			t.Fatalf("fallback request %d: %+v, want allowed by the in-process limiter", i+1, d)
		}
	}
	d := allow(t, f, login)
	if d.Allowed || d.RetryAfter != 12*time.Second {
		t.Errorf("6th fallback request: %+v, want refused by the in-process quota (retry after 12s)", d)
	}
	if got := rec.get("open"); got != 6 {
		t.Errorf("fallback_total{mode=open} = %d, want 6", got)
	}
	// Only the first failure reached the shared limiter: the rest were in
	// the cooldown.
	if shared.calls != 2 {
		t.Errorf("shared limiter called %d times, want 2 (one healthy, one failing)", shared.calls)
	}

	shared.set(false)
	clk.add(redislimit.DefaultCooldown)
	if d := allow(t, f, login); d.Remaining != 999 {
		t.Errorf("after the cooldown with the shared limiter back: %+v", d)
	}
	if len(events) != 2 || events[0] == nil || events[1] != nil {
		t.Errorf("OnError events = %v, want [error, nil]", events)
	}
}

func TestFallbackClosedRefuses(t *testing.T) {
	shared, rec := &flaky{down: true}, &counter{}
	f := redislimit.NewFallback(shared, nil, redislimit.FallbackOptions{Mode: redislimit.FailClosed, Recorder: rec})
	for range 3 {
		d := allow(t, f, login)
		if d.Allowed || d.RetryAfter != redislimit.ClosedRetryAfter || d.Limit != 5 {
			t.Errorf("closed fallback: %+v, want refused with Retry-After %v", d, redislimit.ClosedRetryAfter)
		}
	}
	if rec.get("closed") != 3 || rec.get("open") != 0 {
		t.Errorf("fallback counts = %v, want closed=3", rec.n)
	}
	if f.Mode() != redislimit.FailClosed {
		t.Errorf("Mode() = %q", f.Mode())
	}
}

func TestFallbackWithoutCooldownAsksEveryTime(t *testing.T) {
	shared := &flaky{down: true}
	f := redislimit.NewFallback(shared, nil, redislimit.FallbackOptions{Cooldown: -1})
	for range 4 {
		allow(t, f, login)
	}
	if shared.calls != 4 {
		t.Errorf("shared limiter called %d times, want 4", shared.calls)
	}
}

func TestFallbackCancelledRequestIsNotAnOutage(t *testing.T) {
	shared, rec := &flaky{down: true}, &counter{}
	var events int
	f := redislimit.NewFallback(shared, nil, redislimit.FallbackOptions{Recorder: rec, OnError: func(error) { events++ }})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.Allow(ctx, "k", login); err != nil {
		t.Fatal(err)
	}
	if events != 0 || rec.get("open") != 0 {
		t.Errorf("cancelled request counted as a fallback (events %d, count %d)", events, rec.get("open"))
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]redislimit.Mode{"open": redislimit.FailOpen, "closed": redislimit.FailClosed} {
		if got, err := redislimit.ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "OPEN", "fail-open", "deny"} {
		if _, err := redislimit.ParseMode(in); err == nil {
			t.Errorf("ParseMode(%q) succeeded", in)
		}
	}
}
