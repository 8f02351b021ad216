package postgres_test

import (
	"testing"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/postgres"
	"github.com/glasshouse-dev/glasshouse/app/postgres/pgtest"
	"github.com/glasshouse-dev/glasshouse/app/storetest"
)

// TestConformance runs the shared Store suite against PostgreSQL, each case
// on its own fresh database.
func TestConformance(t *testing.T) {
	pgtest.AdminURL(t)
	storetest.Run(t, func(t *testing.T) app.Store {
		s, err := postgres.Open(t.Context(), postgres.Config{URL: pgtest.NewDatabase(t), MinConns: 1, MaxConns: 8})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	})
}
