package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/postgres"
	"github.com/glasshouse-dev/glasshouse/app/postgres/pgtest"
)

// open returns a store on a fresh database with a small pool (the test
// server is shared), closed when t ends.
func open(t *testing.T, cfg postgres.Config) *postgres.Store {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = pgtest.NewDatabase(t)
	}
	if cfg.MaxConns == 0 {
		cfg.MinConns, cfg.MaxConns = 1, 8
	}
	s, err := postgres.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newUser(t *testing.T, s app.Store, name string) app.User {
	t.Helper()
	u := app.User{Username: name, Email: name + "@example.com", PasswordHash: "hash"}
	if err := s.CreateUser(t.Context(), &u); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u
}

func TestOpenConcurrentInstancesMigrateOnce(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const n = 4
	var (
		wg     sync.WaitGroup
		errs   = make([]error, n)
		stores = make([]*postgres.Store, n)
	)
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(t.Context(), postgres.Config{URL: url, MinConns: 1, MaxConns: 2})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	ms, err := postgres.Migrations()
	if err != nil || len(ms) == 0 {
		t.Fatalf("migrations: %v (%d)", err, len(ms))
	}
	var rows, distinct int
	if err := stores[0].Pool().QueryRow(t.Context(),
		`SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != len(ms) || distinct != len(ms) {
		t.Errorf("schema_migrations has %d rows (%d distinct), want %d", rows, distinct, len(ms))
	}
	// Running again changes nothing and the schema works.
	if err := stores[1].Migrate(t.Context()); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	newUser(t, stores[2], "alice")
	if _, err := stores[3].UserByUsername(t.Context(), "ALICE"); err != nil {
		t.Errorf("user written by one instance not read by another: %v", err)
	}
}

func TestPoolSettingsReachTheServer(t *testing.T) {
	s := open(t, postgres.Config{ApplicationName: "gh-settings-test", QueryTimeout: 1234 * time.Millisecond})
	var name, timeout string
	if err := s.Pool().QueryRow(t.Context(), `SELECT current_setting('application_name'), current_setting('statement_timeout')`).
		Scan(&name, &timeout); err != nil {
		t.Fatal(err)
	}
	if name != "gh-settings-test" || timeout != "1234ms" {
		t.Errorf("application_name=%q statement_timeout=%q, want gh-settings-test and 1234ms", name, timeout)
	}
	var n int
	if err := s.Pool().QueryRow(t.Context(),
		`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gh-settings-test' AND datname = current_database()`).
		Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Errorf("pg_stat_activity shows %d connections named gh-settings-test", n)
	}
	if st := s.Pool().Stat(); st.MaxConns() != 8 {
		t.Errorf("max conns = %d, want 8", st.MaxConns())
	}
}

