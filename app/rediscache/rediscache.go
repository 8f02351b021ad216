// Package rediscache is a read-through Redis cache for item reads that wraps
// any app.Store and is one itself: neither the store underneath nor the
// handlers above know it is there.
//
// Item reads are served from Redis when present and otherwise read from the
// wrapped store and written to Redis with a TTL. UpdateItem and DeleteItem
// invalidate the entry after the store has changed. Everything else passes
// straight through.
//
// Redis is optional: when a Redis call fails or times out (Options.Timeout)
// the read goes to the store and the result is counted as "error", and for
// a cooldown afterwards reads skip Redis entirely, so an outage costs
// requests neither errors nor latency. A cache failure never fails a call
// that the store itself answered.
//
// Consistency: a reader that misses remembers the entry's generation token
// before reading the store, and writes the value back only if no writer has
// replaced the token since (one Lua script). A writer replaces the token and
// deletes the entry after its store write. So a slow reader can never put a
// value older than a completed write back into the cache.
//
// A failed invalidation (Redis stalled, unreachable or timing out just when
// a write completes) cannot leave this instance serving a stale item: the
// item ID is recorded in process before the write returns, and every later
// read of that item first retries the invalidation (a purge, which also
// replaces the generation token) and bypasses the cache until one succeeds.
// A recorded ID is forgotten after a purge succeeds, or once any entry that
// could predate the write has expired (TTL plus the token's margin). If
// more than Options.MaxPending IDs are waiting, the cache bypasses all
// reads for that long instead, so memory stays bounded during a long
// outage. Other
// instances sharing the Redis do not learn of this instance's failed
// invalidations: for them an entry can stay stale until its TTL.
//
// It imports app, app/internal/cooldown (the failure state it shares with
// redislimit), go-redis and the Prometheus client (for Metrics), never
// redislimit, httpapi or cmd (TestImports).
package rediscache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/internal/cooldown"
)

// Defaults for Options' zero values.
const (
	DefaultTTL        = time.Minute
	DefaultPrefix     = "glasshouse:cache:v1:" // v1: bump when app.Item's JSON changes
	DefaultTimeout    = 100 * time.Millisecond
	DefaultCooldown   = time.Second
	DefaultName       = "items"
	DefaultMaxPending = 1 << 16
)

// Client is what the cache needs from go-redis: *redis.Client,
// *redis.ClusterClient and *redis.Ring satisfy it.
type Client interface {
	redis.Cmdable
	redis.Scripter
}

// Recorder counts cache lookups. *Metrics satisfies it
// (app_cache_requests_total{cache,result}).
type Recorder interface {
	// CacheRequest counts one lookup; result is "hit", "miss" or "error".
	CacheRequest(cache, result string)
}

// Options configures New. The zero value is usable.
type Options struct {
	// TTL is how long an entry lives (default DefaultTTL). With genTTL's
	// margin it bounds how long a failed invalidation is remembered, and
	// how stale another instance's view can get after one.
	TTL time.Duration
	// Prefix namespaces the keys (default DefaultPrefix).
	Prefix string
	// Timeout bounds each Redis call (default DefaultTimeout). The client
	// must have ContextTimeoutEnabled for go-redis to honour it.
	Timeout time.Duration
	// Cooldown: after a Redis error, reads skip Redis for this long
	// (default DefaultCooldown); negative disables it. Invalidations are
	// always attempted.
	Cooldown time.Duration
	// Name is the cache label value in metrics (default "items").
	Name string
	// Recorder counts lookups; nil records nothing.
	Recorder Recorder
	// OnError, when set, is called with each Redis error and with nil when
	// Redis answers again after failing (for logs and health).
	OnError func(error)
	// MaxPending bounds how many item IDs whose invalidation failed are
	// remembered for a purge (default DefaultMaxPending); past it the
	// cache is bypassed entirely until every entry that could be stale
	// has expired.
	MaxPending int
	// Now is the clock for the cooldown and the purge windows; nil means
	// time.Now.
	Now func() time.Time
}

