package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/fault"
	"github.com/glasshouse-dev/glasshouse/app/postgres"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/app/rediscache"
	"github.com/glasshouse-dev/glasshouse/app/redislimit"
	"github.com/glasshouse-dev/glasshouse/app/sqlite"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// dbConfig holds the PostgreSQL pool settings; zero values defer to the
// pool_* parameters in DATABASE_URL, then to the postgres package defaults.
type dbConfig struct {
	MinConns, MaxConns int32
	MaxConnLifetime    time.Duration
	MaxConnIdleTime    time.Duration
	ConnectTimeout     time.Duration
	QueryTimeout       time.Duration
}

// dependencyProbeInterval is how often the dependency checks run in the
// background, so app_dependency_up stays current without health traffic.
const dependencyProbeInterval = 5 * time.Second

// dependencies are what openDeps opened for NewServer.
type dependencies struct {
	Store   app.Store
	Limiter ratelimit.Limiter
	// Checks are the health checks that go with Store and Limiter.
	Checks  []app.Check
	closers []func() error
}

// Close closes what openDeps opened, last opened first, and returns every
// error. Later calls do nothing.
func (d *dependencies) Close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i]())
	}
	d.closers = nil
	return errors.Join(errs...)
}

// openDeps chooses and opens the store and the rate limiter from cfg, with
// the health checks that go with them; the caller closes them with
// dependencies.Close. It is the only place that picks implementations.
//
//   - Store: SQLite in DATA_DIR, or PostgreSQL when DATABASE_URL is a
//     postgres:// URL (check "database", required).
//   - REDIS_URL set: the store is wrapped in the Redis item cache, and rate
//     limits are shared through Redis with an in-process fallback
//     (RATE_LIMIT_REDIS_FAILURE); check "redis" is optional, so a Redis
//     outage shows as "degraded" and never fails readiness.
//
// The fault injector's outages ("database", "redis") are applied here, at
// the dependency itself, so an injected outage takes the same paths as a
// real one: the cache and the rate limiter fall back, the health checks
// fail, and app_dependency_up and the dependency logs follow.
func openDeps(ctx context.Context, cfg config, tel *telemetry.Telemetry, inj *fault.Injector) (_ *dependencies, err error) {
	d := &dependencies{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	var store app.Store
	switch u := cfg.DatabaseURL.Reveal(); {
	case u == "":
		s, err := openSQLite(ctx, cfg, tel)
		if err != nil {
			return nil, err
		}
		store = s
	case strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://"):
		s, err := openPostgres(ctx, cfg, tel)
		if err != nil {
			return nil, err
		}
		store = s
	default:
		return nil, errors.New("DATABASE_URL: want a postgres:// URL, or unset it to use SQLite in DATA_DIR")
	}
	d.closers = append(d.closers, store.Close)
	db := store
	// Below the cache, as in a real outage: cached item reads still succeed.
	store = inj.Store("database", store)
	checks := []app.Check{{Name: "database", Check: store.Ping}}
	var limiter ratelimit.Limiter = ratelimit.NewMemory(nil)

	health, err := newDependencyHealth(tel)
	if err != nil {
		return nil, err
	}
	if cfg.RedisURL != "" {
		rdb, err := openRedis(ctx, cfg, tel)
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, rdb.Close)
		cacheMetrics, err := rediscache.NewMetrics(tel.Registry)
		if err != nil {
			return nil, err
		}
		fallbackMetrics, err := redislimit.NewMetrics(tel.Registry)
		if err != nil {
			return nil, err
		}
		inj.Register("redis")
		rdb.AddHook(faultHook{err: func() error { return inj.Err("redis") }})
		onRedis := func(err error) { health.report("redis", err) }
		// The closers already close the store underneath the cache.
		store = rediscache.New(store, rdb, rediscache.Options{
			Prefix: cfg.RedisKeyPrefix + "cache:v1:", TTL: cfg.CacheTTL, Timeout: cfg.RedisTimeout,
			Recorder: cacheMetrics, OnError: onRedis,
		})
		limiter = redislimit.NewFallback(
			redislimit.New(rdb, redislimit.Options{Prefix: cfg.RedisKeyPrefix + "ratelimit:", Timeout: cfg.RedisTimeout}),
			limiter,
			redislimit.FallbackOptions{Mode: cfg.RedisFailure, Recorder: fallbackMetrics, OnError: onRedis},
		)
		checks = append(checks, app.Check{Name: "redis", Optional: true, Check: func(ctx context.Context) error {
			return rdb.Ping(ctx).Err()
		}})
	}
	down := func() error { return inj.Err("database") }
	once, okOnce := db.(app.IdempotentStore)
	bulk, okBulk := db.(app.BulkStore)
	if okOnce && okBulk {
		store = databaseStore{Store: store, once: once, bulk: bulk, down: down}
	}
	checks = health.wrap(checks)
	stop := health.probe(checks, dependencyProbeInterval)
	d.closers = append(d.closers, func() error { stop(); return nil })
	d.Store, d.Limiter, d.Checks = store, limiter, checks
	return d, nil
}