func TestStore(t *testing.T) {
	s := open(t, postgres.Config{Now: func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600)) }})
	ctx := t.Context()
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	if want := time.Date(2024, 5, 6, 6, 8, 9, 123456000, time.UTC); !alice.CreatedAt.Equal(want) || alice.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at = %v, want %v (UTC, microseconds)", alice.CreatedAt, want)
	}

	for _, u := range []app.User{
		{Username: "ALICE", Email: "new@example.com", PasswordHash: "h"},
		{Username: "carol", Email: "Bob@Example.com", PasswordHash: "h"},
	} {
		if err := s.CreateUser(ctx, &u); !errors.Is(err, app.ErrConflict) {
			t.Errorf("create %q/%q: got %v, want ErrConflict", u.Username, u.Email, err)
		}
	}
	got, err := s.UserByID(ctx, alice.ID)
	if err != nil || got != alice {
		t.Errorf("UserByID = %+v, %v; want %+v", got, err, alice)
	}
	if _, err := s.UserByID(ctx, 999999); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("missing user: %v", err)
	}

	var ids []int64
	for i := range 5 {
		it := app.Item{OwnerID: alice.ID, Name: fmt.Sprintf("item %d", i), Description: "d"}
		if err := s.CreateItem(ctx, &it); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, it.ID)
	}
	other := app.Item{OwnerID: bob.ID, Name: "bob's"}
	if err := s.CreateItem(ctx, &other); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateItem(ctx, &app.Item{OwnerID: 424242, Name: "orphan"}); err == nil ||
		errors.Is(err, app.ErrConflict) || errors.Is(err, app.ErrNotFound) || errors.Is(err, app.ErrUnavailable) {
		t.Errorf("item for a missing owner: got %v, want a plain error", err)
	}

	page, total, err := s.ListItems(ctx, alice.ID, app.Page{Limit: 2, Offset: 3})
	if err != nil || total != 5 || len(page) != 2 || page[0].ID != ids[3] || page[1].ID != ids[4] {
		t.Errorf("page 2: %v, total %d, err %v", page, total, err)
	}
	page, total, err = s.ListItems(ctx, alice.ID, app.Page{Limit: 10, Offset: 50})
	if err != nil || total != 5 || len(page) != 0 || page == nil {
		t.Errorf("past the end: %v (nil=%v), total %d, err %v", page, page == nil, total, err)
	}
	page, total, err = s.ListItems(ctx, 777777, app.Page{Limit: 10})
	if err != nil || total != 0 || len(page) != 0 {
		t.Errorf("no items: %v, total %d, err %v", page, total, err)
	}

	if _, err := s.Item(ctx, bob.ID, ids[0]); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("bob reads alice's item: %v, want ErrNotFound", err)
	}
	upd := app.Item{ID: ids[0], OwnerID: bob.ID, Name: "stolen"}
	if err := s.UpdateItem(ctx, &upd); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("bob updates alice's item: %v, want ErrNotFound", err)
	}
	if err := s.DeleteItem(ctx, bob.ID, ids[0]); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("bob deletes alice's item: %v, want ErrNotFound", err)
	}
	upd = app.Item{ID: ids[0], OwnerID: alice.ID, Name: "renamed", Description: "new"}
	if err := s.UpdateItem(ctx, &upd); err != nil || upd.Name != "renamed" || upd.CreatedAt.IsZero() {
		t.Errorf("update: %+v, %v", upd, err)
	}
	if it, err := s.Item(ctx, alice.ID, ids[0]); err != nil || it != upd {
		t.Errorf("read after update: %+v, %v; want %+v", it, err, upd)
	}
	if err := s.DeleteItem(ctx, alice.ID, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteItem(ctx, alice.ID, ids[0]); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
}

