// Package httpapi is the glasshouse API's HTTP layer: NewServer builds the
// whole handler (routes.go lists every route on one screen), the
// production middleware chain, JSON decoding and RFC 9457 problem
// responses, health checks and the OpenAPI document.
//
// It imports app, app/auth, app/errtrack, app/ratelimit, telemetry, the
// OpenTelemetry trace API (to record a 5xx's cause on the span), the
// Prometheus client (its own counters) and klauspost/compress (response
// gzip); never a storage adapter, cmd chooses those (TestImports).
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/app/auth"
	"github.com/glasshouse-dev/glasshouse/app/errtrack"
	"github.com/glasshouse-dev/glasshouse/app/ratelimit"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// Limits are the rate-limit quotas. A zero Limit disables that limit (the
// load-test override); see DefaultLimits.
type Limits struct {
	Anonymous ratelimit.Limit // per client IP, on routes without a token
	User      ratelimit.Limit // per user, on authenticated routes
	Login     ratelimit.Limit // per client IP and username, on POST /api/v1/auth/login
	// LoginIP is per client IP over every username on POST
	// /api/v1/auth/login, checked before any password is hashed: a spray
	// of random usernames never meets Login.
	LoginIP ratelimit.Limit
}

// DefaultLimits are high enough that a local load test of a few thousand
// requests per second spread over many users is not throttled, while one
// client or user still cannot monopolise the API. Login allows 5 attempts
// per minute per client and username, LoginIP 20 per minute per client
// (bursts of 20) over all usernames.
var DefaultLimits = Limits{
	Anonymous: ratelimit.Limit{Rate: 100, Period: time.Second, Burst: 200},
	User:      ratelimit.Limit{Rate: 100, Period: time.Second, Burst: 200},
	Login:     ratelimit.Limit{Rate: 5, Period: time.Minute, Burst: 5},
	LoginIP:   ratelimit.Limit{Rate: 20, Period: time.Minute, Burst: 20},
}

// Options are NewServer's dependencies and settings. Store, Limiter,
// Telemetry, Hasher and Tokens are required.
type Options struct {
	Store     app.Store
	Limiter   ratelimit.Limiter
	Telemetry *telemetry.Telemetry // the API registers its own counters on its Registry
	Hasher    *auth.Hasher
	Tokens    *auth.Tokens
	// Checks run on /health/ready and /health/detailed.
	Checks []app.Check
	// Draining, when set and true, makes /health/ready answer 503 so load
	// balancers stop sending traffic before shutdown.
	Draining *atomic.Bool

	Version          string
	Now              func() time.Time // default time.Now
	Limits           Limits
	MaxBodyBytes     int64 // default 1 MiB
	ConcurrencyLimit int   // in-flight requests before fast 503s; <= 0 means no limit
	// ConcurrencyLimitPerIP bounds one client IP's requests in flight,
	// bodies still arriving included (429 beyond); <= 0 means no bound.
	ConcurrencyLimitPerIP int
	// MinBodyRate is the slowest average rate (bytes/s) at which a request
	// body may arrive once BodyRateGrace has passed (408 below it); 0
	// disables the check.
	MinBodyRate   int64
	BodyRateGrace time.Duration
	// ReadTimeout is the server's (http.Server.ReadTimeout): the body-rate
	// deadlines replace the server's deadline, so they never extend past
	// ReadTimeout from when the body's reading starts. 0: no such cap.
	ReadTimeout time.Duration
	// HashQueue bounds the signups and logins hashing a password or
	// waiting for the hasher, a quarter of it per client IP (fast 503
	// beyond); default DefaultHashQueue.
	HashQueue int
	// ReadyCacheTTL is how long a readiness result is served before the
	// checks run again (one run at a time); default DefaultReadyCacheTTL.
	ReadyCacheTTL time.Duration
	// SystemDetails adds host and process resource use (CPU, memory, RSS,
	// goroutines) to /health/detailed. Off by default: the public port
	// should not describe the host; the admin listener's /metrics has it.
	SystemDetails bool
	CORSOrigins   []string // allowed origins; "*" allows any; empty allows none
	// TrustedProxies are the peers whose X-Forwarded-For and X-Real-IP
	// name the client (rate limits, access log, spans); empty trusts none.
	TrustedProxies Proxies
	// AllowedHosts are the Host names (ParseAllowedHosts) answered;
	// any other gets 400 invalid_host. Empty answers any host.
	AllowedHosts []string
	TLS          bool          // sets Strict-Transport-Security
	CheckTimeout time.Duration // per readiness run; default 2s
	// Errors counts every 5xx and recovered panic in app_errors_total and
	// alerts on them (app/errtrack); nil counts nothing.
	Errors *errtrack.Tracker
	// Inject, when set, wraps the chain just inside the telemetry
	// middleware, so the latency and 5xx it injects (app/fault) are
	// measured like real ones.
	Inject func(http.Handler) http.Handler
}

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// DefaultReadyCacheTTL is Options.ReadyCacheTTL when it is 0.
const DefaultReadyCacheTTL = time.Second

type server struct {
	opts    Options
	log     *slog.Logger
	errs    *errorLog // respondErr's logger and error tracker
	tel     *telemetry.Telemetry
	metrics *metrics
	mux     *http.ServeMux
	started time.Time
	cors    map[string]bool
	anyCORS bool
	// systemStats is tel.SystemStats; tests replace it.
	systemStats func(context.Context) (telemetry.SystemStats, error)
	hashGate    *hashGate
	ready       *readiness
}

// NewServer returns the API's http.Handler with every route and the whole
// middleware chain.
func NewServer(o Options) http.Handler {
	s := newServer(o)
	return s.chain(s.mux)
}

func newServer(o Options) *server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 2 * time.Second
	}
	if o.HashQueue <= 0 {
		o.HashQueue = DefaultHashQueue
	}
	if o.ReadyCacheTTL <= 0 {
		o.ReadyCacheTTL = DefaultReadyCacheTTL
	}
	if o.Draining == nil {
		o.Draining = new(atomic.Bool)
	}
	s := &server{
		opts:     o,
		log:      o.Telemetry.Logger,
		tel:      o.Telemetry,
		metrics:  newMetrics(o.Telemetry.Registry),
		mux:      http.NewServeMux(),
		started:  o.Now(),
		cors:     map[string]bool{},
		hashGate: newHashGate(o.HashQueue),
	}
	s.errs = &errorLog{log: s.log, track: o.Errors}
	s.ready = &readiness{ttl: o.ReadyCacheTTL, now: o.Now, run: s.runChecks}
	s.systemStats = o.Telemetry.SystemStats
	for _, origin := range o.CORSOrigins {
		if origin == "*" {
			s.anyCORS = true
		}
		s.cors[origin] = true
	}
	addRoutes(s.mux, s)
	return s
}
