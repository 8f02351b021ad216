// Package storetest is the conformance suite every app.Store implementation
// runs (like testing/fstest): one Run call covers every method, uniqueness
// conflicts, ownership, pagination, concurrent writers, updated_at under
// concurrent updates, and app.IdempotentStore and app.BulkStore when the
// store implements them (those cases skip when it does not, as the cache
// decorator does not implement app.IdempotentStore).
//
// It imports app and the standard library (plus go-cmp) only; it never
// imports an implementation (TestImports).
//
// It is one file of about 800 lines on purpose: it is test code, a flat
// list of independent cases, and a store author reads it top to bottom as
// the specification of app.Store; splitting it would scatter that list.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/glasshouse-dev/glasshouse/app"
)

// Run runs the suite. open must return a fresh, empty store for each call;
// Run closes it. Times must round-trip exactly: a store truncates CreatedAt
// and UpdatedAt to what it persists (microseconds for SQLite and
// PostgreSQL) before returning them.
func Run(t *testing.T, open func(t *testing.T) app.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s app.Store)
	}{
		{"CreateUserAndGet", testCreateUserAndGet},
		{"UserNotFound", testUserNotFound},
		{"UsernameConflict", testUsernameConflict},
		{"EmailConflict", testEmailConflict},
		{"ItemCRUD", testItemCRUD},
		{"ItemOwnership", testItemOwnership},
		{"ItemMissing", testItemMissing},
		{"ItemUnknownOwner", testItemUnknownOwner},
		{"ListPagination", testListPagination},
		{"ListEmpty", testListEmpty},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentSameUsername", testConcurrentSameUsername},
		{"ConcurrentUpdatesKeepUpdatedAtMonotonic", testConcurrentUpdates},
		{"IdempotentCreate", testIdempotentCreate},
		{"IdempotentCreateConcurrent", testIdempotentCreateConcurrent},
		{"BulkCreate", testBulkCreate},
		{"BulkCreateIsAtomic", testBulkCreateAtomic},
		{"BulkCreateConcurrent", testBulkCreateConcurrent},
		{"CanceledContext", testCanceledContext},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

func mustUser(t *testing.T, s app.Store, name string) app.User {
	t.Helper()
	u := app.User{Username: name, Email: strings.ToLower(name) + "@example.com", PasswordHash: "hash-of-" + name}
	if err := s.CreateUser(t.Context(), &u); err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

func mustItem(t *testing.T, s app.Store, owner int64, name string) app.Item {
	t.Helper()
	it := app.Item{OwnerID: owner, Name: name, Description: "about " + name}
	if err := s.CreateItem(t.Context(), &it); err != nil {
		t.Fatalf("CreateItem(%q): %v", name, err)
	}
	return it
}

func testCreateUserAndGet(t *testing.T, s app.Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	u := app.User{Username: "Alice_1", Email: "Alice@Example.com", PasswordHash: "$argon2id$stub"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if u.ID <= 0 {
		t.Errorf("ID = %d, want > 0", u.ID)
	}
	if u.CreatedAt.Before(before) || u.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreatedAt = %v, want about now", u.CreatedAt)
	}
	got, err := s.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("UserByID mismatch (-created +got):\n%s", diff)
	}
	for _, name := range []string{"Alice_1", "alice_1", "ALICE_1"} {
		got, err = s.UserByUsername(ctx, name)
		if err != nil {
			t.Fatalf("UserByUsername(%q): %v", name, err)
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Errorf("UserByUsername(%q) mismatch (-created +got):\n%s", name, diff)
		}
	}
	other := mustUser(t, s, "bob")
	if other.ID == u.ID {
		t.Errorf("second user reused ID %d", u.ID)
	}
}

func testUserNotFound(t *testing.T, s app.Store) {
	ctx := t.Context()
	if _, err := s.UserByID(ctx, 424242); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("UserByID(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.UserByUsername(ctx, "nobody"); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("UserByUsername(missing) = %v, want ErrNotFound", err)
	}
	// Hostile strings are data, never SQL.
	if _, err := s.UserByUsername(ctx, "x' OR '1'='1"); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("UserByUsername(injection) = %v, want ErrNotFound", err)
	}
}

