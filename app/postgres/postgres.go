// Package postgres implements app.Store on PostgreSQL through a pgx/v5
// connection pool.
//
// Open parses the URL, applies the pool settings in Config (defaults: 10 to
// 20 connections, 30 minute connection lifetime, a 5 s per-call timeout that
// is also the server's statement_timeout, application_name
// "glasshouse-api"), applies the embedded schema migrations under a
// PostgreSQL advisory lock (so instances starting together apply each one
// exactly once) and returns the Store.
//
// Every Store call runs under Config.QueryTimeout, which bounds waiting for a
// pooled connection, connecting and the query itself: when the database is
// down or hung a call fails within that time with an error wrapping
// app.ErrUnavailable instead of hanging. Driver errors become app.ErrNotFound,
// app.ErrConflict or app.ErrUnavailable here, at the boundary.
//
// It imports app, pgx and the OpenTelemetry API, never httpapi, telemetry
// or cmd (TestImports).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/glasshouse-dev/glasshouse/app"
)

// Defaults for the zero values of Config's fields.
const (
	DefaultMinConns        = 10
	DefaultMaxConns        = 20
	DefaultMaxConnLifetime = 30 * time.Minute
	DefaultMaxConnIdleTime = 5 * time.Minute
	DefaultConnectTimeout  = 2 * time.Second
	DefaultQueryTimeout    = 5 * time.Second
	DefaultApplicationName = "glasshouse-api"
	DefaultStartTimeout    = 15 * time.Second
)

// Config configures Open. Zero values take the defaults above; pool
// parameters written into the URL (pool_min_conns, pool_max_conns,
// pool_max_conn_lifetime, pool_max_conn_idle_time, connect_timeout,
// application_name, statement_timeout) win over those defaults but not over
// non-zero fields here.
type Config struct {
	// URL is a postgres:// URL or a keyword/value connection string.
	URL string

	// MinConns is the number of connections the pool keeps open (opened in
	// the background); MaxConns caps it.
	MinConns, MaxConns int32
	// MaxConnLifetime retires connections after this age (with up to 10%
	// jitter so they do not all reconnect at once), which spreads load after
	// a failover and picks up DNS changes.
	MaxConnLifetime time.Duration
	// MaxConnIdleTime closes connections idle this long (above MinConns).
	MaxConnIdleTime time.Duration
	// ConnectTimeout bounds dialling and authenticating one connection.
	ConnectTimeout time.Duration
	// QueryTimeout is the command timeout: the deadline of each Store call
	// (waiting for a connection included), and the server-side
	// statement_timeout.
	QueryTimeout time.Duration
	// ApplicationName shows in pg_stat_activity and server logs.
	ApplicationName string
	// StartTimeout is how long Open keeps retrying while the database is
	// unreachable (for example still starting next to the API) before it
	// gives up. Negative means a single attempt.
	StartTimeout time.Duration

	// TracerProvider, when set, gives every query, connect and migration a
	// client span. Nil means no spans.
	TracerProvider trace.TracerProvider
	// Now is the clock for created_at/updated_at; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.MaxConnLifetime, DefaultMaxConnLifetime)
	set(&c.MaxConnIdleTime, DefaultMaxConnIdleTime)
	set(&c.ConnectTimeout, DefaultConnectTimeout)
	set(&c.QueryTimeout, DefaultQueryTimeout)
	set(&c.StartTimeout, DefaultStartTimeout)
	if c.ApplicationName == "" {
		c.ApplicationName = DefaultApplicationName
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// PoolConfig returns the pgxpool configuration Open would use for cfg: the
// parsed URL with cfg's settings and defaults applied. Errors never contain
// the password.
func PoolConfig(cfg Config) (*pgxpool.Config, error) {
	if cfg.URL == "" {
		return nil, errors.New("postgres: empty database URL")
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgconn redacts the password in ParseConfigError.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.MinConns < 0 || cfg.MaxConns < 0 {
		return nil, fmt.Errorf("postgres: negative pool size (min %d, max %d)", cfg.MinConns, cfg.MaxConns)
	}
	inURL := func(key string) bool { return strings.Contains(cfg.URL, key+"=") }
	c := cfg.withDefaults()

	switch {
	case cfg.MaxConns > 0:
		pc.MaxConns = cfg.MaxConns
	case !inURL("pool_max_conns"):
		pc.MaxConns = DefaultMaxConns
	}
	switch {
	case cfg.MinConns > 0:
		pc.MinConns = cfg.MinConns
	case !inURL("pool_min_conns"):
		pc.MinConns = min(DefaultMinConns, pc.MaxConns)
	}
	if pc.MinConns > pc.MaxConns {
		return nil, fmt.Errorf("postgres: pool min connections %d exceed max %d", pc.MinConns, pc.MaxConns)
	}
	if cfg.MaxConnLifetime != 0 || !inURL("pool_max_conn_lifetime") {
		pc.MaxConnLifetime = c.MaxConnLifetime
	}
	pc.MaxConnLifetimeJitter = pc.MaxConnLifetime / 10
	if cfg.MaxConnIdleTime != 0 || !inURL("pool_max_conn_idle_time") {
		pc.MaxConnIdleTime = c.MaxConnIdleTime
	}
	if cfg.ConnectTimeout != 0 || !inURL("connect_timeout") {
		pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	}
	// Every query is prepared once per connection and then executed by
	// name (pgx's statement cache, its default mode, made explicit here):
	// no request makes the server parse and plan the same SQL again. The
	// cache is per connection, so a connection made after an outage
	// prepares afresh. A URL's default_query_exec_mode still wins (e.g.
	// "exec" behind a transaction-mode PgBouncer, which cannot keep
	// prepared statements).
	if !inURL("default_query_exec_mode") {
		pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	}
	// A connection that stops answering is found by the acquire-time ping
	// within this bound instead of the whole query timeout.
	pc.PingTimeout = min(c.QueryTimeout, time.Second)

	rp := pc.ConnConfig.RuntimeParams
	if cfg.ApplicationName != "" || rp["application_name"] == "" {
		rp["application_name"] = c.ApplicationName
	}
	if cfg.QueryTimeout != 0 || rp["statement_timeout"] == "" {
		rp["statement_timeout"] = strconv.FormatInt(c.QueryTimeout.Milliseconds(), 10)
	}
	if c.TracerProvider != nil {
		pc.ConnConfig.Tracer = newTracer(c.TracerProvider, pc.ConnConfig)
	}
	return pc, nil
}

// Store is an app.Store on a PostgreSQL pool. It is safe for concurrent
// use; Close it once.
type Store struct {
	pool         *pgxpool.Pool
	now          func() time.Time
	queryTimeout time.Duration
}

var (
	_ app.Store           = (*Store)(nil)
	_ app.IdempotentStore = (*Store)(nil)
	_ app.BulkStore       = (*Store)(nil)
)

// Open connects, applies the embedded migrations and returns the store.
// While the database is unreachable it retries for cfg.StartTimeout (or
// until ctx ends); the final error then wraps app.ErrUnavailable.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pc, err := PoolConfig(cfg)
	if err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, now: c.Now, queryTimeout: c.QueryTimeout}

	deadline := time.Now().Add(c.StartTimeout)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err = s.Migrate(ctx)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, app.ErrUnavailable) || c.StartTimeout < 0 || time.Now().Add(wait).After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			continue
		}
		break
	}
	pool.Close()
	return nil, fmt.Errorf("postgres: open %s: %w", describe(pc), err)
}

