package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/glasshouse-dev/glasshouse/app/auth"
	"github.com/glasshouse-dev/glasshouse/app/httpapi"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/app/redislimit"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// config is every setting of the API server. parseConfig is the only place
// that reads flags, the environment and the .env file.
type config struct {
	Addr, AdminAddr   string
	AppEnv            string
	LogLevel          slog.Level
	LogFormat         string
	AccessLog         bool
	LogFile           string
	LogFileMaxSizeMB  int
	LogFileMaxBackups int
	LogFileTee        bool
	LogBuffer         int
	DataDir           string
	DatabaseURL       telemetry.Secret // may embed a password
	RedisURL          telemetry.Secret
	DB                dbConfig // PostgreSQL pool settings (deps.go)
	CacheTTL          time.Duration
	RedisTimeout      time.Duration
	RedisFailure      redislimit.Mode
	RedisKeyPrefix    string
	JWTSecret         telemetry.Secret
	JWTTTL            time.Duration
	CORSOrigins       []string
	RateLimitEnabled  bool
	Limits            httpapi.Limits
	MaxBodyBytes      int64
	MaxHeaderBytes    int
	ConcurrencyLimit  int
	// ConcurrencyLimitPerIP is the in-flight bound per client IP; 0 means
	// none.
	ConcurrencyLimitPerIP int
	MinBodyRate           int64
	MinBodyRateGrace      time.Duration
	PasswordHashQueue     int
	ReadyCacheTTL         time.Duration
	HealthDetailedSystem  bool
	// ErrorWebhookURL is the Slack incoming webhook for error alerts
	// (from ERROR_WEBHOOK_URL or the file ERROR_WEBHOOK_URL_FILE names);
	// empty sends none.
	ErrorWebhookURL    telemetry.Secret
	ErrorAlertInterval time.Duration
	SentryDSN          telemetry.Secret
	// AdminHosts are the Host names, besides loopback addresses and
	// localhost, that the admin listener answers.
	AdminHosts        []string
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	DrainDelay        time.Duration
	TLSCertFile       string
	TLSKeyFile        string
	// Getenv reads the environment, falling back to the .env file: what
	// telemetry reads OTEL_* through, so they may live in .env too.
	Getenv func(string) string
}

func (c config) production() bool { return c.AppEnv == "production" }

// setting is one flag with its environment variable and default.
type setting struct {
	flag, env, def, usage string
}

