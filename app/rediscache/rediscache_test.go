package rediscache_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/internal/redistest"
	"github.com/glasshouse-dev/glasshouse/app/internal/tcpproxy"
	"github.com/glasshouse-dev/glasshouse/app/postgres"
	"github.com/glasshouse-dev/glasshouse/app/postgres/pgtest"
	"github.com/glasshouse-dev/glasshouse/app/rediscache"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
	"github.com/glasshouse-dev/glasshouse/app/storetest"
)

// counter is a Recorder.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) CacheRequest(cache, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[cache+"/"+result]++
}

func (c *counter) get(key string) int { c.mu.Lock(); defer c.mu.Unlock(); return c.n[key] }

func openSQLite(t *testing.T) app.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixture is a cache over a SQLite store with a user and an item.
type fixture struct {
	store app.Store // underneath
	cache *rediscache.Store
	rec   *counter
	user  app.User
	item  app.Item
}

// newFixture returns a fixture whose cache uses rdb and o. Unless o sets a
// Timeout, Redis calls get redistest.HangGuard: the tests count hits and
// misses, and the default (100 ms) can expire on a loaded machine and turn
// a hit into an error and a cooldown.
func newFixture(t *testing.T, rdb rediscache.Client, o rediscache.Options) *fixture {
	t.Helper()
	f := &fixture{store: openSQLite(t), rec: &counter{}}
	t.Cleanup(func() { f.store.Close() })
	if o.Recorder == nil {
		o.Recorder = f.rec
	}
	if o.Timeout == 0 {
		o.Timeout = redistest.HangGuard
	}
	f.cache = rediscache.New(f.store, rdb, o)
	ctx := t.Context()
	f.user = app.User{Username: "owner", Email: "owner@example.com", PasswordHash: "h"}
	if err := f.cache.CreateUser(ctx, &f.user); err != nil {
		t.Fatal(err)
	}
	f.item = app.Item{OwnerID: f.user.ID, Name: "first", Description: "d"}
	if err := f.cache.CreateItem(ctx, &f.item); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) read(t *testing.T) app.Item {
	t.Helper()
	it, err := f.cache.Item(t.Context(), f.user.ID, f.item.ID)
	if err != nil {
		t.Fatalf("Item: %v", err)
	}
	return it
}