// describe names the database for errors and logs, without credentials.
func describe(pc *pgxpool.Config) string {
	return fmt.Sprintf("database %q on %s:%d", pc.ConnConfig.Database, pc.ConnConfig.Host, pc.ConnConfig.Port)
}

// Pool returns the underlying pool, for pool metrics (Pool().Stat()) and for
// tests. Callers must not close it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool, waiting for acquired connections to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks a connection can be acquired and answers, within ctx's
// deadline (and at most QueryTimeout).
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	return s.wrap(ctx, "ping", s.pool.Ping(ctx))
}

// op bounds one Store call by the query timeout.
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.queryTimeout)
}

// retry runs f, and once more if its error is guaranteed to have happened
// before anything reached the server (a connection found dead on first use
// after the database restarted). Retrying then cannot apply a write twice.
func retry(ctx context.Context, f func() error) error {
	err := f()
	if err != nil && ctx.Err() == nil && pgconn.SafeToRetry(err) {
		err = f()
	}
	return err
}

func (s *Store) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// CreateUser implements app.Store.
func (s *Store) CreateUser(ctx context.Context, u *app.User) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	now := s.stamp()
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `INSERT INTO users
			(username, username_key, email, email_key, password_hash, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			u.Username, strings.ToLower(u.Username), u.Email, strings.ToLower(u.Email), u.PasswordHash, now,
		).Scan(&u.ID)
	})
	if err != nil {
		return s.wrap(ctx, fmt.Sprintf("create user %q", u.Username), err)
	}
	u.CreatedAt = now
	return nil
}

const userCols = `id, username, email, password_hash, created_at`

func scanUser(row pgx.Row) (app.User, error) {
	var u app.User
	if err := row.Scan(&u.ID, &u.Username, &u.Email, &u.PasswordHash, &u.CreatedAt); err != nil {
		return app.User{}, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// UserByID implements app.Store.
func (s *Store) UserByID(ctx context.Context, id int64) (app.User, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var u app.User
	err := retry(ctx, func() (err error) {
		u, err = scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
		return err
	})
	return u, s.wrap(ctx, fmt.Sprintf("user %d", id), err)
}

// UserByUsername implements app.Store.
func (s *Store) UserByUsername(ctx context.Context, username string) (app.User, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var u app.User
	err := retry(ctx, func() (err error) {
		u, err = scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE username_key = $1`,
			strings.ToLower(username)))
		return err
	})
	return u, s.wrap(ctx, fmt.Sprintf("user %q", username), err)
}