var settings = []setting{
	{"addr", "ADDR", ":8080", "public listen address"},
	{"admin-addr", "ADMIN_ADDR", "127.0.0.1:8081", "admin listen address (/metrics, /debug/pprof/); keep it private"},
	{"admin-hosts", "ADMIN_HOSTS", "", "comma-separated host names the admin listener answers besides IP addresses and localhost (e.g. the name Prometheus scrapes it by)"},
	{"env", "APP_ENV", "development", "environment: development or production"},
	{"log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error"},
	{"log-format", "LOG_FORMAT", "auto", "log format: auto (colour on a terminal, JSON otherwise), json, text"},
	{"access-log", "ACCESS_LOG", "true", "log one record per request"},
	{"log-file", "LOG_FILE", "", "write JSON logs to this rotating file instead of stdout"},
	{"log-file-tee", "LOG_FILE_TEE", "false", "with LOG_FILE, also keep writing logs to stdout (two writes per record)"},
	{"log-buffer", "LOG_BUFFER", "0", "buffer this many bytes of log output, flushed every 100ms and at shutdown; 0 writes each record at once"},
	{"log-file-max-size-mb", "LOG_FILE_MAX_SIZE_MB", "100", "rotate LOG_FILE when it reaches this many MB"},
	{"log-file-max-backups", "LOG_FILE_MAX_BACKUPS", "5", "rotated LOG_FILE copies to keep"},
	{"data-dir", "DATA_DIR", "./data", "directory of the embedded SQLite database (glasshouse.db)"},
	{"database-url", "DATABASE_URL", "", "postgres://... selects PostgreSQL instead of SQLite"},
	{"redis-url", "REDIS_URL", "", "redis://... enables the Redis cache and shared rate limits"},
	{"db-min-conns", "DB_MIN_CONNS", "", "PostgreSQL pool: connections kept open (empty: pool_min_conns in DATABASE_URL, else 10)"},
	{"db-max-conns", "DB_MAX_CONNS", "", "PostgreSQL pool: most connections (empty: pool_max_conns in DATABASE_URL, else 20)"},
	{"db-max-conn-lifetime", "DB_MAX_CONN_LIFETIME", "", "PostgreSQL: retire connections after this age (empty: 30m)"},
	{"db-max-conn-idle-time", "DB_MAX_CONN_IDLE_TIME", "", "PostgreSQL: close connections idle this long (empty: 5m)"},
	{"db-connect-timeout", "DB_CONNECT_TIMEOUT", "", "PostgreSQL: dial and authenticate one connection within this (empty: 2s)"},
	{"db-query-timeout", "DB_QUERY_TIMEOUT", "", "PostgreSQL command timeout: each store call, waiting for a connection included, and statement_timeout (empty: 5s)"},
	{"redis-key-prefix", "REDIS_KEY_PREFIX", "glasshouse:", "prefix of every Redis key (cache and rate limits), so deployments can share one Redis"},
	{"cache-ttl", "CACHE_TTL", "1m", "lifetime of an item in the Redis cache"},
	{"redis-timeout", "REDIS_TIMEOUT", "100ms", "bound on each cache or rate-limit call to Redis; past it the API goes on without Redis"},
	{"rate-limit-redis-failure", "RATE_LIMIT_REDIS_FAILURE", "open", "rate limits while Redis is unreachable: open (in-process limits per instance) or closed (refuse with 429)"},
	{"jwt-secret", "JWT_SECRET", "", "HS256 key, at least 32 bytes; required in production"},
	{"jwt-ttl", "JWT_TTL", "30m", "access token lifetime"},
	{"cors-origins", "CORS_ORIGINS", "", "comma-separated allowed origins (* for any); none by default"},
	{"rate-limit-enabled", "RATE_LIMIT_ENABLED", "true", "false disables every rate limit (load tests)"},
	{"rate-limit-anonymous", "RATE_LIMIT_ANONYMOUS", "100/1s:200", "per client IP on anonymous routes: RATE/PERIOD[:BURST], or off"},
	{"rate-limit-user", "RATE_LIMIT_USER", "100/1s:200", "per user on authenticated routes: RATE/PERIOD[:BURST], or off"},
	{"rate-limit-login", "RATE_LIMIT_LOGIN", "5/1m:5", "per client IP and username on login: RATE/PERIOD[:BURST], or off"},
	{"rate-limit-login-ip", "RATE_LIMIT_LOGIN_IP", "20/1m:20", "per client IP over all usernames on login, before any password is hashed: RATE/PERIOD[:BURST], or off"},
	{"password-hash-queue", "PASSWORD_HASH_QUEUE", "16", "signups and logins hashing or waiting to hash at once, a quarter of it per client IP; beyond either a fast 503"},
	{"max-body-bytes", "MAX_BODY_BYTES", "1048576", "largest request body (413 beyond)"},
	{"max-header-bytes", "MAX_HEADER_BYTES", "65536", "largest request header section net/http accepts"},
	{"concurrency-limit", "CONCURRENCY_LIMIT", "1024", "in-flight requests before fast 503s; 0 disables"},
	{"concurrency-limit-per-ip", "CONCURRENCY_LIMIT_PER_IP", "", "in-flight requests of one client IP before 429s (empty: CONCURRENCY_LIMIT/8, at least 1; 0 disables; RATE_LIMIT_ENABLED=false disables)"},
	{"min-body-rate", "MIN_BODY_RATE", "1024", "slowest request body, bytes/s on average after MIN_BODY_RATE_GRACE, before a 408; 0 disables"},
	{"min-body-rate-grace", "MIN_BODY_RATE_GRACE", "2s", "time a request body may take before MIN_BODY_RATE applies"},
	{"ready-cache-ttl", "READY_CACHE_TTL", "1s", "reuse a /health/ready result this long; the dependency checks run at most once at a time"},
	{"health-detailed-system", "HEALTH_DETAILED_SYSTEM", "false", "show host and process resource use (CPU, memory, RSS, goroutines) on the public /health/detailed"},
	{"error-webhook-url", "ERROR_WEBHOOK_URL", "", "Slack incoming-webhook URL that gets an alert for the first 5xx or panic of each kind (a secret; or use ERROR_WEBHOOK_URL_FILE)"},
	{"error-webhook-url-file", "ERROR_WEBHOOK_URL_FILE", "", "file holding ERROR_WEBHOOK_URL (a mounted secret, as Alertmanager's slack_api_url_file)"},
	{"error-alert-interval", "ERROR_ALERT_INTERVAL", "10m", "at most one error alert per kind (error type and top stack frames) per this interval"},
	{"sentry-dsn", "SENTRY_DSN", "", "also send every 5xx and panic to Sentry (https://KEY@HOST/PROJECT), tagged with its trace_id"},
	{"read-header-timeout", "READ_HEADER_TIMEOUT", "5s", "time to read request headers"},
	{"read-timeout", "READ_TIMEOUT", "15s", "time to read a whole request"},
	{"write-timeout", "WRITE_TIMEOUT", "30s", "time to write a response"},
	{"idle-timeout", "IDLE_TIMEOUT", "120s", "keep-alive idle time"},
	{"shutdown-timeout", "SHUTDOWN_TIMEOUT", "20s", "grace period for in-flight requests on SIGTERM"},
	{"drain-delay", "SHUTDOWN_DRAIN_DELAY", "0s", "on SIGTERM, answer /health/ready with 503 this long before closing the listener (set ~5s behind a load balancer)"},
	{"tls-cert-file", "TLS_CERT_FILE", "", "TLS certificate (PEM); enables HTTPS and HTTP/2"},
	{"tls-key-file", "TLS_KEY_FILE", "", "TLS private key (PEM)"},
}