func testUsernameConflict(t *testing.T, s app.Store) {
	mustUser(t, s, "carol")
	for _, name := range []string{"carol", "CAROL", "Carol"} {
		u := app.User{Username: name, Email: "other-" + strings.ToLower(name) + "@example.com", PasswordHash: "h"}
		err := s.CreateUser(t.Context(), &u)
		if !errors.Is(err, app.ErrConflict) {
			t.Errorf("CreateUser(%q) with taken username = %v, want ErrConflict", name, err)
		}
	}
}

func testEmailConflict(t *testing.T, s app.Store) {
	mustUser(t, s, "dave")
	for i, email := range []string{"dave@example.com", "DAVE@EXAMPLE.COM", "Dave@Example.Com"} {
		u := app.User{Username: fmt.Sprintf("dave%d", i), Email: email, PasswordHash: "h"}
		if err := s.CreateUser(t.Context(), &u); !errors.Is(err, app.ErrConflict) {
			t.Errorf("CreateUser with taken email %q = %v, want ErrConflict", email, err)
		}
	}
	// The failed inserts left nothing behind.
	if _, err := s.UserByUsername(t.Context(), "dave0"); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("conflicting user was stored: %v", err)
	}
}

func testItemCRUD(t *testing.T, s app.Store) {
	ctx := t.Context()
	u := mustUser(t, s, "erin")
	it := app.Item{OwnerID: u.ID, Name: "Milk", Description: "two litres"}
	if err := s.CreateItem(ctx, &it); err != nil {
		t.Fatalf("CreateItem: %v", err)
	}
	if it.ID <= 0 || it.CreatedAt.IsZero() || !it.UpdatedAt.Equal(it.CreatedAt) {
		t.Errorf("CreateItem set ID=%d CreatedAt=%v UpdatedAt=%v; want ID>0 and equal times", it.ID, it.CreatedAt, it.UpdatedAt)
	}
	got, err := s.Item(ctx, u.ID, it.ID)
	if err != nil {
		t.Fatalf("Item: %v", err)
	}
	if diff := cmp.Diff(it, got); diff != "" {
		t.Errorf("Item mismatch (-created +got):\n%s", diff)
	}

	time.Sleep(2 * time.Millisecond) // let the clock move so UpdatedAt can differ
	upd := app.Item{ID: it.ID, OwnerID: u.ID, Name: "Oat milk", Description: ""}
	if err := s.UpdateItem(ctx, &upd); err != nil {
		t.Fatalf("UpdateItem: %v", err)
	}
	want := it
	want.Name, want.Description, want.UpdatedAt = "Oat milk", "", upd.UpdatedAt
	if diff := cmp.Diff(want, upd); diff != "" {
		t.Errorf("UpdateItem filled (-want +got):\n%s", diff)
	}
	if !upd.UpdatedAt.After(it.CreatedAt) {
		t.Errorf("UpdatedAt %v not after CreatedAt %v", upd.UpdatedAt, it.CreatedAt)
	}
	got, err = s.Item(ctx, u.ID, it.ID)
	if err != nil {
		t.Fatalf("Item after update: %v", err)
	}
	if diff := cmp.Diff(upd, got); diff != "" {
		t.Errorf("Item after update (-updated +got):\n%s", diff)
	}

	if err := s.DeleteItem(ctx, u.ID, it.ID); err != nil {
		t.Fatalf("DeleteItem: %v", err)
	}
	if _, err := s.Item(ctx, u.ID, it.ID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("Item after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteItem(ctx, u.ID, it.ID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("second DeleteItem = %v, want ErrNotFound", err)
	}
	if _, total, err := s.ListItems(ctx, u.ID, app.Page{Limit: 10}); err != nil || total != 0 {
		t.Errorf("ListItems after delete: total=%d err=%v, want 0, nil", total, err)
	}
	// IDs are never reused, so a deleted item's ID never names a new one.
	next := mustItem(t, s, u.ID, "bread")
	if next.ID == it.ID {
		t.Errorf("new item reused deleted ID %d", it.ID)
	}
}

func testItemOwnership(t *testing.T, s app.Store) {
	ctx := t.Context()
	owner, other := mustUser(t, s, "frank"), mustUser(t, s, "grace")
	it := mustItem(t, s, owner.ID, "secret")
	// The owner reads first, so a caching decorator answers the other
	// user's attempts from a warm cache and must still refuse them.
	if _, err := s.Item(ctx, owner.ID, it.ID); err != nil {
		t.Fatalf("owner's Item: %v", err)
	}

	if _, err := s.Item(ctx, other.ID, it.ID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("Item by another user = %v, want ErrNotFound", err)
	}
	upd := app.Item{ID: it.ID, OwnerID: other.ID, Name: "stolen"}
	if err := s.UpdateItem(ctx, &upd); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("UpdateItem by another user = %v, want ErrNotFound", err)
	}
	if err := s.DeleteItem(ctx, other.ID, it.ID); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("DeleteItem by another user = %v, want ErrNotFound", err)
	}
	got, err := s.Item(ctx, owner.ID, it.ID)
	if err != nil {
		t.Fatalf("owner's Item after another user's attempts: %v", err)
	}
	if diff := cmp.Diff(it, got); diff != "" {
		t.Errorf("another user's attempts changed the item (-want +got):\n%s", diff)
	}
	if items, total, err := s.ListItems(ctx, other.ID, app.Page{Limit: 10}); err != nil || total != 0 || len(items) != 0 {
		t.Errorf("other user's list = %d items, total %d, err %v; want empty", len(items), total, err)
	}
}