// CreateItem implements app.Store. An OwnerID that names no user (the
// foreign key fails) is app.ErrUnknownOwner.
func (s *Store) CreateItem(ctx context.Context, it *app.Item) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	now := s.stamp()
	err := retry(ctx, func() error {
		return s.pool.QueryRow(ctx, `INSERT INTO items (owner_id, name, description, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4) RETURNING id`, it.OwnerID, it.Name, it.Description, now).Scan(&it.ID)
	})
	if err != nil {
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23503" {
			return fmt.Errorf("create item: owner %d: %w", it.OwnerID, app.ErrUnknownOwner)
		}
		return s.wrap(ctx, "create item", err)
	}
	it.CreatedAt, it.UpdatedAt = now, now
	return nil
}

// CreateItemOnce implements app.IdempotentStore in one transaction. Two
// concurrent calls with one key both miss the key at first; the second's
// insert of the key waits for the first to commit and then fails on the
// primary key, rolling its item back, and its second attempt finds the
// first one's row.
func (s *Store) CreateItemOnce(ctx context.Context, it *app.Item, key app.IdempotencyKey) (bool, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	what := fmt.Sprintf("create item with idempotency key %q", key.Key)
	var (
		replayed bool
		err      error
	)
	for attempt := 0; attempt < 2; attempt++ {
		replayed, err = s.createItemOnce(ctx, it, key)
		if err == nil || classify(err) != app.ErrConflict {
			break
		}
	}
	if err != nil {
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23503" {
			return false, fmt.Errorf("create item: owner %d: %w", it.OwnerID, app.ErrUnknownOwner)
		}
		if errors.Is(err, app.ErrIdempotencyKeyReused) {
			return false, fmt.Errorf("%s: %w", what, err)
		}
		return false, s.wrap(ctx, what, err)
	}
	return replayed, nil
}

