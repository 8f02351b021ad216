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
	"github.com/glasshouse-dev/glasshouse/app/postgres"
	"github.com/glasshouse-dev/glasshouse/app/redislimit"
	"github.com/glasshouse-dev/glasshouse/internal/setting"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// config is every setting of the API server. settings declares each one
// once (flag, variable, default, usage, parsing); parseConfig, the only
// place that reads flags, the environment and the .env file, fills it.
type config struct {
	Addr, AdminAddr string
	// SocketMode is the permission of the Unix socket ADDR=unix:PATH
	// creates.
	SocketMode        os.FileMode
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
	// TrustedProxies are the peers whose X-Forwarded-For / X-Real-IP name
	// the client.
	TrustedProxies httpapi.Proxies
	// AllowedHosts are the Host names the public listener answers; empty
	// means any.
	AllowedHosts     []string
	RateLimitEnabled bool
	Limits           httpapi.Limits
	MaxBodyBytes     int64
	MaxHeaderBytes   int
	ConcurrencyLimit int
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
	ErrorWebhookURL     telemetry.Secret
	ErrorWebhookURLFile string
	ErrorAlertInterval  time.Duration
	SentryDSN           telemetry.Secret
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

// defaultAddr is the public listen address when ADDR is not set; the
// health subcommand probes it too.
const defaultAddr = ":8080"

// settings is every setting of the API server, each declared once, bound
// to the fields of c. The -h output lists them sorted by flag.
func (c *config) settings() []setting.Setting {
	return []setting.Setting{
		setting.Text(&c.Addr, "addr", "ADDR", defaultAddr, "public listen address: host:port, or unix:/path/to/api.sock for a Unix socket").Then(func() error {
			if c.Addr == "" {
				return errors.New("must not be empty")
			}
			if p, ok := strings.CutPrefix(c.Addr, "unix:"); ok && p == "" {
				return errors.New("unix: needs a socket path, like unix:/run/glasshouse/api.sock")
			}
			if p, ok := strings.CutPrefix(c.Addr, "unix:"); ok && p == "" {
				return errors.New("unix: needs a socket path, like unix:/run/glasshouse/api.sock")
			}
			return nil
		}),
		{Flag: "unix-socket-mode", Env: "UNIX_SOCKET_MODE", Default: "0660", Arg: "mode",
			Usage: "permission (octal) of the Unix socket ADDR=unix:PATH creates: who may connect", Set: func(v string) error {
				m, err := strconv.ParseUint(v, 8, 32)
				if err != nil || m > 0o777 {
					return fmt.Errorf("%q is not an octal permission like 0660", v)
				}
				c.SocketMode = os.FileMode(m)
				return nil
			}},
		setting.Text(&c.AdminAddr, "admin-addr", "ADMIN_ADDR", "127.0.0.1:8081", "admin listen address (/metrics, /debug/pprof/); keep it private").Then(func() error {
			if c.AdminAddr != "" && c.AdminAddr == c.Addr {
				return errors.New("must differ from ADDR: /metrics and /debug/pprof/ never share the public port")
			}
			return nil
		}),
		setting.List(&c.AdminHosts, "admin-hosts", "ADMIN_HOSTS", "comma-separated host names the admin listener answers besides IP addresses and localhost (e.g. the name Prometheus scrapes it by)",
			func(h string) (string, error) { return strings.ToLower(h), nil }),
		setting.Choice(&c.AppEnv, "env", "APP_ENV", "development", []string{"development", "production"}, "environment: development or production"),
		level(&c.LogLevel, "log-level", "LOG_LEVEL", slog.LevelInfo, "log level: debug, info, warn, error"),
		setting.Choice(&c.LogFormat, "log-format", "LOG_FORMAT", "auto", []string{"auto", "json", "text"}, "log format: auto (colour on a terminal, JSON otherwise), json, text"),
		setting.Bool(&c.AccessLog, "access-log", "ACCESS_LOG", true, "log one record per request"),
		setting.Text(&c.LogFile, "log-file", "LOG_FILE", "", "write JSON logs to this rotating file instead of stdout"),
		setting.Bool(&c.LogFileTee, "log-file-tee", "LOG_FILE_TEE", false, "with LOG_FILE, also keep writing logs to stdout (two writes per record)"),
		setting.Int(&c.LogBuffer, "log-buffer", "LOG_BUFFER", 0, 0, "buffer this many bytes of log output, flushed every 100ms and at shutdown; 0 writes each record at once"),
		setting.Int(&c.LogFileMaxSizeMB, "log-file-max-size-mb", "LOG_FILE_MAX_SIZE_MB", 100, 1, "rotate LOG_FILE when it reaches this many MB"),
		setting.Int(&c.LogFileMaxBackups, "log-file-max-backups", "LOG_FILE_MAX_BACKUPS", 5, 1, "rotated LOG_FILE copies to keep"),
		setting.Text(&c.DataDir, "data-dir", "DATA_DIR", "./data", "directory of the embedded SQLite database (glasshouse.db)"),
		setting.Text(&c.DatabaseURL, "database-url", "DATABASE_URL", "", "postgres://... selects PostgreSQL instead of SQLite"),
		setting.Text(&c.RedisURL, "redis-url", "REDIS_URL", "", "redis://... enables the Redis cache and shared rate limits"),
		setting.Optional(setting.Int(&c.DB.MinConns, "db-min-conns", "DB_MIN_CONNS", 0, 1, "PostgreSQL pool: connections kept open"),
			fmt.Sprintf("pool_min_conns in DATABASE_URL, else %d", postgres.DefaultMinConns), nil),
		setting.Optional(setting.Int(&c.DB.MaxConns, "db-max-conns", "DB_MAX_CONNS", 0, 1, "PostgreSQL pool: most connections"),
			fmt.Sprintf("pool_max_conns in DATABASE_URL, else %d", postgres.DefaultMaxConns), nil),
		setting.Optional(setting.Duration(&c.DB.MaxConnLifetime, "db-max-conn-lifetime", "DB_MAX_CONN_LIFETIME", 0, time.Nanosecond, "PostgreSQL: retire connections after this age"),
			setting.FormatDuration(postgres.DefaultMaxConnLifetime), nil),
		setting.Optional(setting.Duration(&c.DB.MaxConnIdleTime, "db-max-conn-idle-time", "DB_MAX_CONN_IDLE_TIME", 0, time.Nanosecond, "PostgreSQL: close connections idle this long"),
			setting.FormatDuration(postgres.DefaultMaxConnIdleTime), nil),
		setting.Optional(setting.Duration(&c.DB.ConnectTimeout, "db-connect-timeout", "DB_CONNECT_TIMEOUT", 0, time.Nanosecond, "PostgreSQL: dial and authenticate one connection within this"),
			setting.FormatDuration(postgres.DefaultConnectTimeout), nil),
		setting.Optional(setting.Duration(&c.DB.QueryTimeout, "db-query-timeout", "DB_QUERY_TIMEOUT", 0, time.Nanosecond, "PostgreSQL command timeout: each store call, waiting for a connection included, and statement_timeout"),
			setting.FormatDuration(postgres.DefaultQueryTimeout), nil),
		setting.Text(&c.RedisKeyPrefix, "redis-key-prefix", "REDIS_KEY_PREFIX", "glasshouse:", "prefix of every Redis key (cache and rate limits), so deployments can share one Redis"),
		setting.Duration(&c.CacheTTL, "cache-ttl", "CACHE_TTL", time.Minute, time.Second, "lifetime of an item in the Redis cache"),
		setting.Duration(&c.RedisTimeout, "redis-timeout", "REDIS_TIMEOUT", 100*time.Millisecond, time.Millisecond, "bound on each cache or rate-limit call to Redis; past it the API goes on without Redis"),
		setting.Choice(&c.RedisFailure, "rate-limit-redis-failure", "RATE_LIMIT_REDIS_FAILURE", redislimit.FailOpen, []redislimit.Mode{redislimit.FailOpen, redislimit.FailClosed},
			"rate limits while Redis is unreachable: open (in-process limits per instance) or closed (refuse with 429)"),
		setting.Text(&c.JWTSecret, "jwt-secret", "JWT_SECRET", "", "HS256 key, at least 32 bytes; required in production").Then(func() error {
			switch {
			case len(c.JWTSecret) > 0 && len(c.JWTSecret) < 32:
				return fmt.Errorf("is %d bytes; use at least 32 random bytes (e.g. openssl rand -base64 48)", len(c.JWTSecret))
			case c.production() && c.JWTSecret == "":
				return errors.New("is required when APP_ENV=production (the development key is public)")
			case c.production() && c.JWTSecret.Reveal() == auth.DevelopmentKey:
				return errors.New("the development key is refused when APP_ENV=production (it is public)")
			}
			return nil
		}),
		setting.Duration(&c.JWTTTL, "jwt-ttl", "JWT_TTL", 30*time.Minute, time.Minute, "access token lifetime"),
		setting.List(&c.CORSOrigins, "cors-origins", "CORS_ORIGINS", "comma-separated allowed origins (* for any); none by default", func(o string) (string, error) {
			if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
				return "", fmt.Errorf("%q is not an origin like https://app.example.com", o)
			}
			return strings.TrimSuffix(o, "/"), nil
		}),
		{Flag: "trusted-proxies", Env: "TRUSTED_PROXIES", Arg: "cidrs",
			Usage: "comma-separated CIDRs (and unix, for peers on a Unix socket) of proxies whose X-Forwarded-For (right-most untrusted entry), then X-Real-IP, name the client; none by default",
			Set: func(v string) (err error) {
				c.TrustedProxies, err = httpapi.ParseTrustedProxies(v)
				return err
			}},
		{Flag: "allowed-hosts", Env: "ALLOWED_HOSTS", Arg: "hosts",
			Usage: "comma-separated Host names answered (*.example.com for subdomains; list the pod IP for probes); any by default",
			Set: func(v string) (err error) {
				c.AllowedHosts, err = httpapi.ParseAllowedHosts(v)
				return err
			}},
		setting.Bool(&c.RateLimitEnabled, "rate-limit-enabled", "RATE_LIMIT_ENABLED", true, "false disables every rate limit (load tests)").Then(func() error {
			if !c.RateLimitEnabled {
				c.Limits = httpapi.Limits{}
				c.ConcurrencyLimitPerIP = 0
			}
			return nil
		}),
		limit(&c.Limits.Anonymous, "rate-limit-anonymous", "RATE_LIMIT_ANONYMOUS", httpapi.DefaultLimits.Anonymous, "per client IP on anonymous routes"),
		limit(&c.Limits.User, "rate-limit-user", "RATE_LIMIT_USER", httpapi.DefaultLimits.User, "per user on authenticated routes"),
		limit(&c.Limits.Login, "rate-limit-login", "RATE_LIMIT_LOGIN", httpapi.DefaultLimits.Login, "per client IP and username on login"),
		limit(&c.Limits.LoginIP, "rate-limit-login-ip", "RATE_LIMIT_LOGIN_IP", httpapi.DefaultLimits.LoginIP, "per client IP over all usernames on login, before any password is hashed"),
		setting.Int(&c.PasswordHashQueue, "password-hash-queue", "PASSWORD_HASH_QUEUE", httpapi.DefaultHashQueue, 1, "signups and logins hashing or waiting to hash at once, a quarter of it per client IP; beyond either a fast 503"),
		setting.Int(&c.MaxBodyBytes, "max-body-bytes", "MAX_BODY_BYTES", httpapi.DefaultMaxBodyBytes, 1024, "largest request body (413 beyond)"),
		setting.Int(&c.MaxHeaderBytes, "max-header-bytes", "MAX_HEADER_BYTES", 64<<10, 4096, "largest request header section net/http accepts"),
		setting.Int(&c.ConcurrencyLimit, "concurrency-limit", "CONCURRENCY_LIMIT", 1024, 0, "in-flight requests before fast 503s; 0 disables"),
		setting.Optional(setting.Int(&c.ConcurrencyLimitPerIP, "concurrency-limit-per-ip", "CONCURRENCY_LIMIT_PER_IP", 0, 0, "in-flight requests of one client IP before 429s"),
			"CONCURRENCY_LIMIT/8, at least 1; 0 disables; RATE_LIMIT_ENABLED=false disables", func() {
				if c.RateLimitEnabled && c.ConcurrencyLimit > 0 {
					c.ConcurrencyLimitPerIP = max(c.ConcurrencyLimit/8, 1)
				}
			}),
		setting.Int(&c.MinBodyRate, "min-body-rate", "MIN_BODY_RATE", httpapi.DefaultMinBodyRate, 0, "slowest request body, bytes/s on average after MIN_BODY_RATE_GRACE, before a 408; 0 disables"),
		setting.Duration(&c.MinBodyRateGrace, "min-body-rate-grace", "MIN_BODY_RATE_GRACE", httpapi.DefaultBodyRateGrace, 0, "time a request body may take before MIN_BODY_RATE applies"),
		setting.Duration(&c.ReadyCacheTTL, "ready-cache-ttl", "READY_CACHE_TTL", httpapi.DefaultReadyCacheTTL, time.Millisecond, "reuse a /health/ready result this long; the dependency checks run at most once at a time"),
		setting.Bool(&c.HealthDetailedSystem, "health-detailed-system", "HEALTH_DETAILED_SYSTEM", false, "show host and process resource use (CPU, memory, RSS, goroutines) on the public /health/detailed"),
		setting.Text(&c.ErrorWebhookURL, "error-webhook-url", "ERROR_WEBHOOK_URL", "",
			"Slack incoming-webhook URL that gets an alert for the first 5xx or panic of each kind (a secret; or use ERROR_WEBHOOK_URL_FILE)").Then(func() error {
			return checkWebhookURL(c.ErrorWebhookURL)
		}),
		setting.File(&c.ErrorWebhookURLFile, "error-webhook-url-file", "ERROR_WEBHOOK_URL_FILE",
			"file holding ERROR_WEBHOOK_URL (a mounted secret, as Alertmanager's slack_api_url_file)").Then(func() error {
			if c.ErrorWebhookURLFile == "" {
				return nil
			}
			if c.ErrorWebhookURL != "" {
				return errors.New("and ERROR_WEBHOOK_URL are both set; set one")
			}
			b, err := os.ReadFile(c.ErrorWebhookURLFile)
			if err != nil {
				return err
			}
			c.ErrorWebhookURL = telemetry.Secret(strings.TrimSpace(string(b)))
			return checkWebhookURL(c.ErrorWebhookURL)
		}),
		setting.Duration(&c.ErrorAlertInterval, "error-alert-interval", "ERROR_ALERT_INTERVAL", 10*time.Minute, time.Second,
			"at most one error alert per kind (error type and top stack frames) per this interval"),
		setting.Text(&c.SentryDSN, "sentry-dsn", "SENTRY_DSN", "", "also send every 5xx and panic to Sentry (https://KEY@HOST/PROJECT), tagged with its trace_id").Then(func() error {
			if d := c.SentryDSN.Reveal(); d != "" {
				if _, err := sentry.NewDsn(d); err != nil {
					return errors.New("is not a Sentry DSN like https://KEY@o0.ingest.sentry.io/PROJECT")
				}
			}
			return nil
		}),
		setting.Duration(&c.ReadHeaderTimeout, "read-header-timeout", "READ_HEADER_TIMEOUT", 5*time.Second, time.Millisecond, "time to read request headers"),
		setting.Duration(&c.ReadTimeout, "read-timeout", "READ_TIMEOUT", 15*time.Second, time.Millisecond, "time to read a whole request"),
		setting.Duration(&c.WriteTimeout, "write-timeout", "WRITE_TIMEOUT", 30*time.Second, time.Millisecond, "time to write a response"),
		setting.Duration(&c.IdleTimeout, "idle-timeout", "IDLE_TIMEOUT", 120*time.Second, time.Millisecond, "keep-alive idle time"),
		setting.Duration(&c.ShutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", 20*time.Second, 0, "grace period for in-flight requests on SIGTERM"),
		setting.Duration(&c.DrainDelay, "drain-delay", "SHUTDOWN_DRAIN_DELAY", 0, 0, "on SIGTERM, answer /health/ready with 503 this long before closing the listener (set ~5s behind a load balancer)"),
		setting.File(&c.TLSCertFile, "tls-cert-file", "TLS_CERT_FILE", "TLS certificate (PEM); enables HTTPS and HTTP/2").Then(func() error {
			if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
				return errors.New("and TLS_KEY_FILE must be set together")
			}
			return nil
		}),
		setting.File(&c.TLSKeyFile, "tls-key-file", "TLS_KEY_FILE", "TLS private key (PEM)"),
	}
}

