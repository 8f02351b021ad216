// Package redistest connects integration tests to the Redis server named by
// TEST_REDIS_URL and keeps tests apart: each gets its own key prefix, and
// its keys are deleted when it ends (never FLUSHALL: the server is shared).
// Tests that must stall Redis start their own server with StartServer.
//
// It is for tests only.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/internal/freeport"
	"github.com/glasshouse-dev/glasshouse/internal/integration"
	"github.com/glasshouse-dev/glasshouse/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// EnvVar names the variable holding the test server's URL.
const EnvVar = "TEST_REDIS_URL"

// URL returns TEST_REDIS_URL or skips t with a message saying how to run it.
func URL(t testing.TB) string {
	t.Helper()
	return integration.URL(t, EnvVar, "Redis", "redis://127.0.0.1:56379/0")
}

// HangGuard is the per-call timeout of tests that need Redis to answer:
// only a hang reaches it (testenv.RedisHangGuard says why).
const HangGuard = testenv.RedisHangGuard

// Options returns client options for the test server with addr (host:port)
// replacing its address when addr is not empty (to go through a proxy), set
// up the way production sets them for degradable use: calls honour the
// context, no retries, one dial attempt. The client's own timeouts are
// HangGuard, so the timeout of the code under test (its context deadline)
// is what bounds each call.
func Options(t testing.TB, addr string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatalf("redistest: %s: %v", EnvVar, err)
	}
	if addr != "" {
		o.Addr = addr
	}
	Degradable(o, HangGuard)
	o.PoolSize = 8
	return o
}

// Degradable sets o up the way production sets a client for degradable
// use: calls honour the context, no retries, one dial attempt, and timeout
// as the client's dial, read, write and pool timeouts.
func Degradable(o *redis.Options, timeout time.Duration) {
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
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

// Server is a redis-server process of the test's own, for tests that must
// stall or stop Redis: the shared server at TEST_REDIS_URL is never paused.
type Server struct {
	// Addr is the host:port it listens on (loopback).
	Addr string
	cmd  *exec.Cmd
}

// StartServer starts redis-server on a free loopback port, without
// persistence, and waits until it answers PING. It is stopped (resumed
// first if stalled) when t ends. A missing redis-server binary skips t
// through integration.Skip.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		integration.Skip(t, "redis-server not on PATH (apt-get install redis-server, as .ci/run does): %v", err)
	}
	addr := freeport.Addr(t)
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("redistest: start redis-server: %v", err)
	}
	s := &Server{Addr: addr, cmd: cmd}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redistest: redis-server on %s not answering after 30s: %v\n%s", addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL returns a redis:// URL for database 0 of s.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Stall stops the process (SIGSTOP): connections stay open and the kernel
// still accepts bytes, but nothing is answered, as with a hung server.
func (s *Server) Stall(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("redistest: SIGSTOP: %v", err)
	}
}

// Resume continues a stalled process (SIGCONT).
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("redistest: SIGCONT: %v", err)
	}
}
