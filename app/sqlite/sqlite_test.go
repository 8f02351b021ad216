package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
	"github.com/glasshouse-dev/glasshouse/app/storetest"
)

func open(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) app.Store { return open(t) })
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "re.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	u := app.User{Username: "alice", Email: "a@example.com", PasswordHash: "h"}
	if err := s.CreateUser(t.Context(), &u); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if _, err := s2.UserByUsername(t.Context(), "alice"); err != nil {
		t.Errorf("user lost across reopen: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, path := range []string{"", ":memory:", filepath.Join(t.TempDir(), "missing-dir", "x.db")} {
		if s, err := sqlite.Open(context.Background(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestStatsCountsWriterQueue(t *testing.T) {
	s := open(t)
	defer s.Close()
	st := s.Stats()
	if st.MaxOpenConnections < 5 || st.OpenConnections < 2 || st.InUse != 0 {
		t.Errorf("idle stats = %+v; want max >= 5 (1 writer + >= 4 readers), >= 2 open, none in use", st)
	}
	// Concurrent writers queue for the single writer connection; the wait
	// shows up in the stats (and so in app_db_pool_wait_total). Whether 16
	// goroutines released together actually overlap is up to the scheduler
	// (on a busy machine they may run one after another), so rounds repeat
	// until one does; twenty rounds without any overlap would mean writers
	// are not queued on one connection at all.
	for round := 0; s.Stats().WaitCount == 0; round++ {
		if round == 20 {
			t.Fatalf("20 rounds of 16 concurrent writers never waited for the writer connection: %+v", s.Stats())
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 16 {
			wg.Go(func() {
				<-start
				n := round*16 + i
				u := app.User{Username: fmt.Sprintf("u%d", n), Email: fmt.Sprintf("u%d@example.com", n), PasswordHash: "h"}
				if err := s.CreateUser(t.Context(), &u); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
}

// An idempotency key is remembered for app.IdempotencyWindow: within it a
// different request is refused, after it the key creates anew.
func TestIdempotencyKeyExpires(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "idem.db"),
		sqlite.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ctx := t.Context()
	u := app.User{Username: "expiry", Email: "expiry@example.com", PasswordHash: "h"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	first := app.Item{OwnerID: u.ID, Name: "first"}
	if _, err := s.CreateItemOnce(ctx, &first, app.IdempotencyKey{Key: "k", Fingerprint: "a"}); err != nil {
		t.Fatal(err)
	}
	advance(app.IdempotencyWindow - time.Minute)
	other := app.Item{OwnerID: u.ID, Name: "other"}
	if _, err := s.CreateItemOnce(ctx, &other, app.IdempotencyKey{Key: "k", Fingerprint: "b"}); !errors.Is(err, app.ErrIdempotencyKeyReused) {
		t.Errorf("different request a minute before the key expires = %v, want ErrIdempotencyKeyReused", err)
	}
	advance(2 * time.Minute)
	replayed, err := s.CreateItemOnce(ctx, &other, app.IdempotencyKey{Key: "k", Fingerprint: "b"})
	if err != nil || replayed || other.ID == first.ID {
		t.Errorf("key reused after the window = %+v, %v, %v; want a new item", other, replayed, err)
	}
}
