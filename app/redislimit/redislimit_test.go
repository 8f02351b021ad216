package redislimit_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/internal/redistest"
	"github.com/glasshouse-dev/glasshouse/app/internal/tcpproxy"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/app/redislimit"
)

func TestZeroLimitAllowsNothingWithoutRedis(t *testing.T) {
	l := redislimit.New(nil, redislimit.Options{}) // a nil client: Redis must not be touched
	for _, lim := range []ratelimit.Limit{{}, {Rate: 1, Period: time.Second}, {Rate: 1, Burst: 1}} {
		d, err := l.Allow(t.Context(), "k", lim)
		if err != nil || d.Allowed || d.RetryAfter <= 0 {
			t.Errorf("Allow(%+v) = %+v, %v; want refused with a positive RetryAfter", lim, d, err)
		}
	}
}

// healthy returns Options for tests that assert what Redis decides: the
// timeout is only a hang guard, since the default (100 ms) can expire on a
// loaded machine and turn a decision into an error.
func healthy(prefix string) redislimit.Options {
	return redislimit.Options{Prefix: prefix, Timeout: redistest.HangGuard}
}

// The Redis limiter makes the same decisions as ratelimit.Memory for the
// same sequence of requests and clock.
func TestSameDecisionsAsMemory(t *testing.T) {
	rdb := redistest.Client(t, "")
	clk := newClock()
	o := healthy(redistest.Prefix(t))
	o.Now = clk.now
	rl := redislimit.New(rdb, o)
	mem := ratelimit.NewMemory(clk.now)
	limits := []ratelimit.Limit{
		login,
		{Rate: 100, Period: time.Second, Burst: 200},
		{Rate: 10, Period: time.Second, Burst: 1},
	}
	steps := []time.Duration{0, 0, 0, time.Millisecond, 0, 11 * time.Second, 0, 500 * time.Millisecond, 0, 0,
		12 * time.Second, 0, time.Minute, 0, 0, 0, 99 * time.Millisecond, time.Millisecond, 0}
	for i, lim := range limits {
		key := fmt.Sprintf("cmp-%d", i)
		for j, step := range steps {
			clk.add(step)
			for range 3 {
				want, _ := mem.Allow(t.Context(), key, lim)
				got, err := rl.Allow(t.Context(), key, lim)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("limit %+v step %d: redis %+v, memory %+v", lim, j, got, want)
				}
			}
		}
	}
}

// Two API instances (two clients, two Limiters) share one quota.
func TestQuotaHoldsAcrossInstances(t *testing.T) {
	prefix := redistest.Prefix(t)
	a := redislimit.New(redistest.Client(t, ""), healthy(prefix))
	b := redislimit.New(redistest.Client(t, ""), healthy(prefix))
	lim := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 50}
	var (
		allowed atomic.Int64
		wg      sync.WaitGroup
	)
	for i := range 20 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			for range 10 {
				d, err := l.Allow(t.Context(), "shared", lim)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 50 {
		t.Errorf("200 requests through two instances against burst 50: %d allowed, want exactly 50", got)
	}
	// The key expires once the bucket would be full again.
	ttl, err := redistest.Client(t, "").PTTL(t.Context(), prefix+"shared").Result()
	if err != nil || ttl <= 0 || ttl > 50*time.Hour+time.Minute {
		t.Errorf("key TTL = %v, %v; want positive and at most the refill time", ttl, err)
	}
}

func TestRealClockBurstThenRefused(t *testing.T) {
	l := redislimit.New(redistest.Client(t, ""), healthy(redistest.Prefix(t)))
	for i := range 5 {
		if d, err := l.Allow(t.Context(), "u", login); err != nil || !d.Allowed || d.Remaining != 4-i {
			t.Fatalf("request %d: %+v, %v", i+1, d, err)
		}
	}
	d, err := l.Allow(t.Context(), "u", login)
	if err != nil || d.Allowed {
		t.Fatalf("6th request: %+v, %v; want refused", d, err)
	}
	// Server time moved a little between calls: RetryAfter is just under 12s.
	if d.RetryAfter <= 11*time.Second || d.RetryAfter > 12*time.Second || d.ResetAfter <= 59*time.Second {
		t.Errorf("refused: retry after %v, reset after %v; want about 12s and 1m", d.RetryAfter, d.ResetAfter)
	}
}

