package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/glasshouse-dev/glasshouse/app/auth"
	"github.com/glasshouse-dev/glasshouse/app/errtrack"
	"github.com/glasshouse-dev/glasshouse/app/fault"
	"github.com/glasshouse-dev/glasshouse/app/httpapi"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// run is the whole program: main only wires the process to it. It returns
// when ctx is canceled (after a graceful shutdown) or on a fatal error.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 1 && args[1] == "health" {
		return runHealth(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 1 && args[1] == "import" {
		return runImport(ctx, args[1:], getenv, stdin, stdout, stderr)
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h printed the settings: asking for help is not a failure
	}
	if err != nil {
		return err
	}
	ver := buildVersion()
	tel, err := telemetry.New(ctx, telemetry.Config{
		ServiceName:       "glasshouse-api", // OTEL_SERVICE_NAME still wins
		ServiceVersion:    ver,
		Environment:       cfg.AppEnv,
		LogLevel:          cfg.LogLevel,
		LogFormat:         cfg.LogFormat,
		LogWriter:         stdout,
		LogFile:           cfg.LogFile,
		LogFileMaxSizeMB:  cfg.LogFileMaxSizeMB,
		LogFileMaxBackups: cfg.LogFileMaxBackups,
		LogFileTee:        cfg.LogFileTee,
		LogBufferBytes:    cfg.LogBuffer,
		DisableAccessLog:  !cfg.AccessLog,
		Getenv:            cfg.Getenv,
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			fmt.Fprintf(stderr, "glasshouse-api: %v\n", err)
		}
	}()
	log := tel.Logger

	// SIGHUP reopens LOG_FILE (logrotate's postrotate) instead of ending
	// the process, which is what it would do by default.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	hupDone := make(chan struct{})
	defer func() { signal.Stop(hup); close(hupDone) }()
	go func() {
		for {
			select {
			case <-hup:
				if err := tel.ReopenLogFile(); err != nil {
					log.Error("SIGHUP: reopen log file", slog.String("err", err.Error()))
				} else {
					log.Info("SIGHUP: log file reopened", slog.String("log_file", cfg.LogFile))
				}
			case <-hupDone:
				return
			}
		}
	}()

	// parseConfig refuses an unset or development key in production, so
	// only development falls back to the development key.
	key := []byte(cfg.JWTSecret.Reveal())
	if len(key) == 0 {
		key = []byte(auth.DevelopmentKey)
		log.Warn("INSECURE: JWT_SECRET is not set; signing tokens with the public development key. " +
			"Anyone can forge tokens for this server. Set JWT_SECRET (32+ random bytes); APP_ENV=production refuses to start without it.")
	}
	tokens, err := auth.NewTokens(key, cfg.JWTTTL, nil)
	if err != nil {
		return fmt.Errorf("JWT_SECRET: %w", err)
	}

	// Fault injection (off until configured at /debug/fault on the admin
	// listener): per-route latency and 5xx, and database and Redis outages
	// (applied by openDeps at the dependencies).
	inj := fault.New(fault.Options{Route: func(r *http.Request) string { return telemetry.Route(r.Context()) }, Logger: log,
		// Liveness failing restarts the process: no fault may reach it.
		Exempt: []string{"/health/live"}})
	deps, err := openDeps(ctx, cfg, tel, inj)
	if err != nil {
		return err
	}
	defer func() {
		if err := deps.Close(); err != nil {
			log.Error("close dependencies", slog.String("err", err.Error()))
		}
	}()

	// Listen before serving so that address problems are reported at once
	// and tests can use port 0.
	ln, err := listen(cfg.Addr, cfg.SocketMode)
	if err != nil {
		return fmt.Errorf("ADDR: %w", err)
	}
	var adminLn net.Listener
	if cfg.AdminAddr != "" {
		if adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			ln.Close()
			return fmt.Errorf("ADMIN_ADDR: %w", err)
		}
	}

	// Error tracking: every 5xx and panic counted in app_errors_total;
	// alerts to the webhook and events to Sentry only when configured.
	errs, err := errtrack.New(errtrack.Options{Registry: tel.Registry, Logger: log,
		WebhookURL: cfg.ErrorWebhookURL.Reveal(), Interval: cfg.ErrorAlertInterval,
		SentryDSN: cfg.SentryDSN.Reveal(), Environment: cfg.AppEnv, Release: ver})
	if err != nil {
		ln.Close()
		if adminLn != nil {
			adminLn.Close()
		}
		return fmt.Errorf("SENTRY_DSN: %w", err)
	}
	defer func() {
		// After the servers have stopped: the last requests' alerts and
		// events are sent, within a bounded time.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := errs.Close(ctx); err != nil {
			log.Warn("error tracking: not everything sent", slog.String("err", err.Error()))
		}
	}()

	draining := new(atomic.Bool)
	handler := httpapi.NewServer(httpapi.Options{
		Store:                 deps.Store,
		Limiter:               deps.Limiter,
		Telemetry:             tel,
		Hasher:                auth.NewHasher(auth.OWASP, 0),
		Tokens:                tokens,
		Checks:                deps.Checks,
		Draining:              draining,
		Version:               ver,
		Limits:                cfg.Limits,
		MaxBodyBytes:          cfg.MaxBodyBytes,
		ConcurrencyLimit:      cfg.ConcurrencyLimit,
		ConcurrencyLimitPerIP: cfg.ConcurrencyLimitPerIP,
		MinBodyRate:           cfg.MinBodyRate,
		BodyRateGrace:         cfg.MinBodyRateGrace,
		ReadTimeout:           cfg.ReadTimeout,
		HashQueue:             cfg.PasswordHashQueue,
		ReadyCacheTTL:         cfg.ReadyCacheTTL,
		SystemDetails:         cfg.HealthDetailedSystem,
		CORSOrigins:           cfg.CORSOrigins,
		TrustedProxies:        cfg.TrustedProxies,
		AllowedHosts:          cfg.AllowedHosts,
		TLS:                   cfg.TLSCertFile != "",
		Inject:                inj.Middleware,
		Errors:                errs,
	})
	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          errorLog,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnContext:       httpapi.ConnContext,
	}
	if cfg.TLSCertFile != "" {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		// Plain HTTP: watch for requests with two lengths (smuggling).
		// Under TLS the raw bytes are ciphertext; net/http still takes
		// Transfer-Encoding and drops Content-Length.
		ln = httpapi.GuardListener(ln)
	}
	admin := &http.Server{
		Handler:           adminRoutes(tel, inj, cfg.AdminHosts),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ErrorLog:          errorLog,
	}

	serveErr := make(chan error, 2)
	go func() {
		var err error
		if cfg.TLSCertFile != "" {
			err = srv.ServeTLS(ln, cfg.TLSCertFile, cfg.TLSKeyFile)
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	}()
	if adminLn != nil {
		go func() {
			if err := admin.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("serve admin %s: %w", adminLn.Addr(), err)
			}
		}()
	}
	attrs := []any{slog.String("addr", ln.Addr().String()), slog.String("version", ver), slog.Any("config", cfg)}
	if adminLn != nil {
		attrs = append(attrs, slog.String("admin_addr", adminLn.Addr().String()))
	}
	log.Info("glasshouse-api listening", attrs...)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutdown: readiness now 503", slog.Duration("drain_delay", cfg.DrainDelay), slog.Duration("grace", cfg.ShutdownTimeout))
	case runErr = <-serveErr:
		log.Error("server failed; shutting down", slog.String("err", runErr.Error()))
	}
	draining.Store(true)
	if runErr == nil && cfg.DrainDelay > 0 {
		time.Sleep(cfg.DrainDelay) // load balancers see 503 on /health/ready and stop routing here
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	// Shutdown closes the listener (new connections are refused), closes
	// idle connections and waits for in-flight requests up to the grace
	// period.
	if err := srv.Shutdown(sctx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("graceful shutdown: %w", err))
		srv.Close()
	}
	if err := admin.Shutdown(sctx); err != nil {
		admin.Close()
	}
	if runErr == nil {
		log.Info("shutdown complete")
	}
	return runErr
}

