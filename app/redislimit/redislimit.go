// Package redislimit is a ratelimit.Limiter whose state lives in Redis, so a
// quota holds across every API instance sharing that Redis, and a Fallback
// wrapper that keeps deciding (in process, or by refusing) while Redis is
// unreachable.
//
// The algorithm is GCRA, the same one ratelimit.Memory runs, executed as one
// Lua script: a single round trip reads and updates the key atomically, and
// the script reads Redis's own clock so instances with skewed clocks agree.
//
// It imports app/ratelimit, app/internal/cooldown (the failure state it
// shares with rediscache), go-redis and the Prometheus client (for
// Metrics), never rediscache, httpapi or cmd (TestImports).
package redislimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
)

// gcra is the GCRA step for one key, in microseconds.
//
// KEYS[1] the bucket key. ARGV[1] the emission interval (Period/Rate),
// ARGV[2] the burst, ARGV[3] the current time, or "" to use Redis's TIME.
// It stores the theoretical arrival time (TAT) with an expiry at which the
// bucket is full again (so idle keys vanish), and returns
// {allowed 0|1, remaining, retry_after, reset_after}.
//
// Numbers are written with string.format("%d"): Lua 5.1 would otherwise
// print 16-digit microsecond timestamps in %.14g and lose precision.
var gcra = redis.NewScript(`
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
	local t = redis.call('TIME')
	now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local window = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local nxt = tat + interval
local earliest = nxt - window
if now < earliest then
	return {0, 0, string.format('%d', earliest - now), string.format('%d', tat - now)}
end
local ttl = math.ceil((nxt - now) / 1000)
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', ttl)
return {1, math.floor((window - (nxt - now)) / interval), '0', string.format('%d', nxt - now)}
`)

// DefaultPrefix is prepended to every key unless Options.Prefix is set.
const DefaultPrefix = "glasshouse:ratelimit:"

// DefaultTimeout bounds one Allow call unless Options.Timeout is set. A
// limiter that waits long on Redis would add its outage to every request.
const DefaultTimeout = 100 * time.Millisecond

// Options configures New. The zero value is usable.
type Options struct {
	// Prefix namespaces the keys (default DefaultPrefix), so several
	// services or tests can share one Redis.
	Prefix string
	// Timeout bounds each Allow call (default DefaultTimeout). The client
	// must have ContextTimeoutEnabled for go-redis to honour it.
	Timeout time.Duration
	// Now, when set, replaces Redis's clock (for tests comparing decisions
	// with ratelimit.Memory under a fake clock). Production leaves it nil.
	Now func() time.Time
}

// Limiter is a ratelimit.Limiter on Redis. It is safe for concurrent use.
type Limiter struct {
	rdb     redis.Scripter
	prefix  string
	timeout time.Duration
	now     func() time.Time
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter using rdb (a *redis.Client, ClusterClient or Ring).
func New(rdb redis.Scripter, o Options) *Limiter {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return &Limiter{rdb: rdb, prefix: o.Prefix, timeout: o.Timeout, now: o.Now}
}

// Allow implements ratelimit.Limiter with the same decisions as
// ratelimit.Memory (to the microsecond). A Limit with a non-positive Rate,
// Period or Burst allows nothing and does not touch Redis. Any Redis failure
// (down, timeout, script error) is returned as an error and the caller
// decides; Fallback does that.
func (l *Limiter) Allow(ctx context.Context, key string, lim ratelimit.Limit) (ratelimit.Decision, error) {
	if lim.Rate <= 0 || lim.Period <= 0 || lim.Burst <= 0 {
		return ratelimit.Decision{Allowed: false, Limit: max(lim.Burst, 0), RetryAfter: max(lim.Period, time.Second)}, nil
	}
	interval := max((lim.Period / time.Duration(lim.Rate)).Microseconds(), 1)
	now := ""
	if l.now != nil {
		now = fmt.Sprint(l.now().UnixMicro())
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	res, err := gcra.Run(ctx, l.rdb, []string{l.prefix + shortKey(key)}, interval, lim.Burst, now).Int64Slice()
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("redislimit: allow %q: %w", key, err)
	}
	if len(res) != 4 {
		return ratelimit.Decision{}, errors.New("redislimit: script returned a malformed reply")
	}
	return ratelimit.Decision{
		Allowed:    res[0] == 1,
		Limit:      lim.Burst,
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
		ResetAfter: time.Duration(res[3]) * time.Microsecond,
	}, nil
}

// maxKeyLen bounds the key bytes stored in Redis: keys carry client input
// (IP addresses, usernames), and a long one is replaced by its SHA-256.
const maxKeyLen = 128

func shortKey(key string) string {
	if len(key) <= maxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}
