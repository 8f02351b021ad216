package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/auth"
	"github.com/glasshouse-dev/glasshouse/app/httpapi"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig([]string{"api", "-env-file="}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.AdminAddr != "127.0.0.1:8081" || c.DataDir != "./data" || c.AppEnv != "development" ||
		c.JWTTTL != 30*time.Minute || c.MaxBodyBytes != 1<<20 || c.ConcurrencyLimit != 1024 || !c.AccessLog ||
		c.LogFileMaxSizeMB != 100 || c.LogFileMaxBackups != 5 {
		t.Errorf("defaults = %+v", c)
	}
	if c.Limits != httpapi.DefaultLimits {
		t.Errorf("default limits %+v differ from httpapi.DefaultLimits %+v", c.Limits, httpapi.DefaultLimits)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, ".env")
	os.WriteFile(envFile, []byte("# comment\nexport ADDR=:7000\nDATA_DIR='/from/dotenv'\nLOG_LEVEL=\"debug\"\n\nJWT_TTL=10m\n"), 0o600)
	c, err := parseConfig([]string{"api", "-env-file", envFile, "-addr", ":9000"},
		envOf(map[string]string{"ADDR": ":8000", "DATA_DIR": "/from/env"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9000" || c.DataDir != "/from/env" || c.LogLevel.String() != "DEBUG" || c.JWTTTL != 10*time.Minute {
		t.Errorf("flag > env > .env > default violated: addr %q data %q level %v ttl %v", c.Addr, c.DataDir, c.LogLevel, c.JWTTTL)
	}
	// A flag set to "" still wins over the environment.
	c, err = parseConfig([]string{"api", "-env-file=", "-cors-origins="}, envOf(map[string]string{"CORS_ORIGINS": "https://a.example"}), io.Discard)
	if err != nil || len(c.CORSOrigins) != 0 {
		t.Errorf("explicit empty flag: %v, %v", c.CORSOrigins, err)
	}
}

// TestOTELVariablesFromDotEnv: OTEL_* may be set in the .env file like
// every other setting (the environment wins), and are checked with them.
func TestOTELVariablesFromDotEnv(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(envFile, []byte("OTEL_SERVICE_NAME=from-dotenv\nOTEL_EXPORTER_OTLP_ENDPOINT=http://dotenv:4318\n"), 0o600)
	c, err := parseConfig([]string{"api", "-env-file", envFile},
		envOf(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Getenv("OTEL_SERVICE_NAME"); got != "from-dotenv" {
		t.Errorf("OTEL_SERVICE_NAME = %q, want the .env value", got)
	}
	if got := c.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); got != "http://env:4318" {
		t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT = %q, want the environment's value", got)
	}
	os.WriteFile(envFile, []byte("OTEL_TRACES_SAMPLER=sometimes\n"), 0o600)
	if _, err := parseConfig([]string{"api", "-env-file", envFile}, envOf(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER") {
		t.Errorf("bad OTEL_TRACES_SAMPLER in .env: %v, want an error naming it", err)
	}
}

func TestConfigReportsEveryProblemAtOnce(t *testing.T) {
	_, err := parseConfig([]string{"api", "-env-file="}, envOf(map[string]string{
		"APP_ENV":                 "prod",
		"LOG_LEVEL":               "loud",
		"LOG_FORMAT":              "xml",
		"JWT_TTL":                 "soon",
		"JWT_SECRET":              "short",
		"MAX_BODY_BYTES":          "-1",
		"CONCURRENCY_LIMIT":       "many",
		"RATE_LIMIT_LOGIN":        "5",
		"RATE_LIMIT_USER":         "0/1s",
		"ACCESS_LOG":              "maybe",
		"LOG_FILE_TEE":            "sometimes",
		"LOG_BUFFER":              "-1",
		"SHUTDOWN_TIMEOUT":        "1 hour",
		"TLS_CERT_FILE":           "/nonexistent/cert.pem",
		"CORS_ORIGINS":            "app.example",
		"ADMIN_ADDR":              ":8080",
		"SHUTDOWN_DRAIN_DELAY":    "x",
		"LOG_FILE_MAX_SIZE_MB":    "big",
		"LOG_FILE_MAX_BACKUPS":    "0",
		"OTEL_TRACES_SAMPLER":     "sometimes",
		"OTEL_BSP_MAX_QUEUE_SIZE": "-5",
	}), io.Discard)
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, name := range []string{"APP_ENV", "LOG_LEVEL", "LOG_FORMAT", "JWT_TTL", "JWT_SECRET", "MAX_BODY_BYTES",
		"CONCURRENCY_LIMIT", "RATE_LIMIT_LOGIN", "RATE_LIMIT_USER", "ACCESS_LOG", "LOG_FILE_TEE", "LOG_BUFFER", "SHUTDOWN_TIMEOUT", "TLS_CERT_FILE",
		"CORS_ORIGINS", "ADMIN_ADDR", "SHUTDOWN_DRAIN_DELAY", "OTEL_TRACES_SAMPLER", "OTEL_BSP_MAX_QUEUE_SIZE",
		"LOG_FILE_MAX_SIZE_MB", "LOG_FILE_MAX_BACKUPS"} {
		if !strings.Contains(err.Error(), "\n  "+name+":") && !strings.Contains(err.Error(), "\n  "+name+"=") {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	if strings.Contains(err.Error(), `"short"`) {
		t.Errorf("the JWT secret's value appears in the error: %v", err)
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]ratelimit.Limit{
		"100/1s:200": {Rate: 100, Period: time.Second, Burst: 200},
		"5/1m":       {Rate: 5, Period: time.Minute, Burst: 5},
		"off":        {},
	} {
		if got, err := parseLimit(in); err != nil || got != want {
			t.Errorf("parseLimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, want := range []ratelimit.Limit{{}, {Rate: 5, Period: time.Minute, Burst: 5}, {Rate: 1, Period: 90 * time.Minute, Burst: 3},
		{Rate: 100, Period: 250 * time.Millisecond, Burst: 200}} {
		if got, err := parseLimit(formatLimit(want)); err != nil || got != want {
			t.Errorf("parseLimit(formatLimit(%+v)) = %+v, %v", want, got, err)
		}
	}
	for _, in := range []string{"", "5", "5/", "/1s", "a/1s", "5/x", "5/1s:0", "0/1s", "5/-1s", "5/1s:b"} {
		if _, err := parseLimit(in); err == nil {
			t.Errorf("parseLimit(%q) accepted", in)
		}
	}
}

func TestRateLimitOverride(t *testing.T) {
	c, err := parseConfig([]string{"api", "-env-file="}, envOf(map[string]string{"RATE_LIMIT_ENABLED": "false"}), io.Discard)
	if err != nil || c.Limits != (httpapi.Limits{}) {
		t.Errorf("RATE_LIMIT_ENABLED=false: limits %+v, %v; want all disabled", c.Limits, err)
	}
	c, err = parseConfig([]string{"api", "-env-file="}, envOf(map[string]string{"RATE_LIMIT_LOGIN": "off"}), io.Discard)
	if err != nil || c.Limits.Login != (ratelimit.Limit{}) || c.Limits.User == (ratelimit.Limit{}) {
		t.Errorf("RATE_LIMIT_LOGIN=off: %+v, %v", c.Limits, err)
	}
}

// TestProductionRefusesTheDevelopmentKey: the process exits with an error
// before it listens.
func TestProductionRefusesTheDevelopmentKey(t *testing.T) {
	addr := freeAddr(t)
	for name, secret := range map[string]string{"unset": "", "development key": auth.DevelopmentKey} {
		// A hang guard only: a server that starts anyway serves until
		// ctx ends, and its nil error fails the test.
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		err := run(ctx, []string{"api", "-env-file="}, envOf(map[string]string{
			"APP_ENV": "production", "JWT_SECRET": secret, "ADDR": addr, "ADMIN_ADDR": "", "DATA_DIR": t.TempDir(), "LOG_FORMAT": "json",
		}), nil, io.Discard, io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "JWT_SECRET") {
			t.Errorf("%s: run = %v, want a JWT_SECRET error", name, err)
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s: something listens on %s", name, addr)
		}
	}
}

// TestProductionDevelopmentKeyIsAConfigError: the public development key
// set explicitly in production is reported with the other config problems.
func TestProductionDevelopmentKeyIsAConfigError(t *testing.T) {
	_, err := parseConfig([]string{"api", "-env-file="}, envOf(map[string]string{
		"APP_ENV": "production", "JWT_SECRET": auth.DevelopmentKey, "LOG_LEVEL": "loud",
	}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "JWT_SECRET:") || !strings.Contains(err.Error(), "LOG_LEVEL:") {
		t.Errorf("parseConfig = %v, want both JWT_SECRET and LOG_LEVEL reported", err)
	}
	if err != nil && strings.Contains(err.Error(), auth.DevelopmentKey) {
		t.Errorf("the key appears in the error: %v", err)
	}
}

func TestUnknownFlag(t *testing.T) {
	if err := run(t.Context(), []string{"api", "-no-such-flag"}, envOf(nil), nil, io.Discard, io.Discard); err == nil {
		t.Error("unknown flag accepted")
	}
}

// TestEdgeSettings: the per-client, body-rate, hash-queue, readiness and
// admin settings, their defaults and derived values.
func TestEdgeSettings(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"defaults", nil, "per_ip=128 rate=1024 grace=2s queue=16 ready=1s system=false hosts=[]"},
		{"share follows CONCURRENCY_LIMIT", map[string]string{"CONCURRENCY_LIMIT": "80"}, "per_ip=10 rate=1024 grace=2s queue=16 ready=1s system=false hosts=[]"},
		{"at least one", map[string]string{"CONCURRENCY_LIMIT": "3"}, "per_ip=1 rate=1024 grace=2s queue=16 ready=1s system=false hosts=[]"},
		{"no concurrency limit, no share", map[string]string{"CONCURRENCY_LIMIT": "0"}, "per_ip=0 rate=1024 grace=2s queue=16 ready=1s system=false hosts=[]"},
		{"rate limits off", map[string]string{"RATE_LIMIT_ENABLED": "false"}, "per_ip=0 rate=1024 grace=2s queue=16 ready=1s system=false hosts=[]"},
		{"explicit", map[string]string{
			"CONCURRENCY_LIMIT_PER_IP": "7", "MIN_BODY_RATE": "0", "MIN_BODY_RATE_GRACE": "5s", "PASSWORD_HASH_QUEUE": "3",
			"READY_CACHE_TTL": "250ms", "HEALTH_DETAILED_SYSTEM": "true", "ADMIN_HOSTS": " API , metrics.internal,",
		}, "per_ip=7 rate=0 grace=5s queue=3 ready=250ms system=true hosts=[api metrics.internal]"},
	} {
		c, err := parseConfig([]string{"api", "-env-file="}, envOf(tt.env), io.Discard)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		got := fmt.Sprintf("per_ip=%d rate=%d grace=%v queue=%d ready=%v system=%v hosts=%v", c.ConcurrencyLimitPerIP, c.MinBodyRate,
			c.MinBodyRateGrace, c.PasswordHashQueue, c.ReadyCacheTTL, c.HealthDetailedSystem, c.AdminHosts)
		if got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	_, err := parseConfig([]string{"api", "-env-file="}, envOf(map[string]string{
		"CONCURRENCY_LIMIT_PER_IP": "-1", "MIN_BODY_RATE": "fast", "PASSWORD_HASH_QUEUE": "0", "READY_CACHE_TTL": "0s",
		"HEALTH_DETAILED_SYSTEM": "maybe", "RATE_LIMIT_LOGIN_IP": "lots", "MIN_BODY_RATE_GRACE": "-1s",
	}), io.Discard)
	for _, name := range []string{"CONCURRENCY_LIMIT_PER_IP", "MIN_BODY_RATE:", "PASSWORD_HASH_QUEUE", "READY_CACHE_TTL", "HEALTH_DETAILED_SYSTEM", "RATE_LIMIT_LOGIN_IP", "MIN_BODY_RATE_GRACE"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: error %v does not name it", name, err)
		}
	}
}

func TestErrorTrackingSettings(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "error_webhook_url")
	if err := os.WriteFile(secretFile, []byte("https://hooks.slack.com/services/T0/B0/fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"defaults", nil, "webhook= interval=10m0s sentry="},
		{"from env", map[string]string{"ERROR_WEBHOOK_URL": "http://127.0.0.1:9095/hooks/x", "ERROR_ALERT_INTERVAL": "1m",
			"SENTRY_DSN": "https://key@o1.ingest.sentry.io/42"},
			"webhook=http://127.0.0.1:9095/hooks/x interval=1m0s sentry=https://key@o1.ingest.sentry.io/42"},
		{"from a file", map[string]string{"ERROR_WEBHOOK_URL_FILE": secretFile},
			"webhook=https://hooks.slack.com/services/T0/B0/fromfile interval=10m0s sentry="},
	} {
		c, err := parseConfig([]string{"api", "-env-file="}, envOf(tt.env), io.Discard)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		got := fmt.Sprintf("webhook=%s interval=%v sentry=%s", c.ErrorWebhookURL.Reveal(), c.ErrorAlertInterval, c.SentryDSN.Reveal())
		if got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
		if logged := fmt.Sprint(c.LogValue()); strings.Contains(logged, "fromfile") || strings.Contains(logged, "key@") {
			t.Errorf("%s: a secret is logged: %s", tt.name, logged)
		}
	}
	for _, tt := range []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"ERROR_WEBHOOK_URL": "hooks.slack.com/secretpart"}, "ERROR_WEBHOOK_URL:"},
		{map[string]string{"ERROR_WEBHOOK_URL_FILE": "/nonexistent/secret"}, "ERROR_WEBHOOK_URL_FILE:"},
		{map[string]string{"ERROR_WEBHOOK_URL_FILE": secretFile, "ERROR_WEBHOOK_URL": "https://a.example/x"}, "ERROR_WEBHOOK_URL_FILE:"},
		{map[string]string{"ERROR_ALERT_INTERVAL": "often"}, "ERROR_ALERT_INTERVAL:"},
		{map[string]string{"SENTRY_DSN": "not-a-dsn-secretpart"}, "SENTRY_DSN:"},
	} {
		_, err := parseConfig([]string{"api", "-env-file="}, envOf(tt.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.name) {
			t.Errorf("%v: error %v does not name %s", tt.env, err, tt.name)
			continue
		}
		if strings.Contains(err.Error(), "secretpart") {
			t.Errorf("the error repeats a secret: %v", err)
		}
	}
}

// TestSettingsTable: each setting has its own flag and variable, its
// default is valid, and -h shows its variable and default.
func TestSettingsTable(t *testing.T) {
	var usage strings.Builder
	if _, err := parseConfig([]string{"api", "-h"}, envOf(nil), &usage); err == nil {
		t.Fatal("-h: no flag.ErrHelp")
	}
	var c config
	flags, envs := map[string]bool{}, map[string]bool{}
	for _, s := range c.settings() {
		if flags[s.Flag] || envs[s.Env] {
			t.Errorf("%s (-%s) is declared twice", s.Env, s.Flag)
		}
		flags[s.Flag], envs[s.Env] = true, true
		if s.Usage == "" || s.Env == "" {
			t.Errorf("-%s has no usage or no environment variable", s.Flag)
		}
		if err := s.Set(s.Default); err != nil {
			t.Errorf("%s: default %q: %v", s.Env, s.Default, err)
		}
		want := fmt.Sprintf("(env %s, default %q)", s.Env, s.Default)
		if !regexp.MustCompile(`(?m)^  -`+s.Flag+`\b`).MatchString(usage.String()) || !strings.Contains(usage.String(), want) {
			t.Errorf("-h does not list -%s with %s:\n%s", s.Flag, want, usage.String())
		}
	}
}

// TestSettingsFromEveryLayer: for every setting, a flag beats the
// environment, which beats the .env file, which beats the default; a bad
// value in a lower layer is never read once a higher one is set.
func TestSettingsFromEveryLayer(t *testing.T) {
	var table config
	for _, s := range table.settings() {
		if s.Default == "" {
			continue // no valid value to give every layer
		}
		t.Run(s.Env, func(t *testing.T) {
			envFile := filepath.Join(t.TempDir(), ".env")
			const bad = "not*valid/for=any:setting"
			for _, tt := range []struct {
				name        string
				flag        []string
				env, dotenv string
			}{
				{"flag over env", []string{"-" + s.Flag + "=" + s.Default}, bad, bad},
				{"env over .env", nil, s.Default, bad},
			} {
				os.WriteFile(envFile, []byte(s.Env+"="+tt.dotenv+"\n"), 0o600)
				args := append([]string{"api", "-env-file", envFile}, tt.flag...)
				_, err := parseConfig(args, envOf(map[string]string{s.Env: tt.env}), io.Discard)
				if err != nil && strings.Contains(err.Error(), s.Env+":") {
					t.Errorf("%s: %v", tt.name, err)
				}
			}
		})
	}
}

// TestBoolFlagAlone: a boolean setting's flag alone means true.
func TestBoolFlagAlone(t *testing.T) {
	c, err := parseConfig([]string{"api", "-env-file=", "-health-detailed-system", "-access-log=false"}, envOf(nil), io.Discard)
	if err != nil || !c.HealthDetailedSystem || c.AccessLog {
		t.Errorf("-health-detailed-system -access-log=false: system %v, access log %v, %v; want true, false", c.HealthDetailedSystem, c.AccessLog, err)
	}
}

// TestREADMEConfigTable: the configuration table in README.md names every
// setting, and only settings (OTEL_* belong to telemetry).
func TestREADMEConfigTable(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no ## Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		for _, m := range regexp.MustCompile("`([A-Z0-9_*]+)`").FindAllStringSubmatch(cells[1], -1) {
			documented[m[1]] = true
		}
	}
	if len(documented) < 10 {
		t.Fatalf("found only %d variables in README.md's configuration table; has its format changed?", len(documented))
	}
	var c config
	declared := map[string]bool{}
	for _, s := range c.settings() {
		declared[s.Env] = true
		if !documented[s.Env] {
			t.Errorf("%s is a setting but not in README.md's configuration table", s.Env)
		}
	}
	for env := range documented {
		if !declared[env] && !strings.HasPrefix(env, "OTEL_") {
			t.Errorf("README.md's configuration table documents %s, which is no setting", env)
		}
	}
}