// Store is an app.Store that caches Item reads of the store it wraps. It is
// safe for concurrent use.
type Store struct {
	app.Store // calls without caching pass straight through

	rdb     Client
	ttl     time.Duration
	genTTL  time.Duration
	prefix  string
	timeout time.Duration
	name    string
	rec     Recorder
	now     func() time.Time
	breaker cooldown.Breaker // skips Redis for a cooldown after it fails

	// Items whose invalidation failed: reads purge them first (see the
	// package comment). npending mirrors len(pending) for a lock-free
	// fast path; bypassUntil (Unix nanoseconds) is set when pending
	// overflowed.
	mu          sync.Mutex
	maxPending  int
	pending     map[int64]purge
	seq         uint64
	npending    atomic.Int64
	bypassUntil atomic.Int64
}

// purge is one recorded failed invalidation: seq tells a purge that
// succeeded whether another failure was recorded meanwhile; until is when
// every entry that could predate the write has expired.
type purge struct {
	seq   uint64
	until time.Time
}

var (
	_ app.Store     = (*Store)(nil)
	_ app.BulkStore = (*Store)(nil)
)

// New wraps next with a cache in rdb. Close closes next, not rdb: the
// caller owns the client (it may be shared with other users).
func New(next app.Store, rdb Client, o Options) *Store {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Cooldown == 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	return &Store{
		Store: next, rdb: rdb, ttl: o.TTL,
		// A generation token must outlive any reader that saw it (a reader
		// holds it for one store read), so it lives well past the entry.
		genTTL: o.TTL + time.Minute,
		prefix: o.Prefix, timeout: o.Timeout, name: o.Name, rec: o.Recorder, now: o.Now,
		breaker: cooldown.Breaker{Cooldown: o.Cooldown, OnError: o.OnError, Now: o.Now},
		pending: map[int64]purge{}, maxPending: o.MaxPending,
	}
}

// keys returns the entry and generation keys of item id. The hash tag keeps
// both in one Redis Cluster slot, as the scripts require.
func (s *Store) keys(id int64) (entry, gen string) {
	tag := s.prefix + "{item:" + strconv.FormatInt(id, 10) + "}"
	return tag, tag + ":gen"
}