// parseConfig resolves every setting with precedence flag > environment >
// .env file > default, and reports every problem at once.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	envFile := fs.String("env-file", ".env", "optional KEY=VALUE file read before the environment")
	vals := make(map[string]*string, len(settings))
	for _, s := range settings {
		vals[s.env] = fs.String(s.flag, "", s.usage+" (env "+s.env+", default "+strconv.Quote(s.def)+")")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })
	flagOf := make(map[string]string, len(settings))
	for _, s := range settings {
		flagOf[s.env] = s.flag
	}
	var errs []error
	dotenv, err := readDotEnv(*envFile)
	if err != nil {
		errs = append(errs, err)
	}
	get := func(env string) string {
		if setFlags[flagOf[env]] {
			return *vals[env]
		}
		if v := getenv(env); v != "" {
			return v
		}
		if v, ok := dotenv[env]; ok {
			return v
		}
		for _, s := range settings {
			if s.env == env {
				return s.def
			}
		}
		panic("unknown setting " + env) // programming error, caught by tests
	}
	bad := func(env, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{env}, a...)...))
	}
	dur := func(env string, min time.Duration) time.Duration {
		d, err := time.ParseDuration(get(env))
		if err != nil || d < min {
			bad(env, "%q is not a duration >= %v (like 30s or 5m)", get(env), min)
		}
		return d
	}
	integer := func(env string, min int64) int64 {
		n, err := strconv.ParseInt(get(env), 10, 64)
		if err != nil || n < min {
			bad(env, "%q is not an integer >= %d", get(env), min)
		}
		return n
	}
	boolean := func(env string) bool {
		b, err := strconv.ParseBool(get(env))
		if err != nil {
			bad(env, "%q is not true or false", get(env))
		}
		return b
	}
	limit := func(env string) ratelimit.Limit {
		l, err := parseLimit(get(env))
		if err != nil {
			bad(env, "%v", err)
		}
		return l
	}

	optional := func(env string, parse func(string) error) {
		if v := get(env); v != "" {
			if err := parse(v); err != nil {
				bad(env, "%v", err)
			}
		}
	}
	var db dbConfig
	optional("DB_MIN_CONNS", func(v string) error { return db.setConns(&db.MinConns, v, 1) })
	optional("DB_MAX_CONNS", func(v string) error { return db.setConns(&db.MaxConns, v, 1) })
	optional("DB_MAX_CONN_LIFETIME", func(v string) error { return setDur(&db.MaxConnLifetime, v) })
	optional("DB_MAX_CONN_IDLE_TIME", func(v string) error { return setDur(&db.MaxConnIdleTime, v) })
	optional("DB_CONNECT_TIMEOUT", func(v string) error { return setDur(&db.ConnectTimeout, v) })
	optional("DB_QUERY_TIMEOUT", func(v string) error { return setDur(&db.QueryTimeout, v) })
	redisFailure, err := redislimit.ParseMode(get("RATE_LIMIT_REDIS_FAILURE"))
	if err != nil {
		bad("RATE_LIMIT_REDIS_FAILURE", "%q is not open or closed", get("RATE_LIMIT_REDIS_FAILURE"))
	}

	c := config{
		Addr:              get("ADDR"),
		AdminAddr:         get("ADMIN_ADDR"),
		AppEnv:            get("APP_ENV"),
		LogFormat:         get("LOG_FORMAT"),
		AccessLog:         boolean("ACCESS_LOG"),
		LogFile:           get("LOG_FILE"),
		LogFileMaxSizeMB:  int(integer("LOG_FILE_MAX_SIZE_MB", 1)),
		LogFileMaxBackups: int(integer("LOG_FILE_MAX_BACKUPS", 1)),
		LogFileTee:        boolean("LOG_FILE_TEE"),
		LogBuffer:         int(integer("LOG_BUFFER", 0)),
		DataDir:           get("DATA_DIR"),
		DatabaseURL:       telemetry.Secret(get("DATABASE_URL")),
		RedisURL:          telemetry.Secret(get("REDIS_URL")),
		DB:                db,
		CacheTTL:          dur("CACHE_TTL", time.Second),
		RedisTimeout:      dur("REDIS_TIMEOUT", time.Millisecond),
		RedisFailure:      redisFailure,
		RedisKeyPrefix:    get("REDIS_KEY_PREFIX"),
		JWTSecret:         telemetry.Secret(get("JWT_SECRET")),
		JWTTTL:            dur("JWT_TTL", time.Minute),
		RateLimitEnabled:  boolean("RATE_LIMIT_ENABLED"),
		Limits: httpapi.Limits{Anonymous: limit("RATE_LIMIT_ANONYMOUS"), User: limit("RATE_LIMIT_USER"),
			Login: limit("RATE_LIMIT_LOGIN"), LoginIP: limit("RATE_LIMIT_LOGIN_IP")},
		MaxBodyBytes:         integer("MAX_BODY_BYTES", 1024),
		MaxHeaderBytes:       int(integer("MAX_HEADER_BYTES", 4096)),
		ConcurrencyLimit:     int(integer("CONCURRENCY_LIMIT", 0)),
		MinBodyRate:          integer("MIN_BODY_RATE", 0),
		MinBodyRateGrace:     dur("MIN_BODY_RATE_GRACE", 0),
		PasswordHashQueue:    int(integer("PASSWORD_HASH_QUEUE", 1)),
		ReadyCacheTTL:        dur("READY_CACHE_TTL", time.Millisecond),
		HealthDetailedSystem: boolean("HEALTH_DETAILED_SYSTEM"),
		ErrorAlertInterval:   dur("ERROR_ALERT_INTERVAL", time.Second),
		SentryDSN:            telemetry.Secret(get("SENTRY_DSN")),
		ReadHeaderTimeout:    dur("READ_HEADER_TIMEOUT", time.Millisecond),
		ReadTimeout:          dur("READ_TIMEOUT", time.Millisecond),
		WriteTimeout:         dur("WRITE_TIMEOUT", time.Millisecond),
		IdleTimeout:          dur("IDLE_TIMEOUT", time.Millisecond),
		ShutdownTimeout:      dur("SHUTDOWN_TIMEOUT", 0),
		DrainDelay:           dur("SHUTDOWN_DRAIN_DELAY", 0),
		TLSCertFile:          get("TLS_CERT_FILE"),
		TLSKeyFile:           get("TLS_KEY_FILE"),
	}
	if v := get("CONCURRENCY_LIMIT_PER_IP"); v != "" {
		c.ConcurrencyLimitPerIP = int(integer("CONCURRENCY_LIMIT_PER_IP", 0))
	} else {
		c.ConcurrencyLimitPerIP = max(c.ConcurrencyLimit/8, 1)
		if c.ConcurrencyLimit == 0 {
			c.ConcurrencyLimitPerIP = 0
		}
	}
	for _, h := range strings.Split(get("ADMIN_HOSTS"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.AdminHosts = append(c.AdminHosts, strings.ToLower(h))
		}
	}
	if !c.RateLimitEnabled {
		c.Limits = httpapi.Limits{}
		c.ConcurrencyLimitPerIP = 0
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL"))); err != nil {
		bad("LOG_LEVEL", "%q is not debug, info, warn or error", get("LOG_LEVEL"))
	}
	switch c.LogFormat {
	case "auto", "json", "text":
	default:
		bad("LOG_FORMAT", "%q is not auto, json or text", c.LogFormat)
	}
	switch c.AppEnv {
	case "development", "production":
	default:
		bad("APP_ENV", "%q is not development or production", c.AppEnv)
	}
	if c.Addr == "" {
		bad("ADDR", "must not be empty")
	}
	if c.AdminAddr != "" && c.AdminAddr == c.Addr {
		bad("ADMIN_ADDR", "must differ from ADDR: /metrics and /debug/pprof/ never share the public port")
	}
	if len(c.JWTSecret) > 0 && len(c.JWTSecret) < 32 {
		bad("JWT_SECRET", "is %d bytes; use at least 32 random bytes (e.g. openssl rand -base64 48)", len(c.JWTSecret))
	}
	if c.production() && c.JWTSecret == "" {
		bad("JWT_SECRET", "is required when APP_ENV=production (the development key is public)")
	}
	if c.production() && c.JWTSecret.Reveal() == auth.DevelopmentKey {
		bad("JWT_SECRET", "the development key is refused when APP_ENV=production (it is public)")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("TLS_CERT_FILE", "and TLS_KEY_FILE must be set together")
	}
	for _, f := range []struct{ env, path string }{{"TLS_CERT_FILE", c.TLSCertFile}, {"TLS_KEY_FILE", c.TLSKeyFile}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				bad(f.env, "%v", err)
			}
		}
	}
	c.ErrorWebhookURL = telemetry.Secret(get("ERROR_WEBHOOK_URL"))
	if path := get("ERROR_WEBHOOK_URL_FILE"); path != "" {
		if c.ErrorWebhookURL != "" {
			bad("ERROR_WEBHOOK_URL_FILE", "and ERROR_WEBHOOK_URL are both set; set one")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			bad("ERROR_WEBHOOK_URL_FILE", "%v", err)
		}
		c.ErrorWebhookURL = telemetry.Secret(strings.TrimSpace(string(b)))
	}
	if u := c.ErrorWebhookURL.Reveal(); u != "" {
		// The URL is a secret: the message never repeats it.
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("ERROR_WEBHOOK_URL", "is not an http(s) URL like https://hooks.slack.com/services/...")
		}
	}
	if d := c.SentryDSN.Reveal(); d != "" {
		if _, err := sentry.NewDsn(d); err != nil {
			bad("SENTRY_DSN", "is not a Sentry DSN like https://KEY@o0.ingest.sentry.io/PROJECT")
		}
	}
	for _, o := range strings.Split(get("CORS_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			bad("CORS_ORIGINS", "%q is not an origin like https://app.example.com", o)
		}
		c.CORSOrigins = append(c.CORSOrigins, strings.TrimSuffix(o, "/"))
	}
	// OTEL_* are telemetry's; checked here so that they are reported with
	// the rest.
	c.Getenv = func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return dotenv[k]
	}
	if err := telemetry.CheckEnv(c.Getenv); err != nil {
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			errs = append(errs, multi.Unwrap()...)
		} else {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return config{}, fmt.Errorf("invalid configuration:\n  %w", joinLines(errs))
	}
	return c, nil
}

