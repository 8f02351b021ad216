package ratelimit_test

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
)

func TestMemoryBurstThenRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := ratelimit.NewMemory(time.Now)
		l := ratelimit.Limit{Rate: 5, Period: time.Minute, Burst: 5} // the login limit
		ctx := t.Context()
		for i := range 5 {
			d, err := m.Allow(ctx, "k", l)
			if err != nil || !d.Allowed {
				t.Fatalf("request %d of the burst: %+v, %v", i+1, d, err)
			}
			if d.Remaining != 4-i || d.Limit != 5 {
				t.Errorf("request %d: remaining %d limit %d, want %d and 5", i+1, d.Remaining, d.Limit, 4-i)
			}
		}
		d, _ := m.Allow(ctx, "k", l)
		if d.Allowed {
			t.Fatal("6th request within a minute allowed")
		}
		if d.RetryAfter != 12*time.Second || d.Remaining != 0 {
			t.Errorf("denied: retry after %v remaining %d, want 12s and 0", d.RetryAfter, d.Remaining)
		}
		if d.ResetAfter != time.Minute {
			t.Errorf("ResetAfter = %v, want 1m (the whole burst to refill)", d.ResetAfter)
		}
		// Another key has its own quota.
		if d, _ := m.Allow(ctx, "other", l); !d.Allowed {
			t.Error("a different key was throttled")
		}

		time.Sleep(12*time.Second - time.Millisecond)
		if d, _ := m.Allow(ctx, "k", l); d.Allowed {
			t.Error("allowed before RetryAfter elapsed")
		}
		time.Sleep(time.Millisecond)
		d, _ = m.Allow(ctx, "k", l)
		if !d.Allowed || d.Remaining != 0 {
			t.Errorf("after RetryAfter: %+v, want allowed with 0 remaining", d)
		}
		time.Sleep(time.Minute)
		d, _ = m.Allow(ctx, "k", l)
		if !d.Allowed || d.Remaining != 4 {
			t.Errorf("after a full period: %+v, want allowed with 4 remaining", d)
		}
	})
}

func TestMemorySustainedRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := ratelimit.NewMemory(time.Now)
		l := ratelimit.Limit{Rate: 100, Period: time.Second, Burst: 200}
		allowed := 0
		// 10 s of 1,000 req/s offered: burst 200 + 100/s * 10 s may pass.
		for range 10_000 {
			if d, _ := m.Allow(t.Context(), "user:1", l); d.Allowed {
				allowed++
			}
			time.Sleep(time.Millisecond)
		}
		if allowed < 1195 || allowed > 1201 {
			t.Errorf("allowed %d of 10,000 over 10 s, want about 1,200 (200 burst + 1,000 rate)", allowed)
		}
	})
}

func TestMemoryZeroLimitAllowsNothing(t *testing.T) {
	m := ratelimit.NewMemory(nil)
	for _, l := range []ratelimit.Limit{{}, {Rate: 1, Period: time.Second}, {Rate: 0, Period: time.Second, Burst: 3}, {Rate: 1, Burst: 1}} {
		d, err := m.Allow(t.Context(), "k", l)
		if err != nil || d.Allowed || d.RetryAfter <= 0 {
			t.Errorf("Allow with %+v = %+v, %v; want denied with a positive RetryAfter", l, d, err)
		}
	}
}

func TestMemorySweepsIdleKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := ratelimit.NewMemory(time.Now)
		l := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 10}
		for i := range 5000 {
			m.Allow(t.Context(), fmt.Sprintf("client-%d", i), l)
		}
		if n := m.Len(); n != 5000 {
			t.Fatalf("tracking %d keys, want 5000", n)
		}
		time.Sleep(2 * time.Second) // every key's bucket is full again
		for range 64 * 256 {
			m.Allow(t.Context(), "hot", l)
		}
		if n := m.Len(); n > 1 {
			t.Errorf("after every shard swept, tracking %d keys; idle keys were not dropped", n)
		}
	})
}

func TestMemoryConcurrentExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := ratelimit.NewMemory(time.Now)
		l := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 50}
		var mu sync.Mutex
		allowed := 0
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for range 10 {
					if d, _ := m.Allow(t.Context(), "shared", l); d.Allowed {
						mu.Lock()
						allowed++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if allowed != 50 {
			t.Errorf("200 concurrent requests against burst 50: %d allowed, want exactly 50", allowed)
		}
	})
}