// databaseStore gives the composed store (the cache and the fault
// injector around the database) the database's optional methods,
// CreateItemOnce and CreateItems, which the decorators do not forward,
// failing like every other call while a database outage is injected. New
// items have no cache entries, so going around the cache loses nothing.
type databaseStore struct {
	app.Store
	once app.IdempotentStore
	bulk app.BulkStore
	down func() error
}

func (s databaseStore) CreateItemOnce(ctx context.Context, it *app.Item, key app.IdempotencyKey) (bool, error) {
	if err := s.down(); err != nil {
		return false, err
	}
	return s.once.CreateItemOnce(ctx, it, key)
}

func (s databaseStore) CreateItems(ctx context.Context, items []*app.Item) error {
	if err := s.down(); err != nil {
		return err
	}
	return s.bulk.CreateItems(ctx, items)
}

func openSQLite(ctx context.Context, cfg config, tel *telemetry.Telemetry) (*sqlite.Store, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	store, err := sqlite.Open(ctx, sqlitePath(cfg), sqlite.WithTracer(tel.ClientTracerProvider().Tracer("github.com/glasshouse-dev/glasshouse/app/sqlite")))
	if err != nil {
		return nil, err
	}
	err = registerDBPool(tel.Registry, "sqlite", func() dbPoolStats {
		st := store.Stats()
		return dbPoolStats{
			Acquired: int64(st.InUse), Idle: int64(st.Idle), Total: int64(st.OpenConnections),
			Max: int64(st.MaxOpenConnections), WaitCount: uint64(st.WaitCount), WaitDuration: st.WaitDuration,
		}
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

// sqlitePath is the SQLite database file in DATA_DIR.
func sqlitePath(cfg config) string { return filepath.Join(cfg.DataDir, "glasshouse.db") }

// postgresConfig is the pool configuration of DATABASE_URL and the DB_*
// settings.
func postgresConfig(cfg config) postgres.Config {
	return postgres.Config{
		URL:             cfg.DatabaseURL.Reveal(),
		MinConns:        cfg.DB.MinConns,
		MaxConns:        cfg.DB.MaxConns,
		MaxConnLifetime: cfg.DB.MaxConnLifetime,
		MaxConnIdleTime: cfg.DB.MaxConnIdleTime,
		ConnectTimeout:  cfg.DB.ConnectTimeout,
		QueryTimeout:    cfg.DB.QueryTimeout,
	}
}

// openPostgres opens the pool and applies the migrations, waiting up to the
// postgres package's start timeout for a database that is still starting.
func openPostgres(ctx context.Context, cfg config, tel *telemetry.Telemetry) (*postgres.Store, error) {
	pc := postgresConfig(cfg)
	pc.TracerProvider = tel.ClientTracerProvider()
	store, err := postgres.Open(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	err = registerDBPool(tel.Registry, "postgres", func() dbPoolStats {
		st := store.Pool().Stat()
		return dbPoolStats{
			Acquired: int64(st.AcquiredConns()), Idle: int64(st.IdleConns()), Total: int64(st.TotalConns()),
			Max: int64(st.MaxConns()), WaitCount: uint64(st.EmptyAcquireCount()), WaitDuration: st.EmptyAcquireWaitTime(),
		}
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

// openRedis builds the client for a dependency the API can run without:
// calls honour their context deadline (REDIS_TIMEOUT), nothing is retried
// (the cache and the limiter fall back instead, and a retry only doubles
// an outage's cost), and a failed dial is tried once. Settings given as
// REDIS_URL query parameters (pool_size, dial_timeout, ...) are kept.
// Redis being down at start is not an error: the API starts degraded.
func openRedis(ctx context.Context, cfg config, tel *telemetry.Telemetry) (*redis.Client, error) {
	o, err := redis.ParseURL(cfg.RedisURL.Reveal())
	if err != nil {
		// url.Error repeats the URL, password included; keep only its reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("REDIS_URL: %v", err)
	}
	if o.ClientName == "" {
		o.ClientName = "glasshouse-api"
	}
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
	if o.DialTimeout == 0 {
		o.DialTimeout = time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = time.Second
	}
	if o.PoolTimeout == 0 {
		o.PoolTimeout = time.Second
	}
	rdb := redis.NewClient(o)
	// Commands' arguments (cached items) stay out of spans.
	if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(tel.ClientTracerProvider()),
		redisotel.WithDBStatement(false)); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis tracing: %w", err)
	}
	if err := registerRedisPool(tel.Registry, func() redisPoolStats {
		st := rdb.PoolStats()
		return redisPoolStats{Total: st.TotalConns, Idle: st.IdleConns, Stale: st.StaleConns}
	}); err != nil {
		rdb.Close()
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		tel.Logger.Warn("redis unreachable at start; running degraded (store reads bypass the cache, rate limits fall back)",
			slog.String("addr", o.Addr), slog.String("rate_limit_redis_failure", string(cfg.RedisFailure)),
			slog.String("err", err.Error()))
	}
	return rdb, nil
}

// dependencyHealth keeps app_dependency_up current from every source that
// learns about a dependency (health checks, the background probe, the
// cache's and rate limiter's own calls) and logs each change of state once.
type dependencyHealth struct {
	tel     *telemetry.Telemetry
	metrics *depMetrics
	mu      sync.Mutex
	state   map[string]bool // known states; absent until first report
}

func newDependencyHealth(tel *telemetry.Telemetry) (*dependencyHealth, error) {
	m, err := newDepMetrics(tel.Registry)
	if err != nil {
		return nil, err
	}
	return &dependencyHealth{tel: tel, metrics: m, state: map[string]bool{}}, nil
}

// report records one outcome for dependency dep (err nil means up).
func (h *dependencyHealth) report(dep string, err error) {
	up := err == nil
	h.mu.Lock()
	was, known := h.state[dep]
	h.state[dep] = up
	h.mu.Unlock()
	h.metrics.setUp(dep, up)
	switch {
	case known && was == up:
	case !up:
		h.tel.Logger.Warn("dependency down", slog.String("dependency", dep), slog.String("err", err.Error()))
	case known:
		h.tel.Logger.Info("dependency back", slog.String("dependency", dep))
	}
}

// wrap makes each check report its outcome and latency. A check cut short
// by its caller (the health request went away) reports nothing.
func (h *dependencyHealth) wrap(checks []app.Check) []app.Check {
	out := make([]app.Check, len(checks))
	for i, c := range checks {
		check := c.Check
		c.Check = func(ctx context.Context) error {
			start := time.Now()
			err := check(ctx)
			if errors.Is(ctx.Err(), context.Canceled) {
				return err
			}
			h.metrics.observe(c.Name, time.Since(start), err)
			h.report(c.Name, err)
			return err
		}
		out[i] = c
	}
	return out
}

// probe runs checks now and then every interval until the returned func is
// called, which waits for the probe to stop.
func (h *dependencyHealth) probe(checks []app.Check, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg      sync.WaitGroup
		stopped atomic.Bool
	)
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			var cw sync.WaitGroup
			for _, c := range checks {
				cw.Go(func() {
					cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					defer cancel()
					c.Check(cctx)
				})
			}
			cw.Wait()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return func() {
		if stopped.CompareAndSwap(false, true) {
			cancel()
			wg.Wait()
		}
	}
}

// faultHook fails every Redis command while err returns an error
// (an outage injected at /debug/fault), so the cache, the rate limiter and
// the health check all see Redis as down.
type faultHook struct{ err func() error }

// DialHook leaves dialling alone: every command already fails in
// ProcessHook, and failed dials would put the pool into its dial-error
// backoff, delaying recovery when the fault is removed.
func (h faultHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h faultHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := h.err(); err != nil {
			return err
		}
		return next(ctx, cmd)
	}
}

func (h faultHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := h.err(); err != nil {
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}
