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
// value older than a completed write back into the cache. The remaining
// window: if Redis is unreachable from this instance exactly when it
// invalidates, a stale entry can survive until its TTL.
//
// It imports app and go-redis, never redislimit, httpapi or cmd.
package rediscache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/glasshouse-dev/glasshouse/app"
)

// Defaults for Options' zero values.
const (
	DefaultTTL      = time.Minute
	DefaultPrefix   = "glasshouse:cache:v1:" // v1: bump when app.Item's JSON changes
	DefaultTimeout  = 100 * time.Millisecond
	DefaultCooldown = time.Second
	DefaultName     = "items"
)

// Client is what the cache needs from go-redis: *redis.Client,
// *redis.ClusterClient and *redis.Ring satisfy it.
type Client interface {
	redis.Cmdable
	redis.Scripter
}

// Recorder counts cache lookups. *telemetry.Telemetry satisfies it
// (app_cache_requests_total{cache,result}).
type Recorder interface {
	// CacheRequest counts one lookup; result is "hit", "miss" or "error".
	CacheRequest(cache, result string)
}

// Options configures New. The zero value is usable.
type Options struct {
	// TTL is how long an entry lives (default DefaultTTL). It bounds how
	// stale an entry can get if an invalidation is lost to a Redis outage.
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
	// Now is the clock for the cooldown; nil means time.Now.
	Now func() time.Time
}

// Store is an app.Store that caches Item reads of the store it wraps. It is
// safe for concurrent use.
type Store struct {
	app.Store // calls without caching pass straight through

	rdb      Client
	ttl      time.Duration
	genTTL   time.Duration
	prefix   string
	timeout  time.Duration
	cooldown time.Duration
	name     string
	rec      Recorder
	onError  func(error)
	now      func() time.Time

	failing   atomic.Bool
	skipUntil atomic.Int64 // Unix nanoseconds
}

var _ app.Store = (*Store)(nil)

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
	return &Store{
		Store: next, rdb: rdb, ttl: o.TTL,
		// A generation token must outlive any reader that saw it (a reader
		// holds it for one store read), so it lives well past the entry.
		genTTL: o.TTL + time.Minute,
		prefix: o.Prefix, timeout: o.Timeout, cooldown: o.Cooldown, name: o.Name,
		rec: o.Recorder, onError: o.OnError, now: o.Now,
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
	if s.skipping() {
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
	s.succeeded()
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

// invalidate never fails the caller: the store has already answered.
func (s *Store) invalidate(ctx context.Context, id int64) {
	entry, gen := s.keys(id)
	b := make([]byte, 12)
	rand.Read(b)
	// Detached from the request's cancellation: a client that hangs up
	// right after its write must not leave a stale entry behind.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	if err := invalidate.Run(rctx, s.rdb, []string{entry, gen}, hex.EncodeToString(b), s.genTTL.Milliseconds()).Err(); err != nil {
		s.failed(ctx, fmt.Errorf("rediscache: invalidate item %d: %w", id, err))
		return
	}
	s.succeeded()
}

func (s *Store) count(result string) {
	if s.rec != nil {
		s.rec.CacheRequest(s.name, result)
	}
}

func (s *Store) skipping() bool {
	return s.failing.Load() && s.now().UnixNano() < s.skipUntil.Load()
}

// failed starts a cooldown. A caller that went away is not Redis's fault.
func (s *Store) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	if s.cooldown > 0 {
		s.skipUntil.Store(s.now().Add(s.cooldown).UnixNano())
	}
	s.failing.Store(true)
	if s.onError != nil {
		s.onError(err)
	}
}

func (s *Store) succeeded() {
	if s.failing.Load() && s.failing.CompareAndSwap(true, false) && s.onError != nil {
		s.onError(nil)
	}
}