func TestRedisDown(t *testing.T) {
	p, err := tcpproxy.Start(redistest.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	prefix := redistest.Prefix(t)
	rdb := redistest.Client(t, p.Addr())
	if _, err := redislimit.New(rdb, healthy(prefix)).Allow(t.Context(), "k", login); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	// The limiter under test keeps the default timeout: cut off, its calls
	// must fail fast.
	rl := redislimit.New(rdb, redislimit.Options{Prefix: prefix})

	for _, mode := range []tcpproxy.Mode{tcpproxy.Refuse, tcpproxy.Blackhole} {
		p.Set(mode)
		start := time.Now()
		_, err := rl.Allow(t.Context(), "k", login)
		if err == nil {
			t.Fatalf("mode %d: Allow succeeded with Redis cut off", mode)
		}
		// Bounded by the limiter's 100 ms timeout; 5 s means it hung.
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("mode %d: failing Allow took %v", mode, took)
		}
		t.Logf("mode %d: failed after %v: %v", mode, time.Since(start).Round(time.Millisecond), err)
	}

	for _, tc := range []struct {
		mode      redislimit.Mode
		wantAllow bool
	}{{redislimit.FailOpen, true}, {redislimit.FailClosed, false}} {
		t.Run(string(tc.mode), func(t *testing.T) {
			p.Set(tcpproxy.Refuse)
			rec := &counter{}
			var (
				mu     sync.Mutex
				events []error
			)
			f := redislimit.NewFallback(rl, nil, redislimit.FallbackOptions{Mode: tc.mode, Recorder: rec,
				Cooldown: 200 * time.Millisecond, OnError: func(err error) { mu.Lock(); events = append(events, err); mu.Unlock() }})
			d, err := f.Allow(t.Context(), "fresh", login)
			if err != nil || d.Allowed != tc.wantAllow {
				t.Fatalf("Redis down, mode %s: %+v, %v; want allowed=%v", tc.mode, d, err, tc.wantAllow)
			}
			if !tc.wantAllow && d.RetryAfter <= 0 {
				t.Errorf("refused without Retry-After: %+v", d)
			}
			if rec.get(string(tc.mode)) != 1 {
				t.Errorf("fallback counter: %v", rec.n)
			}

			p.Set(tcpproxy.Forward)
			deadline := time.Now().Add(5 * time.Second)
			for {
				d, err := f.Allow(t.Context(), "fresh-"+string(tc.mode), login)
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				recovered := len(events) > 0 && events[len(events)-1] == nil
				mu.Unlock()
				if recovered {
					if !d.Allowed {
						t.Errorf("after recovery: %+v", d)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Fallback did not go back to Redis within 5s; events %v", events)
				}
				time.Sleep(50 * time.Millisecond)
			}
			mu.Lock()
			if events[0] == nil {
				t.Errorf("first event should be the outage error, got %v", events[0])
			}
			mu.Unlock()
		})
	}
}

// Keys carry client input; a long one is stored hashed, and still limits.
func TestLongKeysAreHashed(t *testing.T) {
	rdb := redistest.Client(t, "")
	prefix := redistest.Prefix(t)
	l := redislimit.New(rdb, healthy(prefix))
	long := "login:" + strings.Repeat("x", 100_000)
	lim := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 2}
	for i, want := range []bool{true, true, false} {
		d, err := l.Allow(t.Context(), long, lim)
		if err != nil || d.Allowed != want {
			t.Fatalf("request %d: %+v, %v; want allowed=%v", i+1, d, err, want)
		}
	}
	if d, _ := l.Allow(t.Context(), long+"y", lim); !d.Allowed {
		t.Error("a different long key shares the first one's quota")
	}
	keys, err := rdb.Keys(t.Context(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if len(k) > len(prefix)+128 {
			t.Errorf("stored key of %d bytes", len(k))
		}
	}
	if len(keys) != 2 {
		t.Errorf("%d keys stored, want 2", len(keys))
	}
}
