// Package cooldown holds Breaker, the failure state the Redis adapters
// (rediscache and redislimit) keep for Redis: after a failed call, the next
// calls skip Redis for a cooldown, so an outage costs requests neither
// errors nor timeouts; a callback hears of each failure and of the
// recovery. The two adapters never import each other, so the state lives
// here once instead of in each.
//
// It imports only the standard library (TestImports).
package cooldown

import (
	"sync/atomic"
	"time"
)

// Breaker records whether a dependency is failing and until when calls
// should skip it. Set its exported fields before first use, then do not
// change them; its methods are safe for concurrent use and lock-free, so the
// healthy path costs one atomic load. It must not be copied after first use.
type Breaker struct {
	// Cooldown is how long calls skip the dependency after a failure;
	// zero or negative means they never skip it.
	Cooldown time.Duration
	// OnError, when set, is called with each failure's error, and with nil
	// on the first success after a failure.
	OnError func(error)
	// Now is the clock for the cooldown; nil means time.Now.
	Now func() time.Time

	failing   atomic.Bool
	skipUntil atomic.Int64 // Unix nanoseconds
}

func (b *Breaker) now() time.Time {
	if b.Now == nil {
		return time.Now()
	}
	return b.Now()
}

// Skipping reports whether the dependency failed and its cooldown has not
// ended yet: the caller should not try it now.
func (b *Breaker) Skipping() bool {
	return b.failing.Load() && b.now().UnixNano() < b.skipUntil.Load()
}

// Failed records a failed call with err and starts a cooldown.
func (b *Breaker) Failed(err error) {
	if b.Cooldown > 0 {
		b.skipUntil.Store(b.now().Add(b.Cooldown).UnixNano())
	}
	b.failing.Store(true)
	if b.OnError != nil {
		b.OnError(err)
	}
}

// Succeeded records a successful call; the first one after a failure calls
// OnError(nil).
func (b *Breaker) Succeeded() {
	if b.failing.Load() && b.failing.CompareAndSwap(true, false) && b.OnError != nil {
		b.OnError(nil)
	}
}