type lines []error

func (l lines) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n  ")
}

func (l lines) Unwrap() []error { return l }

func joinLines(errs []error) error { return lines(errs) }

// parseLimit reads "RATE/PERIOD[:BURST]" (e.g. "100/1s:200", "5/1m") or
// "off". BURST defaults to RATE.
func parseLimit(s string) (ratelimit.Limit, error) {
	if s == "off" {
		return ratelimit.Limit{}, nil
	}
	rate, rest, ok := strings.Cut(s, "/")
	if !ok {
		return ratelimit.Limit{}, fmt.Errorf("%q is not RATE/PERIOD[:BURST] (like 100/1s:200) or off", s)
	}
	period, burst, hasBurst := strings.Cut(rest, ":")
	var l ratelimit.Limit
	var err1, err2, err3 error
	l.Rate, err1 = strconv.Atoi(rate)
	l.Period, err2 = time.ParseDuration(period)
	l.Burst = l.Rate
	if hasBurst {
		l.Burst, err3 = strconv.Atoi(burst)
	}
	if err := errors.Join(err1, err2, err3); err != nil || l.Rate < 1 || l.Period <= 0 || l.Burst < 1 {
		return ratelimit.Limit{}, fmt.Errorf("%q is not RATE/PERIOD[:BURST] with positive numbers (like 100/1s:200) or off", s)
	}
	return l, nil
}