// fill writes the entry only while the generation token is still the one
// the reader saw before reading the store ("" when there was none).
// KEYS: entry, gen. ARGV: token, value, ttl ms.
var fill = redis.NewScript(`
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// invalidate replaces the generation token and deletes the entry.
// KEYS: entry, gen. ARGV: new token, token ttl ms.
var invalidate = redis.NewScript(`
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return redis.call('DEL', KEYS[1])
`)

// Item implements app.Store, reading through the cache.
func (s *Store) Item(ctx context.Context, ownerID, id int64) (app.Item, error) {
	if s.breaker.Skipping() || s.bypassing() {
		s.count("error")
		return s.Store.Item(ctx, ownerID, id)
	}
	if seq, ok := s.pendingPurge(id); ok && !s.purge(ctx, id, seq) {
		// The cache may still hold what the failed invalidation should
		// have removed: answer from the store and fill nothing.
		s.count("error")
		return s.Store.Item(ctx, ownerID, id)
	}
	entry, gen := s.keys(id)
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	vals, err := s.rdb.MGet(rctx, entry, gen).Result()
	cancel()
	if err != nil || len(vals) != 2 {
		if err == nil {
			err = errors.New("malformed MGET reply")
		}
		s.failed(ctx, fmt.Errorf("rediscache: get item %d: %w", id, err))
		s.count("error")
		return s.Store.Item(ctx, ownerID, id)
	}
	s.breaker.Succeeded()
	if raw, ok := vals[0].(string); ok {
		var it app.Item
		if err := json.Unmarshal([]byte(raw), &it); err == nil && it.ID == id {
			s.count("hit")
			if it.OwnerID != ownerID {
				// Same answer as the store: another user's item does not exist.
				return app.Item{}, fmt.Errorf("item %d: %w", id, app.ErrNotFound)
			}
			return it, nil
		}
		// An entry we cannot read (written by another version): a miss,
		// and the write below replaces it.
	}
	s.count("miss")
	token, _ := vals[1].(string)
	it, err := s.Store.Item(ctx, ownerID, id)
	if err != nil {
		return it, err // negatives are not cached
	}
	if b, err := json.Marshal(it); err == nil {
		rctx, cancel := context.WithTimeout(ctx, s.timeout)
		err = fill.Run(rctx, s.rdb, []string{entry, gen}, token, b, s.ttl.Milliseconds()).Err()
		cancel()
		if err != nil {
			s.failed(ctx, fmt.Errorf("rediscache: fill item %d: %w", id, err))
		}
	}
	return it, nil
}

// CreateItems implements app.BulkStore with app.CreateItems on the wrapped
// store: one transaction when it implements app.BulkStore. New items have
// no cache entries, so there is nothing to invalidate.
func (s *Store) CreateItems(ctx context.Context, items []*app.Item) error {
	return app.CreateItems(ctx, s.Store, items)
}

// UpdateItem implements app.Store: the store first, then the entry is
// invalidated (also when the store failed, since a write that timed out may
// still have committed).
func (s *Store) UpdateItem(ctx context.Context, it *app.Item) error {
	err := s.Store.UpdateItem(ctx, it)
	if !errors.Is(err, app.ErrNotFound) {
		s.invalidate(ctx, it.ID)
	}
	return err
}

// DeleteItem implements app.Store, invalidating like UpdateItem.
func (s *Store) DeleteItem(ctx context.Context, ownerID, id int64) error {
	err := s.Store.DeleteItem(ctx, ownerID, id)
	if !errors.Is(err, app.ErrNotFound) {
		s.invalidate(ctx, id)
	}
	return err
}

// invalidate never fails the caller: the store has already answered. When
// Redis does not confirm the invalidation, the item is recorded for a purge
// before the write returns.
func (s *Store) invalidate(ctx context.Context, id int64) {
	if err := s.runInvalidate(ctx, id); err != nil {
		s.addPending(id)
		s.failed(context.WithoutCancel(ctx), fmt.Errorf("rediscache: invalidate item %d: %w", id, err))
		return
	}
	s.breaker.Succeeded()
}

// runInvalidate replaces the item's generation token and deletes its entry.
// It is detached from the request's cancellation: a client that hangs up
// right after its write must not leave a stale entry behind.
func (s *Store) runInvalidate(ctx context.Context, id int64) error {
	entry, gen := s.keys(id)
	b := make([]byte, 12)
	rand.Read(b)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	return invalidate.Run(rctx, s.rdb, []string{entry, gen}, hex.EncodeToString(b), s.genTTL.Milliseconds()).Err()
}

// purge retries the failed invalidation recorded for id as seq and reports
// whether it succeeded (and id is forgotten unless a newer failure was
// recorded meanwhile).
func (s *Store) purge(ctx context.Context, id int64, seq uint64) bool {
	if err := s.runInvalidate(ctx, id); err != nil {
		s.failed(ctx, fmt.Errorf("rediscache: purge item %d: %w", id, err))
		return false
	}
	s.breaker.Succeeded()
	s.mu.Lock()
	if p, ok := s.pending[id]; ok && p.seq == seq {
		delete(s.pending, id)
		s.npending.Store(int64(len(s.pending)))
	}
	s.mu.Unlock()
	return true
}

// addPending records a failed invalidation of id, or, when MaxPending IDs
// are already waiting, bypasses the cache until every entry that could be
// stale has expired (and forgets the IDs, which that covers).
func (s *Store) addPending(id int64) {
	until := s.now().Add(s.genTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; !ok && len(s.pending) >= s.maxPending || s.bypassing() {
		if until.UnixNano() > s.bypassUntil.Load() {
			s.bypassUntil.Store(until.UnixNano())
		}
		clear(s.pending)
		s.npending.Store(0)
		return
	}
	s.seq++
	s.pending[id] = purge{seq: s.seq, until: until}
	s.npending.Store(int64(len(s.pending)))
}

// pendingPurge returns the recorded failed invalidation of id, if one is
// still within its window (expired ones are forgotten here).
func (s *Store) pendingPurge(id int64) (uint64, bool) {
	if s.npending.Load() == 0 {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[id]
	if !ok {
		return 0, false
	}
	if !s.now().Before(p.until) {
		delete(s.pending, id)
		s.npending.Store(int64(len(s.pending)))
		return 0, false
	}
	return p.seq, true
}

// bypassing reports whether pending overflowed and reads skip the cache.
func (s *Store) bypassing() bool {
	u := s.bypassUntil.Load()
	return u != 0 && s.now().UnixNano() < u
}

// Pending returns how many items await a purge after a failed invalidation
// (for tests and diagnostics).
func (s *Store) Pending() int { return int(s.npending.Load()) }

func (s *Store) count(result string) {
	if s.rec != nil {
		s.rec.CacheRequest(s.name, result)
	}
}

// failed starts a cooldown. A caller that went away is not Redis's fault.
func (s *Store) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	s.breaker.Failed(err)
}
