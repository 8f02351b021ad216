package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// openDeps chooses and opens the store and the rate limiter from cfg, and
// returns the health checks that go with them and a func closing them.
// It is the only place that picks implementations.
//
// Default: SQLite in DATA_DIR and an in-process limiter. DATABASE_URL and
// REDIS_URL are reserved for the PostgreSQL and Redis adapters.
func openDeps(ctx context.Context, cfg config, tel *telemetry.Telemetry) (app.Store, ratelimit.Limiter, []app.Check, func() error, error) {
	if u := cfg.DatabaseURL.Reveal(); u != "" {
		if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
			return nil, nil, nil, nil, fmt.Errorf("DATABASE_URL: PostgreSQL support is not built into this binary yet; unset DATABASE_URL to use SQLite in DATA_DIR")
		}
		return nil, nil, nil, nil, fmt.Errorf("DATABASE_URL: want a postgres:// URL, or unset it to use SQLite in DATA_DIR")
	}
	if cfg.RedisURL != "" {
		return nil, nil, nil, nil, fmt.Errorf("REDIS_URL: Redis support is not built into this binary yet; unset REDIS_URL to use in-process rate limits")
	}

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "glasshouse.db")
	store, err := sqlite.Open(ctx, path, sqlite.WithTracer(tel.Tracer))
	if err != nil {
		return nil, nil, nil, nil, err
	}
	err = tel.RegisterDBPool("sqlite", func() telemetry.DBPoolStats {
		st := store.Stats()
		return telemetry.DBPoolStats{
			Acquired: int64(st.InUse), Idle: int64(st.Idle), Total: int64(st.OpenConnections),
			Max: int64(st.MaxOpenConnections), WaitCount: uint64(st.WaitCount), WaitDuration: st.WaitDuration,
		}
	})
	if err != nil {
		store.Close()
		return nil, nil, nil, nil, err
	}
	checks := []app.Check{{Name: "database", Check: store.Ping}}
	return store, ratelimit.NewMemory(nil), checks, store.Close, nil
}