// listen opens the public listener: TCP, or for "unix:PATH" a Unix socket
// whose file gets mode (who may connect; put it in a directory only the
// service and its proxy can reach, since the mode is applied just after
// the socket is created). A socket file left by a process that died is
// replaced; a live socket or any other file at PATH is an error. Closing
// the listener removes the file.
func listen(addr string, mode os.FileMode) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another process is listening on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return ln, nil
}

// runHealth GETs /health/live and returns an error unless it answers 200:
// a HEALTHCHECK for images without a shell or curl.
func runHealth(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := "http://127.0.0.1" + defaultAddr + "/health/live"
	socket, onSocket := strings.CutPrefix(getenv("ADDR"), "unix:")
	if onSocket {
		def = "http://localhost/health/live"
	} else if host, port, err := net.SplitHostPort(cmp.Or(getenv("ADDR"), defaultAddr)); err == nil {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		scheme := "http"
		if getenv("TLS_CERT_FILE") != "" {
			scheme = "https"
		}
		def = scheme + "://" + net.JoinHostPort(host, port) + "/health/live"
	}
	url := fs.String("url", def, "URL to check")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	tr := &http.Transport{
		// A local self-signed certificate must not fail the probe.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: strings.HasPrefix(*url, "https://127.0.0.1")},
	}
	if onSocket && *url == def {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}
	}
	client := &http.Client{Transport: tr}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s", *url, resp.Status)
	}
	fmt.Fprintf(stdout, "ok %s\n", *url)
	return nil
}

// version is the release version, set at link time with
// -ldflags "-X main.version=v1.2.3" (make build passes git describe, the
// Dockerfile its VERSION build argument). It is a package variable because
// that is the only thing -X can set; nothing assigns it at run time.
var version string

// buildVersion is the link-time version when there is one, else the module
// version, or the VCS revision for a source build.
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
