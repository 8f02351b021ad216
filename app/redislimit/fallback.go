package redislimit

import (
	"context"
	"fmt"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/internal/cooldown"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
)

// Mode is what Fallback does with a decision the shared limiter cannot make.
type Mode string

const (
	// FailOpen decides with the in-process limiter at the same limits: the
	// service stays available and each instance still enforces the quota on
	// its own (so across N instances a client may get up to N times it).
	FailOpen Mode = "open"
	// FailClosed refuses (429 with Retry-After) every request the shared
	// limiter cannot decide: a global quota is never exceeded, at the price
	// of turning a Redis outage into refused requests. Suits quotas that
	// guard something costly, such as login attempts.
	FailClosed Mode = "closed"
)

// ParseMode parses "open" or "closed".
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case FailOpen, FailClosed:
		return m, nil
	}
	return "", fmt.Errorf("rate limit failure mode %q: want open or closed", s)
}

// ClosedRetryAfter is the Retry-After given to requests refused in
// FailClosed mode: long enough not to invite a retry storm, short enough to
// try again soon after Redis returns.
const ClosedRetryAfter = time.Second

// DefaultCooldown is how long Fallback stops asking the shared limiter after
// it failed, unless FallbackOptions.Cooldown is set.
const DefaultCooldown = time.Second

// Recorder receives Fallback's events. *Metrics satisfies it
// (app_ratelimit_fallback_total{mode}).
type Recorder interface {
	// RateLimitFallback counts one decision made without the shared limiter.
	RateLimitFallback(mode string)
}

// FallbackOptions configures NewFallback. The zero value means FailOpen.
type FallbackOptions struct {
	Mode Mode
	// Cooldown: after the shared limiter fails, decide locally for this long
	// before trying it again (default DefaultCooldown), so an outage costs
	// each request nothing instead of a timeout. Negative disables it.
	Cooldown time.Duration
	// Recorder counts fallback decisions; nil records nothing.
	Recorder Recorder
	// OnError, when set, is called with each shared-limiter error and with
	// nil when it answers again after failing (for logs and health).
	OnError func(error)
	// Now is the clock for the cooldown; nil means time.Now.
	Now func() time.Time
}

// Fallback is a ratelimit.Limiter that asks a shared limiter (a Redis
// Limiter) and, when that fails, decides by its Mode. It never returns an
// error, so no rate-limit backend outage becomes a 5xx. It is safe for
// concurrent use.
type Fallback struct {
	shared, local ratelimit.Limiter
	mode          Mode
	rec           Recorder
	breaker       cooldown.Breaker // skips the shared limiter for a cooldown after it fails
}

var _ ratelimit.Limiter = (*Fallback)(nil)

// NewFallback returns a Fallback over shared. local decides in FailOpen
// mode; nil means a new ratelimit.Memory.
func NewFallback(shared, local ratelimit.Limiter, o FallbackOptions) *Fallback {
	if o.Mode == "" {
		o.Mode = FailOpen
	}
	if o.Cooldown == 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if local == nil {
		local = ratelimit.NewMemory(o.Now)
	}
	return &Fallback{shared: shared, local: local, mode: o.Mode, rec: o.Recorder,
		breaker: cooldown.Breaker{Cooldown: o.Cooldown, OnError: o.OnError, Now: o.Now}}
}

// Mode returns the configured failure mode.
func (f *Fallback) Mode() Mode { return f.mode }

// Allow implements ratelimit.Limiter; its error is always nil.
func (f *Fallback) Allow(ctx context.Context, key string, l ratelimit.Limit) (ratelimit.Decision, error) {
	if !f.breaker.Skipping() {
		d, err := f.shared.Allow(ctx, key, l)
		if err == nil {
			f.breaker.Succeeded()
			return d, nil
		}
		if ctx.Err() != nil {
			// The request is gone; nobody reads this decision and the
			// backend is not to blame.
			return ratelimit.Decision{Allowed: false, Limit: l.Burst, RetryAfter: ClosedRetryAfter}, nil
		}
		f.breaker.Failed(err)
	}
	if f.rec != nil {
		f.rec.RateLimitFallback(string(f.mode))
	}
	if f.mode == FailClosed {
		return ratelimit.Decision{Allowed: false, Limit: max(l.Burst, 0), RetryAfter: ClosedRetryAfter,
			ResetAfter: ClosedRetryAfter}, nil
	}
	d, err := f.local.Allow(ctx, key, l)
	if err != nil {
		// An in-process limiter does not fail; if one ever does, stay open.
		return ratelimit.Decision{Allowed: true, Limit: l.Burst}, nil
	}
	return d, nil
}