func testItemMissing(t *testing.T, s app.Store) {
	ctx := t.Context()
	u := mustUser(t, s, "heidi")
	if _, err := s.Item(ctx, u.ID, 999999); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("Item(missing) = %v, want ErrNotFound", err)
	}
	upd := app.Item{ID: 999999, OwnerID: u.ID, Name: "x"}
	if err := s.UpdateItem(ctx, &upd); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("UpdateItem(missing) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteItem(ctx, u.ID, 999999); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("DeleteItem(missing) = %v, want ErrNotFound", err)
	}
}

func testItemUnknownOwner(t *testing.T, s app.Store) {
	it := app.Item{OwnerID: 987654, Name: "orphan"}
	err := s.CreateItem(t.Context(), &it)
	if err == nil {
		t.Fatal("CreateItem with an owner that does not exist succeeded")
	}
	if !errors.Is(err, app.ErrUnknownOwner) {
		t.Errorf("CreateItem(unknown owner) = %v, want ErrUnknownOwner", err)
	}
	if errors.Is(err, app.ErrConflict) || errors.Is(err, app.ErrUnavailable) || errors.Is(err, app.ErrNotFound) {
		t.Errorf("CreateItem(unknown owner) = %v; must not look like a conflict, an outage or a missing item", err)
	}
}

func testListPagination(t *testing.T, s app.Store) {
	ctx := t.Context()
	a, b := mustUser(t, s, "ivan"), mustUser(t, s, "judy")
	var want []app.Item
	for i := range 25 {
		want = append(want, mustItem(t, s, a.ID, fmt.Sprintf("a%02d", i)))
		if i%8 == 0 {
			mustItem(t, s, b.ID, fmt.Sprintf("b%02d", i)) // interleaved IDs of another owner
		}
	}
	var got []app.Item
	for off := 0; off < 30; off += 10 {
		page, total, err := s.ListItems(ctx, a.ID, app.Page{Limit: 10, Offset: off})
		if err != nil {
			t.Fatalf("ListItems(offset %d): %v", off, err)
		}
		if total != 25 {
			t.Errorf("ListItems(offset %d) total = %d, want 25", off, total)
		}
		if wantLen := min(10, 25-off); len(page) != wantLen {
			t.Errorf("ListItems(offset %d) returned %d items, want %d", off, len(page), wantLen)
		}
		got = append(got, page...)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pages concatenated (-created in ID order +listed):\n%s", diff)
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("items not in ascending ID order: %d then %d", got[i-1].ID, got[i].ID)
		}
	}
	page, total, err := s.ListItems(ctx, a.ID, app.Page{Limit: 10, Offset: 1000})
	if err != nil || len(page) != 0 || total != 25 {
		t.Errorf("offset past the end: %d items, total %d, err %v; want 0, 25, nil", len(page), total, err)
	}
	page, total, err = s.ListItems(ctx, b.ID, app.Page{Limit: app.MaxPageLimit})
	if err != nil || len(page) != 4 || total != 4 {
		t.Errorf("other owner's list: %d items, total %d, err %v; want 4, 4, nil", len(page), total, err)
	}
	for _, it := range page {
		if it.OwnerID != b.ID {
			t.Errorf("list for owner %d contains item %d of owner %d", b.ID, it.ID, it.OwnerID)
		}
	}
}