// Without any Redis server the cache is a transparent pass-through: reads
// are answered by the store, counted as errors, and nothing fails.
func TestUnreachableRedisIsBypassed(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond,
		ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
	defer rdb.Close()
	var (
		mu     sync.Mutex
		events []error
	)
	f := newFixture(t, rdb, rediscache.Options{OnError: func(err error) { mu.Lock(); events = append(events, err); mu.Unlock() }})
	ctx := t.Context()
	for range 3 {
		if got := f.read(t); got != f.item {
			t.Fatalf("read %+v, want %+v", got, f.item)
		}
	}
	upd := app.Item{ID: f.item.ID, OwnerID: f.user.ID, Name: "renamed"}
	if err := f.cache.UpdateItem(ctx, &upd); err != nil {
		t.Fatalf("update with Redis down: %v", err)
	}
	if got := f.read(t); got.Name != "renamed" {
		t.Errorf("read after update = %+v", got)
	}
	if err := f.cache.DeleteItem(ctx, f.user.ID, f.item.ID); err != nil {
		t.Fatalf("delete with Redis down: %v", err)
	}
	if _, err := f.cache.Item(ctx, f.user.ID, f.item.ID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("read after delete: %v", err)
	}
	if f.rec.get("items/error") != 5 || f.rec.get("items/hit")+f.rec.get("items/miss") != 0 {
		t.Errorf("counts = %v, want 5 errors", f.rec.n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) == 0 || events[0] == nil {
		t.Errorf("OnError events = %v, want the outage reported", events)
	}
}

func TestConformanceOverSQLite(t *testing.T) {
	redistest.URL(t)
	storetest.Run(t, func(t *testing.T) app.Store {
		return rediscache.New(openSQLite(t), redistest.Client(t, ""), rediscache.Options{Prefix: redistest.Prefix(t)})
	})
}

func TestConformanceOverPostgres(t *testing.T) {
	redistest.URL(t)
	pgtest.AdminURL(t)
	storetest.Run(t, func(t *testing.T) app.Store {
		s, err := postgres.Open(t.Context(), postgres.Config{URL: pgtest.NewDatabase(t), MinConns: 1, MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		return rediscache.New(s, redistest.Client(t, ""), rediscache.Options{Prefix: redistest.Prefix(t)})
	})
}

func TestReadThroughAndInvalidation(t *testing.T) {
	rdb := redistest.Client(t, "")
	prefix := redistest.Prefix(t)
	f := newFixture(t, rdb, rediscache.Options{Prefix: prefix, TTL: time.Minute})
	ctx := t.Context()

	f.read(t)
	f.read(t)
	if f.rec.get("items/miss") != 1 || f.rec.get("items/hit") != 1 {
		t.Fatalf("counts after two reads = %v, want 1 miss then 1 hit", f.rec.n)
	}
	key := prefix + "{item:" + strconv.FormatInt(f.item.ID, 10) + "}"
	if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("entry TTL = %v, %v; want within (0, 1m]", ttl, err)
	}

	// A hit still answers "not found" to another user.
	if _, err := f.cache.Item(ctx, f.user.ID+1000, f.item.ID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("another user's read from a warm cache: %v, want ErrNotFound", err)
	}

	// A write made behind the cache's back is not seen until invalidated:
	// proof that reads are really served from Redis.
	sneaky := app.Item{ID: f.item.ID, OwnerID: f.user.ID, Name: "sneaky"}
	if err := f.store.UpdateItem(ctx, &sneaky); err != nil {
		t.Fatal(err)
	}
	if got := f.read(t); got.Name != "first" {
		t.Fatalf("read = %q, want the cached %q", got.Name, "first")
	}

	upd := app.Item{ID: f.item.ID, OwnerID: f.user.ID, Name: "second"}
	if err := f.cache.UpdateItem(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	if got := f.read(t); got.Name != "second" {
		t.Errorf("read after update = %q, want second", got.Name)
	}
	if err := f.cache.DeleteItem(ctx, f.user.ID, f.item.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cache.Item(ctx, f.user.ID, f.item.ID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("read after delete: %v", err)
	}
	if n, _ := rdb.Exists(ctx, key).Result(); n != 0 {
		t.Errorf("entry still in Redis after delete")
	}
}

// Two instances share one Redis: a write through one invalidates what the
// other reads.
func TestInvalidationAcrossInstances(t *testing.T) {
	prefix := redistest.Prefix(t)
	f := newFixture(t, redistest.Client(t, ""), rediscache.Options{Prefix: prefix})
	other := rediscache.New(f.store, redistest.Client(t, ""), rediscache.Options{Prefix: prefix, Timeout: redistest.HangGuard})
	ctx := t.Context()
	if _, err := other.Item(ctx, f.user.ID, f.item.ID); err != nil {
		t.Fatal(err)
	}
	upd := app.Item{ID: f.item.ID, OwnerID: f.user.ID, Name: "from A"}
	if err := f.cache.UpdateItem(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	if got, err := other.Item(ctx, f.user.ID, f.item.ID); err != nil || got.Name != "from A" {
		t.Errorf("instance B read %+v, %v after A's update", got, err)
	}
}

// gated is a store whose Item reads can be held after reading, to put a
// write between a reader's store read and its cache fill.
type gated struct {
	app.Store
	read, release chan struct{}
}

func (g *gated) Item(ctx context.Context, ownerID, id int64) (app.Item, error) {
	it, err := g.Store.Item(ctx, ownerID, id)
	if g.read != nil {
		g.read <- struct{}{}
		<-g.release
	}
	return it, err
}

// A reader that read the old value before a write finished must not put it
// back into the cache after the write's invalidation.
func TestSlowReaderCannotCacheStaleValue(t *testing.T) {
	rdb := redistest.Client(t, "")
	prefix := redistest.Prefix(t)
	base := newFixture(t, rdb, rediscache.Options{Prefix: prefix})
	g := &gated{Store: base.store, read: make(chan struct{}), release: make(chan struct{})}
	c := rediscache.New(g, rdb, rediscache.Options{Prefix: prefix, Timeout: redistest.HangGuard})
	ctx := t.Context()

	got := make(chan app.Item)
	go func() {
		it, _ := c.Item(ctx, base.user.ID, base.item.ID) // misses, reads "first", then waits
		got <- it
	}()
	<-g.read
	upd := app.Item{ID: base.item.ID, OwnerID: base.user.ID, Name: "newer"}
	if err := c.UpdateItem(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	close(g.release) // the slow reader now tries to fill with "first"
	if it := <-got; it.Name != "first" {
		t.Fatalf("slow reader got %q", it.Name)
	}
	g.read = nil
	if it, err := c.Item(ctx, base.user.ID, base.item.ID); err != nil || it.Name != "newer" {
		t.Errorf("read after the race = %+v, %v; want newer (a stale fill was cached)", it, err)
	}
}

func TestRedisDownAndBack(t *testing.T) {
	p, err := tcpproxy.Start(redistest.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var (
		mu     sync.Mutex
		events []error
	)
	// The default timeout: cut off, reads must give up on Redis quickly.
	f := newFixture(t, redistest.Client(t, p.Addr()), rediscache.Options{
		Prefix: redistest.Prefix(t), Timeout: rediscache.DefaultTimeout, Cooldown: 200 * time.Millisecond,
		OnError: func(err error) { mu.Lock(); events = append(events, err); mu.Unlock() },
	})
	ctx := t.Context()
	f.read(t)
	f.read(t) // hit

	for _, mode := range []tcpproxy.Mode{tcpproxy.Refuse, tcpproxy.Blackhole} {
		p.Set(mode)
		before := f.rec.get("items/error")
		for range 5 {
			start := time.Now()
			if got := f.read(t); got != f.item {
				t.Fatalf("read with Redis down (mode %d) = %+v", mode, got)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("read with Redis down took %v: the cache is holding requests", took)
			}
		}
		if n := f.rec.get("items/error") - before; n != 5 {
			t.Errorf("mode %d: %d reads counted as errors, want 5", mode, n)
		}
		// A write while Redis is down succeeds; its invalidation is lost.
		upd := app.Item{ID: f.item.ID, OwnerID: f.user.ID, Name: f.item.Name, Description: "x"}
		if err := f.cache.UpdateItem(ctx, &upd); err != nil {
			t.Errorf("update with Redis down: %v", err)
		}
		f.item = upd
	}

	p.Set(tcpproxy.Forward)
	deadline := time.Now().Add(5 * time.Second)
	for f.rec.get("items/hit") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("cache not used again within 5s of Redis returning; counts %v", f.rec.n)
		}
		time.Sleep(50 * time.Millisecond)
		if _, err := f.cache.Item(ctx, f.user.ID, f.item.ID); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) < 2 || events[0] == nil || events[len(events)-1] != nil {
		t.Errorf("OnError events = %v, want errors then nil (recovered)", events)
	}
}

// stallable is a Redis server of the test's own, which the test can stall
// (SIGSTOP) without disturbing the shared one, and the client a cache uses
// for it. That client is one of two clients of the server: while Redis
// answers, one whose timeouts are only a hang guard (a call slowed by a
// loaded machine must not turn a hit the test counts into an error), and
// while it is stalled, one that gives up after 200 ms, so that the calls
// made meanwhile fail quickly. Stall and Resume switch between them, from
// the test's goroutine, between the cache's calls.
type stallable struct {
	*redis.Client // the one in use
	srv           *redistest.Server
	up, stalled   *redis.Client
}

func (s *stallable) Stall(t *testing.T) {
	t.Helper()
	s.Client = s.stalled
	s.srv.Stall(t)
}

func (s *stallable) Resume(t *testing.T) {
	t.Helper()
	s.srv.Resume(t)
	s.Client = s.up
}

// stalledFixture is a fixture whose cache uses a stallable Redis. The
// cache's own timeout is the fixture's hang guard: the clients' timeouts
// bound its calls.
func stalledFixture(t *testing.T, o rediscache.Options) (*fixture, *stallable) {
	t.Helper()
	srv := redistest.StartServer(t)
	client := func(timeout time.Duration) *redis.Client {
		o := &redis.Options{Addr: srv.Addr}
		redistest.Degradable(o, timeout)
		c := redis.NewClient(o)
		t.Cleanup(func() { c.Close() })
		return c
	}
	s := &stallable{srv: srv, up: client(redistest.HangGuard), stalled: client(200 * time.Millisecond)}
	s.Client = s.up
	return newFixture(t, s, o), s
}

// An update and a delete whose invalidations fail while Redis is stalled
// are never followed by a stale read: once Redis answers again, the first
// read of each item purges it, and the cache then serves the new value.
func TestFailedInvalidationIsPurgedBeforeReads(t *testing.T) {
	f, rs := stalledFixture(t, rediscache.Options{Cooldown: -1})
	ctx := t.Context()
	doomed := app.Item{OwnerID: f.user.ID, Name: "doomed"}
	if err := f.cache.CreateItem(ctx, &doomed); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		f.read(t)
		if _, err := f.cache.Item(ctx, f.user.ID, doomed.ID); err != nil {
			t.Fatal(err)
		}
	}
	if hits := f.rec.get("items/hit"); hits != 2 {
		t.Fatalf("hits after warm-up = %d, want 2", hits)
	}

	rs.Stall(t)
	upd := app.Item{ID: f.item.ID, OwnerID: f.user.ID, Name: "renamed"}
	if err := f.cache.UpdateItem(ctx, &upd); err != nil {
		t.Fatalf("update with Redis stalled: %v", err)
	}
	if err := f.cache.DeleteItem(ctx, f.user.ID, doomed.ID); err != nil {
		t.Fatalf("delete with Redis stalled: %v", err)
	}
	if got := f.cache.Pending(); got != 2 {
		t.Errorf("Pending() after two failed invalidations = %d, want 2", got)
	}
	// Still stalled: the purge fails, so the read bypasses the cache.
	if got := f.read(t); got.Name != "renamed" {
		t.Errorf("read with Redis stalled = %q, want renamed", got.Name)
	}
	rs.Resume(t)

	for range 3 {
		if got := f.read(t); got.Name != "renamed" {
			t.Errorf("read after Redis resumed = %q, want renamed", got.Name)
		}
		if _, err := f.cache.Item(ctx, f.user.ID, doomed.ID); !errors.Is(err, app.ErrNotFound) {
			t.Errorf("read of the deleted item after Redis resumed = %v, want ErrNotFound", err)
		}
	}
	if got := f.cache.Pending(); got != 0 {
		t.Errorf("Pending() after the purges = %d, want 0", got)
	}
	if hits := f.rec.get("items/hit"); hits < 4 {
		t.Errorf("hits = %d, want the renamed item served from the cache again (>= 4)", hits)
	}
}

// Past MaxPending recorded failures the cache stops reading Redis until
// every entry that could be stale has expired (TTL plus a minute), then
// serves hits again.
func TestPendingOverflowBypassesCacheUntilEntriesExpire(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f, rs := stalledFixture(t, rediscache.Options{Cooldown: -1, MaxPending: 1, TTL: 300 * time.Millisecond, Now: clock})
	ctx := t.Context()
	other := app.Item{OwnerID: f.user.ID, Name: "other"}
	if err := f.cache.CreateItem(ctx, &other); err != nil {
		t.Fatal(err)
	}
	f.read(t)
	f.read(t)

	rs.Stall(t)
	for _, it := range []app.Item{{ID: f.item.ID, OwnerID: f.user.ID, Name: "v2"}, {ID: other.ID, OwnerID: f.user.ID, Name: "o2"}} {
		if err := f.cache.UpdateItem(ctx, &it); err != nil {
			t.Fatal(err)
		}
	}
	rs.Resume(t)
	if got := f.cache.Pending(); got != 0 {
		t.Errorf("Pending() after overflow = %d, want 0 (covered by the bypass)", got)
	}
	hits, errs := f.rec.get("items/hit"), f.rec.get("items/error")
	for range 3 {
		if got := f.read(t); got.Name != "v2" {
			t.Errorf("read during the bypass = %q, want v2", got.Name)
		}
	}
	if f.rec.get("items/hit") != hits || f.rec.get("items/error") != errs+3 {
		t.Errorf("counts during the bypass = %v; want 3 more errors, no hits", f.rec.n)
	}
	// The stale entry expires in Redis (real time); the bypass ends on the
	// cache's clock.
	rdb := redis.NewClient(&redis.Options{Addr: rs.srv.Addr})
	defer rdb.Close()
	entry := rediscache.DefaultPrefix + "{item:" + strconv.FormatInt(f.item.ID, 10) + "}"
	for deadline := time.Now().Add(30 * time.Second); rdb.Exists(ctx, entry).Val() != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("cache entry did not expire in Redis within 30s")
		}
	}
	mu.Lock()
	now = now.Add(time.Minute + time.Second)
	mu.Unlock()
	// A read fills the cache and the next one hits, unless a slow moment of
	// a busy machine let the 300 ms entry expire in between: then try again.
	for deadline := time.Now().Add(10 * time.Second); f.rec.get("items/hit") == hits; {
		for range 2 {
			if got := f.read(t); got.Name != "v2" {
				t.Fatalf("after the bypass: read %q, want v2", got.Name)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the bypass: no cache hit in 10s, counts %v", f.rec.n)
		}
	}
}
