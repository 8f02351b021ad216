// Package redistest connects integration tests to the Redis server named by
// TEST_REDIS_URL and keeps tests apart: each gets its own key prefix, and
// its keys are deleted when it ends (never FLUSHALL: the server is shared).
//
// It is for tests only.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/internal/integration"
	"github.com/redis/go-redis/v9"
)

// EnvVar names the variable holding the test server's URL.
const EnvVar = "TEST_REDIS_URL"

// URL returns TEST_REDIS_URL or skips t with a message saying how to run it.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvVar)
	if u == "" {
		integration.Skip(t, "%s not set; set it to a Redis URL (for example redis://127.0.0.1:56379/0, as .ci/run does) to run this integration test", EnvVar)
	}
	return u
}

// Options returns client options for the test server with addr (host:port)
// replacing its address when addr is not empty (to go through a proxy), set
// up the way production sets them for degradable use: short timeouts that
// honour the context, no retries, one dial attempt.
func Options(t testing.TB, addr string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatalf("redistest: %s: %v", EnvVar, err)
	}
	if addr != "" {
		o.Addr = addr
	}
	o.DialTimeout = 500 * time.Millisecond
	o.ReadTimeout = 500 * time.Millisecond
	o.WriteTimeout = 500 * time.Millisecond
	o.PoolTimeout = 500 * time.Millisecond
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.PoolSize = 8
	return o
}

// Client returns a client for the test server (or addr, see Options),
// closed when t ends.
func Client(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(Options(t, addr))
	t.Cleanup(func() { c.Close() })
	return c
}

// Prefix returns a key prefix unique to t; every key under it is deleted
// when t ends.
func Prefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	p := "test:" + hex.EncodeToString(b) + ":"
	o := Options(t, "")
	t.Cleanup(func() {
		c := redis.NewClient(o)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, p+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return p
}

// Addr returns the host:port of the test server.
func Addr(t testing.TB) string {
	t.Helper()
	return Options(t, "").Addr
}