func testListEmpty(t *testing.T, s app.Store) {
	u := mustUser(t, s, "ken")
	items, total, err := s.ListItems(t.Context(), u.ID, app.Page{Limit: app.DefaultPageLimit})
	if err != nil || len(items) != 0 || total != 0 {
		t.Errorf("empty list: %d items, total %d, err %v; want 0, 0, nil", len(items), total, err)
	}
}

// testConcurrentWriters has many goroutines create users and items at once:
// every write must succeed (no SQLITE_BUSY, no pool exhaustion errors), and
// afterwards every row is there exactly once.
func testConcurrentWriters(t *testing.T, s app.Store) {
	ctx := t.Context()
	const writers, usersEach, itemsEach = 16, 4, 6
	type created struct {
		user  app.User
		items []int64
	}
	results := make([][]created, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers*usersEach*(itemsEach+1))
	for w := range writers {
		wg.Go(func() {
			for i := range usersEach {
				u := app.User{Username: fmt.Sprintf("w%02du%02d", w, i), Email: fmt.Sprintf("w%02du%02d@example.com", w, i), PasswordHash: "h"}
				if err := s.CreateUser(ctx, &u); err != nil {
					errs <- fmt.Errorf("CreateUser %s: %w", u.Username, err)
					continue
				}
				c := created{user: u}
				for j := range itemsEach {
					it := app.Item{OwnerID: u.ID, Name: fmt.Sprintf("item %d", j)}
					if err := s.CreateItem(ctx, &it); err != nil {
						errs <- fmt.Errorf("CreateItem for %s: %w", u.Username, err)
						continue
					}
					c.items = append(c.items, it.ID)
				}
				results[w] = append(results[w], c)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	userIDs, itemIDs := map[int64]bool{}, map[int64]bool{}
	for _, rs := range results {
		for _, c := range rs {
			if userIDs[c.user.ID] {
				t.Errorf("user ID %d handed out twice", c.user.ID)
			}
			userIDs[c.user.ID] = true
			for _, id := range c.items {
				if itemIDs[id] {
					t.Errorf("item ID %d handed out twice", id)
				}
				itemIDs[id] = true
			}
			items, total, err := s.ListItems(ctx, c.user.ID, app.Page{Limit: app.MaxPageLimit})
			if err != nil {
				t.Fatalf("ListItems: %v", err)
			}
			if total != itemsEach || len(items) != itemsEach {
				t.Errorf("user %s has %d items (total %d), want %d", c.user.Username, len(items), total, itemsEach)
			}
			for i, it := range items {
				if i < len(c.items) && it.ID != c.items[i] {
					t.Errorf("user %s item %d: ID %d, want %d", c.user.Username, i, it.ID, c.items[i])
				}
			}
		}
	}
	if len(userIDs) != writers*usersEach {
		t.Errorf("created %d users, want %d", len(userIDs), writers*usersEach)
	}
}

// testConcurrentSameUsername races goroutines for one username: exactly one
// wins, the others get ErrConflict.
func testConcurrentSameUsername(t *testing.T, s app.Store) {
	const racers = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range racers {
		wg.Go(func() {
			u := app.User{Username: "Racer", Email: fmt.Sprintf("racer%d@example.com", i), PasswordHash: "h"}
			if i%2 == 1 {
				u.Username = "RACER"
			}
			err := s.CreateUser(t.Context(), &u)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, app.ErrConflict):
				conflicts++
			default:
				t.Errorf("CreateUser race: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != racers-1 {
		t.Errorf("race for one username: %d wins, %d conflicts; want 1 and %d", wins, conflicts, racers-1)
	}
}

// testConcurrentUpdates races updates of one item. updated_at must never
// go backwards: every update returns a time no earlier than the item had
// before it, so the stored item ends with the latest time any update
// returned, and carries the name of an update that returned that time.
func testConcurrentUpdates(t *testing.T, s app.Store) {
	ctx := t.Context()
	u := mustUser(t, s, "racer")
	it := mustItem(t, s, u.ID, "v")
	const rounds, writers = 5, 16
	for round := range rounds {
		type result struct {
			name    string
			updated time.Time
		}
		results := make(chan result, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range writers {
			wg.Go(func() {
				<-start
				upd := app.Item{ID: it.ID, OwnerID: u.ID, Name: fmt.Sprintf("r%d-w%d", round, w)}
				if err := s.UpdateItem(ctx, &upd); err != nil {
					t.Errorf("UpdateItem: %v", err)
					return
				}
				results <- result{upd.Name, upd.UpdatedAt}
			})
		}
		close(start)
		wg.Wait()
		close(results)
		var latest time.Time
		names := map[string]time.Time{}
		for r := range results {
			names[r.name] = r.updated
			if r.updated.After(latest) {
				latest = r.updated
			}
		}
		got, err := s.Item(ctx, u.ID, it.ID)
		if err != nil {
			t.Fatalf("Item: %v", err)
		}
		if !got.UpdatedAt.Equal(latest) {
			t.Errorf("round %d: stored updated_at %v, but an update returned the later %v: updated_at went backwards",
				round, got.UpdatedAt.Format(time.RFC3339Nano), latest.Format(time.RFC3339Nano))
		}
		if at, ok := names[got.Name]; !ok || !at.Equal(got.UpdatedAt) {
			t.Errorf("round %d: stored item %q at %v; the update that wrote it returned %v", round, got.Name, got.UpdatedAt, at)
		}
	}
}

// optional returns s as the optional interface I (app.IdempotentStore,
// app.BulkStore), or skips t when s does not implement it.
func optional[I any](t *testing.T, s app.Store) I {
	t.Helper()
	is, ok := s.(I)
	if !ok {
		t.Skipf("%T does not implement %s", s, reflect.TypeFor[I]())
	}
	return is
}

// testIdempotentCreate: a key creates once per owner; the same request
// again returns the item as first created (even after it changed or was
// deleted), another request with the key is ErrIdempotencyKeyReused.
func testIdempotentCreate(t *testing.T, s app.Store) {
	is := optional[app.IdempotentStore](t, s)
	ctx := t.Context()
	u, other := mustUser(t, s, "idem"), mustUser(t, s, "idem2")
	key := app.IdempotencyKey{Key: "k-1", Fingerprint: "fp-a"}
	first := app.Item{OwnerID: u.ID, Name: "once", Description: "d"}
	replayed, err := is.CreateItemOnce(ctx, &first, key)
	if err != nil || replayed {
		t.Fatalf("first CreateItemOnce = %v, %v; want not replayed, nil", replayed, err)
	}
	if first.ID <= 0 || first.CreatedAt.IsZero() || !first.UpdatedAt.Equal(first.CreatedAt) {
		t.Errorf("first CreateItemOnce set %+v", first)
	}
	if got, err := s.Item(ctx, u.ID, first.ID); err != nil || cmp.Diff(first, got) != "" {
		t.Errorf("Item after CreateItemOnce = %+v, %v; want %+v", got, err, first)
	}
	again := app.Item{OwnerID: u.ID, Name: "once", Description: "d"}
	replayed, err = is.CreateItemOnce(ctx, &again, key)
	if err != nil || !replayed {
		t.Fatalf("repeated CreateItemOnce = %v, %v; want replayed", replayed, err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("replay differs from the first result (-first +replay):\n%s", diff)
	}
	if _, total, err := s.ListItems(ctx, u.ID, app.Page{Limit: 10}); err != nil || total != 1 {
		t.Errorf("items after a replay: %d, %v; want 1", total, err)
	}

	changed := app.Item{OwnerID: u.ID, Name: "something else"}
	if _, err := is.CreateItemOnce(ctx, &changed, app.IdempotencyKey{Key: "k-1", Fingerprint: "fp-b"}); !errors.Is(err, app.ErrIdempotencyKeyReused) {
		t.Errorf("same key, other request = %v, want ErrIdempotencyKeyReused", err)
	}

	// Keys are per owner.
	theirs := app.Item{OwnerID: other.ID, Name: "theirs"}
	if replayed, err := is.CreateItemOnce(ctx, &theirs, key); err != nil || replayed || theirs.ID == first.ID {
		t.Errorf("another owner's CreateItemOnce with the same key = %+v, %v, %v; want a new item", theirs, replayed, err)
	}

	// The first result stands after the item changes or goes away.
	upd := app.Item{ID: first.ID, OwnerID: u.ID, Name: "renamed"}
	if err := s.UpdateItem(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteItem(ctx, u.ID, first.ID); err != nil {
		t.Fatal(err)
	}
	late := app.Item{OwnerID: u.ID, Name: "once", Description: "d"}
	if replayed, err := is.CreateItemOnce(ctx, &late, key); err != nil || !replayed || cmp.Diff(first, late) != "" {
		t.Errorf("replay after update and delete = %+v, %v, %v; want the first result %+v", late, replayed, err, first)
	}

	ghost := app.Item{OwnerID: 987654, Name: "orphan"}
	if _, err := is.CreateItemOnce(ctx, &ghost, app.IdempotencyKey{Key: "k-2", Fingerprint: "fp"}); !errors.Is(err, app.ErrUnknownOwner) {
		t.Errorf("CreateItemOnce for an unknown owner = %v, want ErrUnknownOwner", err)
	}
}

// testIdempotentCreateConcurrent races one key: one item is created and
// every caller gets it.
func testIdempotentCreateConcurrent(t *testing.T, s app.Store) {
	is := optional[app.IdempotentStore](t, s)
	u := mustUser(t, s, "idemrace")
	const racers = 12
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		ids     = map[int64]int{}
	)
	start := make(chan struct{})
	for range racers {
		wg.Go(func() {
			<-start
			it := app.Item{OwnerID: u.ID, Name: "raced"}
			replayed, err := is.CreateItemOnce(t.Context(), &it, app.IdempotencyKey{Key: "same", Fingerprint: "fp"})
			if err != nil {
				t.Errorf("CreateItemOnce race: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[it.ID]++
			if !replayed {
				created++
			}
		})
	}
	close(start)
	wg.Wait()
	if created != 1 || len(ids) != 1 {
		t.Errorf("%d racers with one key: %d created, item IDs %v; want 1 created, one ID", racers, created, ids)
	}
	if _, total, err := s.ListItems(t.Context(), u.ID, app.Page{Limit: 100}); err != nil || total != 1 {
		t.Errorf("items after the race: %d, %v; want 1", total, err)
	}
}

func testCanceledContext(t *testing.T, s app.Store) {
	u := mustUser(t, s, "liam")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.UserByID(ctx, u.ID); err == nil {
		t.Error("UserByID with a canceled context succeeded")
	}
	it := app.Item{OwnerID: u.ID, Name: "late"}
	if err := s.CreateItem(ctx, &it); err == nil {
		t.Error("CreateItem with a canceled context succeeded")
	}
	if _, total, err := s.ListItems(t.Context(), u.ID, app.Page{Limit: 10}); err != nil || total != 0 {
		t.Errorf("a canceled CreateItem left %d items (err %v)", total, err)
	}
}

func testPing(t *testing.T, s app.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// testBulkCreate: CreateItems sets IDs (new, in ascending order) and times
// on every item, and the items read back as returned.
func testBulkCreate(t *testing.T, s app.Store) {
	bs := optional[app.BulkStore](t, s)
	ctx := t.Context()
	u := mustUser(t, s, "bulk")
	if err := bs.CreateItems(ctx, nil); err != nil {
		t.Errorf("CreateItems(nil) = %v, want nil", err)
	}
	first := mustItem(t, s, u.ID, "before")
	items := make([]*app.Item, 5)
	for i := range items {
		items[i] = &app.Item{OwnerID: u.ID, Name: fmt.Sprintf("bulk %d", i), Description: "line\nbreak"}
	}
	if err := bs.CreateItems(ctx, items); err != nil {
		t.Fatalf("CreateItems: %v", err)
	}
	prev := first.ID
	for i, it := range items {
		if it.ID <= prev {
			t.Errorf("item %d: ID %d, want > %d (new and in order)", i, it.ID, prev)
		}
		prev = it.ID
		if it.CreatedAt.IsZero() || !it.UpdatedAt.Equal(it.CreatedAt) {
			t.Errorf("item %d: CreatedAt %v UpdatedAt %v, want set and equal", i, it.CreatedAt, it.UpdatedAt)
		}
		got, err := s.Item(ctx, u.ID, it.ID)
		if err != nil {
			t.Fatalf("Item(%d): %v", it.ID, err)
		}
		if diff := cmp.Diff(*it, got); diff != "" {
			t.Errorf("item %d mismatch (-created +got):\n%s", i, diff)
		}
	}
	if _, total, err := s.ListItems(ctx, u.ID, app.Page{Limit: 10}); err != nil || total != 6 {
		t.Errorf("ListItems total = %d, %v; want 6", total, err)
	}
}

// testBulkCreateAtomic: one item naming an unknown owner fails the call
// with ErrUnknownOwner, and nothing of it is committed or returned.
func testBulkCreateAtomic(t *testing.T, s app.Store) {
	bs := optional[app.BulkStore](t, s)
	ctx := t.Context()
	u := mustUser(t, s, "atomic")
	items := []*app.Item{
		{OwnerID: u.ID, Name: "kept out"},
		{OwnerID: 987654, Name: "orphan"},
		{OwnerID: u.ID, Name: "after"},
	}
	err := bs.CreateItems(ctx, items)
	if !errors.Is(err, app.ErrUnknownOwner) {
		t.Fatalf("CreateItems with an unknown owner = %v, want ErrUnknownOwner", err)
	}
	for i, it := range items {
		if it.ID != 0 || !it.CreatedAt.IsZero() {
			t.Errorf("item %d after a failed CreateItems: %+v, want unchanged", i, *it)
		}
	}
	if _, total, err := s.ListItems(ctx, u.ID, app.Page{Limit: 10}); err != nil || total != 0 {
		t.Errorf("ListItems total = %d, %v; want 0 (the chunk rolled back)", total, err)
	}
}

// testBulkCreateConcurrent: chunks written at once all land, with unique IDs.
func testBulkCreateConcurrent(t *testing.T, s app.Store) {
	bs := optional[app.BulkStore](t, s)
	ctx := t.Context()
	u := mustUser(t, s, "chunks")
	const writers, per = 4, 10
	var (
		wg   sync.WaitGroup
		errs = make([]error, writers)
		got  = make([][]*app.Item, writers)
	)
	for w := range writers {
		got[w] = make([]*app.Item, per)
		for i := range per {
			got[w][i] = &app.Item{OwnerID: u.ID, Name: fmt.Sprintf("w%d-%d", w, i)}
		}
		wg.Go(func() { errs[w] = bs.CreateItems(ctx, got[w]) })
	}
	wg.Wait()
	ids := map[int64]bool{}
	for w := range writers {
		if errs[w] != nil {
			t.Fatalf("writer %d: %v", w, errs[w])
		}
		for _, it := range got[w] {
			if ids[it.ID] {
				t.Errorf("ID %d returned twice", it.ID)
			}
			ids[it.ID] = true
		}
	}
	if _, total, err := s.ListItems(ctx, u.ID, app.Page{Limit: 1}); err != nil || total != writers*per {
		t.Errorf("ListItems total = %d, %v; want %d", total, err, writers*per)
	}
}

// BenchmarkCreateItems measures creating 100 items for one user: one
// CreateItem per item, and app.CreateItems in chunks of 10, 25 and 100
// (one transaction per chunk). It reports ns/item and items/s. s must
// hold no user named "bench".
func BenchmarkCreateItems(b *testing.B, s app.Store) {
	u := app.User{Username: "bench", Email: "bench@example.com", PasswordHash: "h"}
	if err := s.CreateUser(b.Context(), &u); err != nil {
		b.Fatal(err)
	}
	const n = 100
	for _, chunk := range []int{0, 10, 25, 100} {
		name := "one-by-one"
		if chunk > 0 {
			name = fmt.Sprintf("chunk=%d", chunk)
		}
		b.Run(name, func(b *testing.B) {
			ctx := b.Context()
			items := make([]*app.Item, n)
			for b.Loop() {
				for i := range items {
					items[i] = &app.Item{OwnerID: u.ID, Name: "imported", Description: "from a file"}
				}
				if chunk == 0 {
					for _, it := range items {
						if err := s.CreateItem(ctx, it); err != nil {
							b.Fatal(err)
						}
					}
					continue
				}
				for start := 0; start < n; start += chunk {
					if err := app.CreateItems(ctx, s, items[start:min(start+chunk, n)]); err != nil {
						b.Fatal(err)
					}
				}
			}
			perItem := float64(b.Elapsed().Nanoseconds()) / float64(b.N*n)
			b.ReportMetric(perItem, "ns/item")
			b.ReportMetric(1e9/perItem, "items/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