// readDotEnv reads KEY=VALUE lines (blank lines and # comments skipped,
// optional "export ", values optionally in single or double quotes). A
// missing file is not an error.
func readDotEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) || path == "" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("env file %s:%d: want KEY=VALUE", path, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("env file %s: %w", path, err)
	}
	return out, nil
}

// LogValue lists the settings without secrets: DATABASE_URL, REDIS_URL,
// JWT_SECRET, the error webhook and SENTRY_DSN appear only as whether they
// are set.
func (c config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr), slog.String("admin_addr", c.AdminAddr), slog.String("env", c.AppEnv),
		slog.String("data_dir", c.DataDir), slog.Bool("database_url_set", c.DatabaseURL != ""),
		slog.Bool("redis_url_set", c.RedisURL != ""), slog.Bool("jwt_secret_set", c.JWTSecret != ""),
		slog.String("rate_limit_redis_failure", string(c.RedisFailure)),
		slog.String("jwt_ttl", c.JWTTTL.String()), slog.String("cors_origins", strings.Join(c.CORSOrigins, ",")),
		slog.Bool("rate_limit_enabled", c.RateLimitEnabled), slog.Int64("max_body_bytes", c.MaxBodyBytes),
		slog.Int("concurrency_limit", c.ConcurrencyLimit), slog.Int("concurrency_limit_per_ip", c.ConcurrencyLimitPerIP),
		slog.Int64("min_body_rate", c.MinBodyRate), slog.String("shutdown_timeout", c.ShutdownTimeout.String()),
		slog.Bool("tls", c.TLSCertFile != ""), slog.Bool("error_webhook_set", c.ErrorWebhookURL != ""),
		slog.String("error_alert_interval", c.ErrorAlertInterval.String()), slog.Bool("sentry_dsn_set", c.SentryDSN != ""),
	)
}
