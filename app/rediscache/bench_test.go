package rediscache_test

import (
	"testing"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/internal/redistest"
	"github.com/glasshouse-dev/glasshouse/app/postgres"
	"github.com/glasshouse-dev/glasshouse/app/postgres/pgtest"
	"github.com/glasshouse-dev/glasshouse/app/rediscache"
)

// BenchmarkItemRead compares an item read from PostgreSQL with the same
// read answered by the cache (a hit), on loopback servers:
//
//	go test -run '^$' -bench ItemRead -benchmem ./app/rediscache/
func BenchmarkItemRead(b *testing.B) {
	redistest.URL(b)
	pg, err := postgres.Open(b.Context(), postgres.Config{URL: pgtest.NewDatabase(b), MinConns: 1, MaxConns: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Close()
	u := app.User{Username: "bench", Email: "bench@example.com", PasswordHash: "h"}
	if err := pg.CreateUser(b.Context(), &u); err != nil {
		b.Fatal(err)
	}
	it := app.Item{OwnerID: u.ID, Name: "bench"}
	if err := pg.CreateItem(b.Context(), &it); err != nil {
		b.Fatal(err)
	}
	cached := rediscache.New(pg, redistest.Client(b, ""), rediscache.Options{Prefix: redistest.Prefix(b)})
	for _, bc := range []struct {
		name string
		s    app.Store
	}{{"postgres", pg}, {"cached", cached}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.s.Item(b.Context(), u.ID, it.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