func (s *Store) createItemOnce(ctx context.Context, it *app.Item, key app.IdempotencyKey) (replayed bool, err error) {
	now := s.stamp()
	cutoff := now.Add(-app.IdempotencyWindow)
	var created app.Item
	err = retry(ctx, func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var (
				fp    string
				first app.Item
			)
			err := tx.QueryRow(ctx, `SELECT fingerprint, item_id, name, description, created_at
				FROM idempotency_keys WHERE owner_id = $1 AND key = $2 AND created_at > $3`, it.OwnerID, key.Key, cutoff).
				Scan(&fp, &first.ID, &first.Name, &first.Description, &first.CreatedAt)
			switch {
			case err == nil && fp != key.Fingerprint:
				return app.ErrIdempotencyKeyReused
			case err == nil:
				first.OwnerID, first.CreatedAt = it.OwnerID, first.CreatedAt.UTC()
				first.UpdatedAt = first.CreatedAt
				created, replayed = first, true
				return nil
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
			// Forget this owner's expired keys (this one included, if it expired).
			if _, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE owner_id = $1 AND created_at <= $2`,
				it.OwnerID, cutoff); err != nil {
				return err
			}
			created = app.Item{OwnerID: it.OwnerID, Name: it.Name, Description: it.Description, CreatedAt: now, UpdatedAt: now}
			if err := tx.QueryRow(ctx, `INSERT INTO items (owner_id, name, description, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $4) RETURNING id`, it.OwnerID, it.Name, it.Description, now).Scan(&created.ID); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO idempotency_keys
				(owner_id, key, fingerprint, item_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				it.OwnerID, key.Key, key.Fingerprint, created.ID, it.Name, it.Description, now)
			replayed = false
			return err
		})
	})
	if err != nil {
		return false, err
	}
	*it = created
	return replayed, nil
}

// CreateItems implements app.BulkStore: the inserts are sent as one pgx
// batch (one round trip) inside one transaction.
func (s *Store) CreateItems(ctx context.Context, items []*app.Item) error {
	if len(items) == 0 {
		return nil
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	what := fmt.Sprintf("create %d items", len(items))
	now := s.stamp()
	ids := make([]int64, len(items))
	err := retry(ctx, func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			for i, it := range items {
				b.Queue(`INSERT INTO items (owner_id, name, description, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $4) RETURNING id`, it.OwnerID, it.Name, it.Description, now).
					QueryRow(func(row pgx.Row) error { return row.Scan(&ids[i]) })
			}
			return tx.SendBatch(ctx, b).Close()
		})
	})
	if err != nil {
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23503" {
			return fmt.Errorf("%s: %w", what, app.ErrUnknownOwner)
		}
		return s.wrap(ctx, what, err)
	}
	for i, it := range items {
		it.ID, it.CreatedAt, it.UpdatedAt = ids[i], now, now
	}
	return nil
}

const itemCols = `id, owner_id, name, description, created_at, updated_at`

func scanItem(row pgx.Row) (app.Item, error) {
	var it app.Item
	if err := row.Scan(&it.ID, &it.OwnerID, &it.Name, &it.Description, &it.CreatedAt, &it.UpdatedAt); err != nil {
		return app.Item{}, err
	}
	it.CreatedAt, it.UpdatedAt = it.CreatedAt.UTC(), it.UpdatedAt.UTC()
	return it, nil
}

// Item implements app.Store.
func (s *Store) Item(ctx context.Context, ownerID, id int64) (app.Item, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var it app.Item
	err := retry(ctx, func() (err error) {
		it, err = scanItem(s.pool.QueryRow(ctx, `SELECT `+itemCols+` FROM items WHERE id = $1 AND owner_id = $2`, id, ownerID))
		return err
	})
	return it, s.wrap(ctx, fmt.Sprintf("item %d", id), err)
}

// listItemsSQL returns the page and the owner's total in one statement, so
// both come from the same snapshot. When the page is empty (an offset past
// the end) it still returns one row, with NULL item columns.
const listItemsSQL = `SELECT i.id, i.owner_id, i.name, i.description, i.created_at, i.updated_at, c.total
FROM (SELECT count(*) AS total FROM items WHERE owner_id = $1) AS c
LEFT JOIN LATERAL (
	SELECT ` + itemCols + ` FROM items WHERE owner_id = $1 ORDER BY id LIMIT $2 OFFSET $3
) AS i ON true
ORDER BY i.id`

// ListItems implements app.Store. A Limit outside 1..app.MaxPageLimit is
// clamped into it and a negative Offset counts as 0.
func (s *Store) ListItems(ctx context.Context, ownerID int64, p app.Page) ([]app.Item, int, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	limit := min(max(p.Limit, 1), app.MaxPageLimit)
	if p.Limit <= 0 {
		limit = app.DefaultPageLimit
	}
	offset := max(p.Offset, 0)
	var (
		items []app.Item
		total int
	)
	err := retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, listItemsSQL, ownerID, limit, offset)
		if err != nil {
			return err
		}
		defer rows.Close()
		items, total = make([]app.Item, 0, limit), 0
		for rows.Next() {
			var (
				id, owner        *int64
				name, desc       *string
				created, updated *time.Time
			)
			if err := rows.Scan(&id, &owner, &name, &desc, &created, &updated, &total); err != nil {
				return err
			}
			if id == nil {
				continue // empty page: only the total
			}
			items = append(items, app.Item{ID: *id, OwnerID: *owner, Name: *name, Description: *desc,
				CreatedAt: created.UTC(), UpdatedAt: updated.UTC()})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, s.wrap(ctx, "list items", err)
	}
	return items, total, nil
}

// UpdateItem implements app.Store. updated_at never moves backwards: the
// new value is the later of the stamp and the stored one, evaluated under
// the row lock. Concurrent updates of one item queue on that lock and, in
// READ COMMITTED, each re-reads the row the previous one committed, so a
// writer stamped earlier that commits later cannot put an older time back.
func (s *Store) UpdateItem(ctx context.Context, it *app.Item) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var got app.Item
	err := retry(ctx, func() (err error) {
		now := s.stamp()
		got, err = scanItem(s.pool.QueryRow(ctx, `UPDATE items SET name = $1, description = $2,
			updated_at = GREATEST(updated_at, $3) WHERE id = $4 AND owner_id = $5 RETURNING `+itemCols,
			it.Name, it.Description, now, it.ID, it.OwnerID))
		return err
	})
	if err != nil {
		return s.wrap(ctx, fmt.Sprintf("update item %d", it.ID), err)
	}
	*it = got
	return nil
}

// DeleteItem implements app.Store.
func (s *Store) DeleteItem(ctx context.Context, ownerID, id int64) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var tag pgconn.CommandTag
	err := retry(ctx, func() (err error) {
		tag, err = s.pool.Exec(ctx, `DELETE FROM items WHERE id = $1 AND owner_id = $2`, id, ownerID)
		return err
	})
	if err != nil {
		return s.wrap(ctx, fmt.Sprintf("delete item %d", id), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete item %d: %w", id, app.ErrNotFound)
	}
	return nil
}
