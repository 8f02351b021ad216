package postgres_test

import (
	"testing"

	"github.com/glasshouse-dev/glasshouse/app/postgres"
	"github.com/glasshouse-dev/glasshouse/app/postgres/pgtest"
	"github.com/glasshouse-dev/glasshouse/app/storetest"
)

// BenchmarkCreateItems compares one round trip and transaction per item
// with chunked bulk inserts (one batch and transaction per chunk) on a
// fresh database (make bench-bulk; docs/performance.md has the numbers).
func BenchmarkCreateItems(b *testing.B) {
	pgtest.AdminURL(b)
	s, err := postgres.Open(b.Context(), postgres.Config{URL: pgtest.NewDatabase(b), MinConns: 1, MaxConns: 4})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	storetest.BenchmarkCreateItems(b, s)
}