// A statement stuck behind a lock ends at the query timeout as
// ErrUnavailable, instead of holding the request.
func TestQueryTimeout(t *testing.T) {
	// The set-up runs on a store with the default timeout, so a slow
	// moment of a busy machine cannot fail it; only the store under test
	// has the short one, and only the blocked statement is meant to reach
	// it. One second still leaves a ping plenty of time.
	url := pgtest.NewDatabase(t)
	setup := open(t, postgres.Config{URL: url})
	ctx := t.Context()
	u := newUser(t, setup, "locker")
	it := app.Item{OwnerID: u.ID, Name: "x"}
	if err := setup.CreateItem(ctx, &it); err != nil {
		t.Fatal(err)
	}
	s := open(t, postgres.Config{URL: url, QueryTimeout: time.Second})
	tx, err := setup.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT 1 FROM items WHERE id = $1 FOR UPDATE`, it.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		upd := app.Item{ID: it.ID, OwnerID: u.ID, Name: "blocked"}
		done <- s.UpdateItem(ctx, &upd)
	}()
	select {
	case err := <-done:
		if !errors.Is(err, app.ErrUnavailable) {
			t.Fatalf("blocked update: got %v, want ErrUnavailable", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("blocked update did not end at the query timeout")
	}
	// The pool is still usable afterwards.
	if err := s.Ping(ctx); err != nil {
		t.Errorf("ping after timeout: %v", err)
	}
}

func TestQuerySpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s := open(t, postgres.Config{TracerProvider: tp})
	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	u := newUser(t, s, "spanner")
	if _, err := s.Item(ctx, u.ID, 12345); !errors.Is(err, app.ErrNotFound) {
		t.Fatalf("item: %v", err)
	}
	parent.End()

	var found bool
	for _, sp := range rec.Ended() {
		if sp.Name() != "SELECT items" || sp.Parent().SpanID() != parent.SpanContext().SpanID() {
			continue
		}
		found = true
		attrs := map[string]string{}
		for _, kv := range sp.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		for k, want := range map[string]string{
			"db.system.name":     "postgresql",
			"db.operation.name":  "SELECT",
			"db.collection.name": "items",
		} {
			if attrs[k] != want {
				t.Errorf("span attribute %s = %q, want %q", k, attrs[k], want)
			}
		}
		if attrs["db.namespace"] == "" || attrs["server.port"] == "" || attrs["db.query.text"] == "" {
			t.Errorf("span lacks namespace/port/query text: %v", attrs)
		}
	}
	if !found {
		var names []string
		for _, sp := range rec.Ended() {
			names = append(names, sp.Name())
		}
		t.Fatalf("no \"SELECT items\" child span of the request; spans: %v", names)
	}
}

// TestBatchSpan: CreateItems is one "BATCH INSERT items" span under the
// request, with the batch size.
func TestBatchSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s := open(t, postgres.Config{TracerProvider: tp})
	u := newUser(t, s, "batcher")
	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	items := []*app.Item{{OwnerID: u.ID, Name: "a"}, {OwnerID: u.ID, Name: "b"}, {OwnerID: u.ID, Name: "c"}}
	if err := s.CreateItems(ctx, items); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var names []string
	for _, sp := range rec.Ended() {
		names = append(names, sp.Name())
		if sp.Name() != "BATCH INSERT items" || sp.Parent().SpanID() != parent.SpanContext().SpanID() {
			continue
		}
		attrs := map[string]string{}
		for _, kv := range sp.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		for k, want := range map[string]string{
			"db.operation.name": "BATCH INSERT", "db.collection.name": "items", "db.operation.batch.size": "3",
		} {
			if attrs[k] != want {
				t.Errorf("span attribute %s = %q, want %q", k, attrs[k], want)
			}
		}
		return
	}
	t.Fatalf("no \"BATCH INSERT items\" child span of the request; spans: %v", names)
}

func TestOpenFailsClearlyWhenUnreachable(t *testing.T) {
	pgtest.AdminURL(t)
	start := time.Now()
	// Port 1 on loopback: nothing listens, connects are refused at once.
	_, err := postgres.Open(t.Context(), postgres.Config{
		URL: "postgres://u:hunter2@127.0.0.1:1/nope?sslmode=disable", StartTimeout: 500 * time.Millisecond})
	if !errors.Is(err, app.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	for _, want := range []string{`"nope"`, "127.0.0.1:1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
	t.Logf("gave up after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// An idempotency key is remembered for app.IdempotencyWindow: within it a
// different request is refused, after it the key creates anew.
func TestIdempotencyKeyExpires(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := open(t, postgres.Config{Now: clock})
	checkIdempotencyExpiry(t, s, s, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() })
}

func checkIdempotencyExpiry(t *testing.T, s app.Store, is app.IdempotentStore, advance func(time.Duration)) {
	t.Helper()
	ctx := t.Context()
	u := newUser(t, s, "expiry")
	key := app.IdempotencyKey{Key: "k", Fingerprint: "a"}
	first := app.Item{OwnerID: u.ID, Name: "first"}
	if _, err := is.CreateItemOnce(ctx, &first, key); err != nil {
		t.Fatal(err)
	}
	advance(app.IdempotencyWindow - time.Minute)
	other := app.Item{OwnerID: u.ID, Name: "other"}
	if _, err := is.CreateItemOnce(ctx, &other, app.IdempotencyKey{Key: "k", Fingerprint: "b"}); !errors.Is(err, app.ErrIdempotencyKeyReused) {
		t.Errorf("different request a minute before the key expires = %v, want ErrIdempotencyKeyReused", err)
	}
	advance(2 * time.Minute)
	replayed, err := is.CreateItemOnce(ctx, &other, app.IdempotencyKey{Key: "k", Fingerprint: "b"})
	if err != nil || replayed || other.ID == first.ID {
		t.Errorf("key reused after the window = %+v, %v, %v; want a new item", other, replayed, err)
	}
}
