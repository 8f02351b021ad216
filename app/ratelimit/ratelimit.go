// Package ratelimit defines the rate limiter contract the API's middleware
// consumes, and its in-process implementation. Distributed backends (for
// example app/redislimit) implement Limiter in their own packages.
//
// It imports only the standard library (TestImports).
package ratelimit

import (
	"context"
	"time"
)

// Limit is a quota: Rate events per Period, with bursts of up to Burst events.
// The zero Limit allows nothing.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Decision is the outcome of one Allow call, with the values the middleware
// writes into Retry-After and RateLimit-* headers.
type Decision struct {
	Allowed    bool
	Limit      int           // the quota's burst size (RateLimit-Limit)
	Remaining  int           // requests left now (RateLimit-Remaining)
	RetryAfter time.Duration // when Allowed is false: wait this long
	ResetAfter time.Duration // until the bucket is full again (RateLimit-Reset)
}

// Limiter decides whether one more event for key fits within l.
// Implementations are safe for concurrent use. An error means the backend
// could not decide (for example Redis is down); the caller chooses to fail
// open or closed.
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) (Decision, error)
}
