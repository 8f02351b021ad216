package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
	"github.com/glasshouse-dev/glasshouse/app/storetest"
)

// benchStore is a store on a temporary file holding one user with 100
// items.
func benchStore(b *testing.B) (*sqlite.Store, app.User, []app.Item) {
	b.Helper()
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	u := app.User{Username: "bench", Email: "bench@example.com", PasswordHash: "h"}
	if err := s.CreateUser(b.Context(), &u); err != nil {
		b.Fatal(err)
	}
	items := make([]app.Item, 100)
	for i := range items {
		items[i] = app.Item{OwnerID: u.ID, Name: fmt.Sprintf("item %d", i), Description: "two litres"}
		if err := s.CreateItem(b.Context(), &items[i]); err != nil {
			b.Fatal(err)
		}
	}
	return s, u, items
}

// The store's hot paths: an item read (GET /api/v1/items/{id}), a user
// read (every authenticated request that needs the account), a page of
// items, and the writes. Run with -benchmem; compare builds with benchstat.
func BenchmarkItem(b *testing.B) {
	s, u, items := benchStore(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Item(b.Context(), u.ID, items[i%len(items)].ID); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkUserByID(b *testing.B) {
	s, u, _ := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.UserByID(b.Context(), u.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkListItems(b *testing.B) {
	s, u, _ := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.ListItems(b.Context(), u.ID, app.Page{Limit: 10}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpdateItem(b *testing.B) {
	s, u, items := benchStore(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		it := app.Item{ID: items[i%len(items)].ID, OwnerID: u.ID, Name: "renamed", Description: "one litre"}
		if err := s.UpdateItem(b.Context(), &it); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkCreateItem(b *testing.B) {
	s, u, _ := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		it := app.Item{OwnerID: u.ID, Name: "new", Description: "x"}
		if err := s.CreateItem(b.Context(), &it); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateItems compares one transaction per item with chunked
// bulk inserts (make bench-bulk; docs/performance.md has the numbers).
func BenchmarkCreateItems(b *testing.B) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	storetest.BenchmarkCreateItems(b, s)
}
