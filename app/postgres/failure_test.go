package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/internal/tcpproxy"
	"github.com/glasshouse-dev/glasshouse/app/postgres"
	"github.com/glasshouse-dev/glasshouse/app/postgres/pgtest"
)

// proxied opens a store that reaches a fresh database through a proxy the
// test can cut.
func proxied(t *testing.T, cfg postgres.Config) (*postgres.Store, *tcpproxy.Proxy, string) {
	t.Helper()
	direct := pgtest.NewDatabase(t)
	p, err := tcpproxy.Start(pgtest.Host(t, direct))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	cfg.URL = pgtest.WithHost(t, direct, p.Addr())
	return open(t, cfg), p, direct
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < within {
		if err = f(); err == nil {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: last error %v", what, within, err)
	return 0
}

// timed runs f and fails the test if it has not returned within limit (a
// hang), which is far above the configured timeouts: the point is "bounded",
// not a latency target.
func timed(t *testing.T, limit time.Duration, f func() error) (time.Duration, error) {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f() }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(limit):
		t.Fatalf("call still running after %v: it hangs instead of failing fast", limit)
		return 0, nil
	}
}

func TestDatabaseDownAndBack(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode tcpproxy.Mode
	}{{"refused", tcpproxy.Refuse}, {"hung", tcpproxy.Blackhole}} {
		t.Run(mode.name, func(t *testing.T) {
			s, p, _ := proxied(t, postgres.Config{QueryTimeout: time.Second, ConnectTimeout: 500 * time.Millisecond})
			ctx := t.Context()
			u := newUser(t, s, "owner")
			it := app.Item{OwnerID: u.ID, Name: "before"}
			if err := s.CreateItem(ctx, &it); err != nil {
				t.Fatal(err)
			}

			p.Set(mode.mode)
			// Every kind of call fails with ErrUnavailable, bounded by the
			// query timeout rather than hanging.
			calls := map[string]func() error{
				"ping": func() error { return s.Ping(ctx) },
				"read": func() error { _, err := s.Item(ctx, u.ID, it.ID); return err },
				"list": func() error { _, _, err := s.ListItems(ctx, u.ID, app.Page{Limit: 10}); return err },
				"write": func() error {
					return s.CreateItem(ctx, &app.Item{OwnerID: u.ID, Name: "during"})
				},
			}
			for name, call := range calls {
				took, err := timed(t, 15*time.Second, call)
				if !errors.Is(err, app.ErrUnavailable) {
					t.Errorf("%s while down: got %v, want ErrUnavailable", name, err)
				}
				t.Logf("%s while down failed after %v: %v", name, took.Round(time.Millisecond), err)
			}

			p.Set(tcpproxy.Forward)
			took := eventually(t, 5*time.Second, "recover", func() error {
				_, err := s.Item(ctx, u.ID, it.ID)
				return err
			})
			t.Logf("recovered %v after the database came back", took.Round(time.Millisecond))
		})
	}
}

// Writers keep going while the database drops out and returns: every write
// acknowledged to a caller is stored exactly once, and nothing is stored
// twice. A write whose connection broke after it was sent may or may not
// have committed (the caller saw an error and would retry with its own
// idempotency); the test allows that but never a duplicate.
func TestNoWriteLostOrDuplicated(t *testing.T) {
	s, p, direct := proxied(t, postgres.Config{QueryTimeout: time.Second, ConnectTimeout: 500 * time.Millisecond})
	ctx := t.Context()
	u := newUser(t, s, "writer")

	var (
		mu        sync.Mutex
		acked     = map[string]int64{}
		attempted []string
		failed    atomic.Int64
		seq       atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", w, seq.Add(1))
				mu.Lock()
				attempted = append(attempted, name)
				mu.Unlock()
				it := app.Item{OwnerID: u.ID, Name: name}
				if err := s.CreateItem(ctx, &it); err != nil {
					if !errors.Is(err, app.ErrUnavailable) {
						t.Errorf("write %s: %v, want nil or ErrUnavailable", name, err)
					}
					failed.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[name] = it.ID
				mu.Unlock()
				time.Sleep(2 * time.Millisecond) // the server is shared with other tests
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	p.Set(tcpproxy.Refuse)
	time.Sleep(700 * time.Millisecond)
	p.Set(tcpproxy.Forward)
	eventually(t, 5*time.Second, "recover", func() error { return s.Ping(ctx) })
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Count through a connection that never went through the proxy.
	check, err := postgres.Open(ctx, postgres.Config{URL: direct, MinConns: 1, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	rows, err := check.Pool().Query(ctx, `SELECT name, count(*), min(id) FROM items WHERE owner_id = $1 GROUP BY name`, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int64{}
	for rows.Next() {
		var (
			name string
			n    int
			id   int64
		)
		if err := rows.Scan(&name, &n, &id); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("item %s stored %d times", name, n)
		}
		stored[name] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for name, id := range acked {
		if got, ok := stored[name]; !ok || got != id {
			t.Errorf("acknowledged write %s (id %d) lost: stored id %d, present %v", name, id, got, ok)
		}
	}
	inDoubt := len(stored) - len(acked)
	if inDoubt < 0 || len(stored) > len(attempted) {
		t.Errorf("stored %d, acknowledged %d, attempted %d", len(stored), len(acked), len(attempted))
	}
	if failed.Load() == 0 {
		t.Error("no write failed during the outage: the cut did not happen")
	}
	t.Logf("attempted %d, acknowledged %d, failed %d, stored %d (in doubt: %d)",
		len(attempted), len(acked), failed.Load(), len(stored), inDoubt)
}

// Closing the store while calls are waiting ends them with ErrUnavailable.
func TestClosedStoreIsUnavailable(t *testing.T) {
	s := open(t, postgres.Config{})
	s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.UserByID(ctx, 1); !errors.Is(err, app.ErrUnavailable) {
		t.Errorf("after close: got %v, want ErrUnavailable", err)
	}
}
