package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is an in-process Limiter using GCRA (the generic cell rate
// algorithm: one "theoretical arrival time" per key, no background timers).
// It is exact within one process; several API instances each enforce their
// own quota, which is what a distributed backend (app/redislimit) fixes.
//
// Memory is safe for concurrent use. Idle keys are swept lazily during Allow,
// so memory holds only keys seen within their quota's reset window.
type Memory struct {
	now    func() time.Time
	base   time.Time
	seed   maphash.Seed
	calls  atomic.Uint64
	shards [shardCount]shard
}

const (
	shardCount = 64
	sweepEvery = 256 // Allow calls between sweeps of one shard (round robin)
)

type shard struct {
	mu  sync.Mutex
	tat map[string]time.Duration // theoretical arrival time, relative to base
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an empty limiter reading time from now (time.Now if nil).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	m := &Memory{now: now, base: now(), seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].tat = make(map[string]time.Duration)
	}
	return m
}

// Allow implements Limiter. It never returns an error. A Limit with a
// non-positive Rate, Period or Burst allows nothing.
func (m *Memory) Allow(_ context.Context, key string, l Limit) (Decision, error) {
	if l.Rate <= 0 || l.Period <= 0 || l.Burst <= 0 {
		return Decision{Allowed: false, Limit: max(l.Burst, 0), RetryAfter: max(l.Period, time.Second)}, nil
	}
	interval := l.Period / time.Duration(l.Rate) // one event's share of the quota
	if interval <= 0 {
		interval = 1
	}
	window := interval * time.Duration(l.Burst) // how far TAT may run ahead of now
	now := m.now().Sub(m.base)

	if n := m.calls.Add(1); n%sweepEvery == 0 {
		m.sweep(&m.shards[(n/sweepEvery)%shardCount], now)
	}
	sh := &m.shards[maphash.String(m.seed, key)%shardCount]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	tat := max(sh.tat[key], now)
	next := tat + interval
	if earliest := next - window; now < earliest {
		return Decision{
			Allowed:    false,
			Limit:      l.Burst,
			Remaining:  0,
			RetryAfter: earliest - now,
			ResetAfter: tat - now,
		}, nil
	}
	sh.tat[key] = next
	return Decision{
		Allowed:    true,
		Limit:      l.Burst,
		Remaining:  int((window - (next - now)) / interval),
		ResetAfter: next - now,
	}, nil
}

// sweep drops keys whose bucket is full again: forgetting them changes no
// future decision.
func (m *Memory) sweep(sh *shard, now time.Duration) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for k, t := range sh.tat {
		if t <= now {
			delete(sh.tat, k)
		}
	}
}

// Len reports how many keys the limiter currently tracks (swept keys are
// gone); for tests and debugging.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.tat)
		sh.mu.Unlock()
	}
	return n
}