// parseConfig resolves every setting with precedence flag > environment >
// .env file > default, and reports every problem at once, each starting
// with the setting's environment variable.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	table := c.settings()
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	envFile := fs.String("env-file", ".env", "optional KEY=VALUE file read before the environment")
	given := setting.Register(fs, table)
	if err := fs.Parse(args[1:]); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs setting.Problems
	dotenv, err := readDotEnv(*envFile)
	if err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, setting.Resolve(table, given, setting.Getenv(getenv), setting.Map(dotenv))...)
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
		return config{}, fmt.Errorf("invalid configuration:\n  %w", errs)
	}
	return c, nil
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
		slog.Int("trusted_proxies", len(c.TrustedProxies.Prefixes)), slog.Bool("trusted_proxies_unix", c.TrustedProxies.Unix),
		slog.String("allowed_hosts", strings.Join(c.AllowedHosts, ",")),
		slog.String("error_alert_interval", c.ErrorAlertInterval.String()), slog.Bool("sentry_dsn_set", c.SentryDSN != ""),
	)
}

// checkWebhookURL accepts an empty URL or an http(s) one. The URL is a
// secret: the error never repeats it.
func checkWebhookURL(u telemetry.Secret) error {
	if u == "" {
		return nil
	}
	if pu, err := url.Parse(u.Reveal()); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return errors.New("is not an http(s) URL (like https://hooks.slack.com/services/T0/B0/X)")
	}
	return nil
}
