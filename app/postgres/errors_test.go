package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/glasshouse-dev/glasshouse/app"
)

func TestClassify(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"no rows", pgx.ErrNoRows, app.ErrNotFound},
		{"wrapped no rows", fmt.Errorf("scan: %w", pgx.ErrNoRows), app.ErrNotFound},
		{"unique violation", &pgconn.PgError{Code: "23505"}, app.ErrConflict},
		{"foreign key violation stays a 500", &pgconn.PgError{Code: "23503"}, nil},
		{"syntax error stays a 500", &pgconn.PgError{Code: "42601"}, nil},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, app.ErrUnavailable},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, app.ErrUnavailable},
		{"starting up", &pgconn.PgError{Code: "57P03"}, app.ErrUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, app.ErrUnavailable},
		{"connection failure", &pgconn.PgError{Code: "08006"}, app.ErrUnavailable},
		{"standby after failover", &pgconn.PgError{Code: "25006"}, app.ErrUnavailable},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, app.ErrUnavailable},
		{"dial refused", opErr, app.ErrUnavailable},
		{"connect error", &pgconn.ConnectError{}, app.ErrUnavailable},
		{"eof", fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), app.ErrUnavailable},
		{"deadline", context.DeadlineExceeded, app.ErrUnavailable},
		{"closed pool", errors.New("closed pool"), app.ErrUnavailable},
		{"conn closed", errors.New("conn closed"), app.ErrUnavailable},
		{"scan bug stays a 500", errors.New("can't scan into dest[0]"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	s := &Store{}
	ctx := context.Background()
	if err := s.wrap(ctx, "x", nil); err != nil {
		t.Fatalf("wrap(nil) = %v", err)
	}
	err := s.wrap(ctx, "item 7", pgx.ErrNoRows)
	if !errors.Is(err, app.ErrNotFound) || err.Error() != "item 7: not found" {
		t.Errorf("no rows: got %q", err)
	}
	down := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	err = s.wrap(ctx, "ping", down)
	if !errors.Is(err, app.ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("dial: got %q, want ErrUnavailable with the cause", err)
	}
	// A caller that went away is not a database outage.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = s.wrap(cctx, "ping", context.Canceled)
	if errors.Is(err, app.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: got %v, want context.Canceled", err)
	}
	// Our own deadline is one.
	dctx, cancel := context.WithTimeout(ctx, -time.Second)
	defer cancel()
	if err := s.wrap(dctx, "ping", context.DeadlineExceeded); !errors.Is(err, app.ErrUnavailable) {
		t.Errorf("deadline: got %v, want ErrUnavailable", err)
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct{ sql, op, table string }{
		{`SELECT id FROM users WHERE id = $1`, "SELECT", "users"},
		{"INSERT INTO items (owner_id) VALUES ($1)", "INSERT", "items"},
		{"UPDATE items SET name = $1", "UPDATE", "items"},
		{"DELETE FROM items WHERE id = $1", "DELETE", "items"},
		{listItemsSQL, "SELECT", "items"},
		{"select 1", "SELECT", ""},
		{"SELECT pg_advisory_lock($1)", "SELECT", ""},
		{"-- comment\nCREATE TABLE IF NOT EXISTS schema_migrations (x int)", "CREATE", "schema_migrations"},
		{"SELECT version FROM schema_migrations -- all of them", "SELECT", "schema_migrations"},
		{"", "", ""},
	} {
		op, table := summarize(tc.sql)
		if op != tc.op || table != tc.table {
			t.Errorf("summarize(%q) = %q, %q; want %q, %q", tc.sql, op, table, tc.op, tc.table)
		}
	}
}

func TestPoolConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		pc, err := PoolConfig(Config{URL: "postgres://u:secret@db.example:5433/app?sslmode=disable"})
		if err != nil {
			t.Fatal(err)
		}
		if pc.MinConns != 10 || pc.MaxConns != 20 {
			t.Errorf("pool size = %d..%d, want 10..20", pc.MinConns, pc.MaxConns)
		}
		if pc.MaxConnLifetime != DefaultMaxConnLifetime || pc.MaxConnLifetimeJitter != DefaultMaxConnLifetime/10 {
			t.Errorf("lifetime = %v (+%v)", pc.MaxConnLifetime, pc.MaxConnLifetimeJitter)
		}
		if pc.MaxConnIdleTime != DefaultMaxConnIdleTime {
			t.Errorf("idle time = %v", pc.MaxConnIdleTime)
		}
		if pc.ConnConfig.ConnectTimeout != DefaultConnectTimeout {
			t.Errorf("connect timeout = %v", pc.ConnConfig.ConnectTimeout)
		}
		rp := pc.ConnConfig.RuntimeParams
		if rp["application_name"] != "glasshouse-api" || rp["statement_timeout"] != "5000" {
			t.Errorf("runtime params = %v", rp)
		}
		if pc.ConnConfig.Tracer != nil {
			t.Error("tracer set without a TracerProvider")
		}
		if m := pc.ConnConfig.DefaultQueryExecMode; m != pgx.QueryExecModeCacheStatement {
			t.Errorf("query exec mode = %v, want statements prepared once per connection (cache_statement)", m)
		}
	})
	t.Run("url exec mode wins", func(t *testing.T) {
		pc, err := PoolConfig(Config{URL: "postgres://u@db.example/app?default_query_exec_mode=exec"})
		if err != nil {
			t.Fatal(err)
		}
		if m := pc.ConnConfig.DefaultQueryExecMode; m != pgx.QueryExecModeExec {
			t.Errorf("query exec mode = %v, want the URL's exec", m)
		}
	})
	t.Run("url params win over defaults", func(t *testing.T) {
		pc, err := PoolConfig(Config{URL: "postgres://db.example/app?pool_max_conns=7&pool_min_conns=2" +
			"&pool_max_conn_lifetime=1h&connect_timeout=9&application_name=batch&statement_timeout=100"})
		if err != nil {
			t.Fatal(err)
		}
		if pc.MinConns != 2 || pc.MaxConns != 7 || pc.MaxConnLifetime != time.Hour || pc.ConnConfig.ConnectTimeout != 9*time.Second {
			t.Errorf("got %d..%d, lifetime %v, connect %v", pc.MinConns, pc.MaxConns, pc.MaxConnLifetime, pc.ConnConfig.ConnectTimeout)
		}
		if rp := pc.ConnConfig.RuntimeParams; rp["application_name"] != "batch" || rp["statement_timeout"] != "100" {
			t.Errorf("runtime params = %v", rp)
		}
	})
	t.Run("config wins over url", func(t *testing.T) {
		pc, err := PoolConfig(Config{URL: "postgres://db.example/app?pool_max_conns=7&application_name=batch",
			MinConns: 1, MaxConns: 3, QueryTimeout: 1500 * time.Millisecond, ApplicationName: "api-2"})
		if err != nil {
			t.Fatal(err)
		}
		if pc.MinConns != 1 || pc.MaxConns != 3 {
			t.Errorf("pool size = %d..%d, want 1..3", pc.MinConns, pc.MaxConns)
		}
		if rp := pc.ConnConfig.RuntimeParams; rp["application_name"] != "api-2" || rp["statement_timeout"] != "1500" {
			t.Errorf("runtime params = %v", rp)
		}
	})
	t.Run("small max lowers default min", func(t *testing.T) {
		pc, err := PoolConfig(Config{URL: "postgres://db.example/app", MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		if pc.MinConns != 4 || pc.MaxConns != 4 {
			t.Errorf("pool size = %d..%d, want 4..4", pc.MinConns, pc.MaxConns)
		}
	})
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty url", Config{}, "empty database URL"},
		{"bad url", Config{URL: "postgres://u:hunter2@db.example:notaport/app"}, "postgres:"},
		{"min above max", Config{URL: "postgres://db.example/app", MinConns: 5, MaxConns: 2}, "exceed max"},
		{"negative", Config{URL: "postgres://db.example/app", MaxConns: -1}, "negative pool size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PoolConfig(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}
