package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockKey is the pg_advisory_lock key that serialises migrations
// between instances: the first 8 bytes of "glasshou" as a big-endian int64.
const migrationLockKey int64 = 0x676c617373686f75

// Migration is one embedded schema change, applied in Version order.
type Migration struct {
	Version string // file name without ".sql", e.g. "0001_init"
	SQL     string
}

// Migrations returns the embedded migrations in the order they apply.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Migration, 0, len(names))
	for _, n := range names {
		b, err := migrations.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: strings.TrimSuffix(strings.TrimPrefix(n, "migrations/"), ".sql"), SQL: string(b)})
	}
	return out, nil
}

// Migrate applies every embedded migration not yet recorded in
// schema_migrations. It holds a session-level advisory lock on one
// connection for the whole run, so when several instances start at once one
// applies the migrations and the others wait, then find nothing to do. Each
// migration and its schema_migrations row commit in one transaction. Open
// calls Migrate; calling it again is a no-op.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.wrap(ctx, "migrate: acquire connection", err)
	}
	defer conn.Release()
	// Migrations may take longer than one query; the lock wait too.
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return s.wrap(ctx, "migrate", err)
	}
	defer func() {
		// Put the pool's setting back (RESET returns to the connection's
		// start-up value, statement_timeout from Config).
		if _, err := conn.Exec(context.WithoutCancel(ctx), `RESET statement_timeout`); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return s.wrap(ctx, "migrate: lock", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey); err != nil {
			// A lock we cannot release dies with its session.
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    text PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return s.wrap(ctx, "migrate: create schema_migrations", err)
	}
	applied := map[string]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return s.wrap(ctx, "migrate: read schema_migrations", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return s.wrap(ctx, "migrate: read schema_migrations", err)
	}
	for _, v := range versions {
		applied[v] = true
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version)
			return err
		})
		if err != nil {
			return s.wrap(ctx, "migrate "+m.Version, err)
		}
	}
	return nil
}
