// Package fault injects failures into a running API so that its alerts can
// be proven end to end (the gameday) and its runbooks rehearsed: added
// latency and an error ratio per route, and simulated dependency outages.
// Faults are switched on and off at run time with JSON on the admin
// listener (Handler, served at /debug/fault), never on the public port.
//
// With no fault configured the middleware costs one atomic load per
// request. Its imports are limited to the standard library, package app
// and telemetry (TestImports).
package fault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glasshouse-dev/glasshouse/app"
	"github.com/glasshouse-dev/glasshouse/telemetry"
)

// Limits on a configuration, so a typo cannot hang the server for hours.
const (
	MaxDelay = time.Minute
	maxRules = 64
)

// AnyRoute in a rule's Route matches every route without a rule of its own.
const AnyRoute = "*"

// Duration is a time.Duration written in JSON as a Go duration string ("300ms").
type Duration time.Duration

// MarshalJSON writes d as "300ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string ("300ms", "1.5s").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"300ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Config is the set of active faults; the zero value means none. It is what
// GET /debug/fault returns and PUT /debug/fault accepts.
type Config struct {
	Latency []LatencyFault `json:"latency,omitempty"`
	Errors  []ErrorFault   `json:"errors,omitempty"`
	// Outages lists dependencies ("database", "redis") whose calls fail with
	// app.ErrUnavailable, as registered with Store or Register.
	Outages []string `json:"outages,omitempty"`
}

// LatencyFault delays a share of the requests to a route before they are
// handled.
type LatencyFault struct {
	// Route is a route template as in the route metric label
	// ("/api/v1/items/{id}", "unmatched") or "*" for every other route.
	Route string   `json:"route"`
	Delay Duration `json:"delay"`
	// Ratio is the share of matching requests delayed, in (0, 1].
	Ratio float64 `json:"ratio"`
}

// ErrorFault answers a share of the requests to a route with a 5xx status
// instead of handling them.
type ErrorFault struct {
	Route string  `json:"route"`
	Ratio float64 `json:"ratio"`
	// Status is the injected status, 500..599; 0 means 500.
	Status int `json:"status,omitempty"`
}

// Empty reports whether c injects nothing.
func (c Config) Empty() bool { return len(c.Latency) == 0 && len(c.Errors) == 0 && len(c.Outages) == 0 }

// Options configures New. The zero value is usable.
type Options struct {
	// Route names a request's route, matched against each rule's Route.
	// Default: the pattern the ServeMux matched without its method
	// (telemetry.RouteFromPattern of r.Pattern), "unmatched" outside the
	// mux; pass
	// func(r) string { return telemetry.Route(r.Context()) } when the
	// middleware runs inside telemetry.Middleware.
	Route func(*http.Request) string
	// Rand returns a number in [0, 1); default math/rand/v2.Float64.
	Rand func() float64
	// Logger records every change of configuration; default: discard.
	Logger *slog.Logger
	// Exempt lists routes that no fault ever reaches, whatever the rules
	// say: a rule naming one is refused, and "*" does not match it. Put
	// the liveness probe here, so an injected fault cannot get the process
	// restarted.
	Exempt []string
}

// Injector holds the active faults. Its methods are safe for concurrent use.
type Injector struct {
	opt   Options
	state atomic.Pointer[state]

	mu    sync.Mutex
	known map[string]bool // dependencies that can be taken down
}

type state struct {
	cfg     Config
	latency map[string]LatencyFault
	errors  map[string]ErrorFault
	down    map[string]bool
}

// New returns an Injector with no fault active.
func New(opt Options) *Injector {
	if opt.Route == nil {
		opt.Route = func(r *http.Request) string { return telemetry.RouteFromPattern(r.Pattern) }
	}
	if opt.Rand == nil {
		opt.Rand = rand.Float64
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	i := &Injector{opt: opt, known: map[string]bool{}}
	i.state.Store(&state{})
	return i
}

// Config returns the active faults.
func (i *Injector) Config() Config { return i.state.Load().cfg }

// Set validates c and makes it the active configuration, replacing the
// previous one. An invalid c changes nothing; the error names every bad
// field.
func (i *Injector) Set(c Config) error {
	st, err := i.compile(c)
	if err != nil {
		return err
	}
	i.state.Store(st)
	if c.Empty() {
		i.opt.Logger.Warn("fault injection cleared")
	} else {
		b, _ := json.Marshal(c)
		i.opt.Logger.Warn("fault injection active", slog.String("faults", string(b)))
	}
	return nil
}

// Reset removes every fault.
func (i *Injector) Reset() { _ = i.Set(Config{}) }

func (i *Injector) register(dep string) {
	i.mu.Lock()
	i.known[dep] = true
	i.mu.Unlock()
}

// Dependencies returns the names that Outages may list, sorted.
func (i *Injector) Dependencies() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Sorted(maps.Keys(i.known))
}

func (i *Injector) compile(c Config) (*state, error) {
	var errs []error
	st := &state{cfg: c, latency: map[string]LatencyFault{}, errors: map[string]ErrorFault{}, down: map[string]bool{}}
	checkRoute := func(field, route string, seen map[string]bool) {
		switch {
		case route == "":
			errs = append(errs, fmt.Errorf("%s.route: required (a route template such as /api/v1/items/{id}, or %q)", field, AnyRoute))
		case route != AnyRoute && route != "unmatched" && !strings.HasPrefix(route, "/"):
			errs = append(errs, fmt.Errorf("%s.route: %q must be a route template starting with / (without the method), or %q", field, route, AnyRoute))
		case slices.Contains(i.opt.Exempt, route):
			errs = append(errs, fmt.Errorf("%s.route: %q is exempt from fault injection", field, route))
		case seen[route]:
			errs = append(errs, fmt.Errorf("%s.route: %q appears twice", field, route))
		}
		seen[route] = true
	}
	checkRatio := func(field string, r float64) {
		if !(r > 0 && r <= 1) {
			errs = append(errs, fmt.Errorf("%s.ratio: %v must be in (0, 1]", field, r))
		}
	}
	if len(c.Latency) > maxRules || len(c.Errors) > maxRules || len(c.Outages) > maxRules {
		errs = append(errs, fmt.Errorf("at most %d latency, errors and outages entries each", maxRules))
	}
	seen := map[string]bool{}
	for n, f := range c.Latency {
		field := fmt.Sprintf("latency[%d]", n)
		checkRoute(field, f.Route, seen)
		checkRatio(field, f.Ratio)
		if d := time.Duration(f.Delay); d <= 0 || d > MaxDelay {
			errs = append(errs, fmt.Errorf("%s.delay: %v must be in (0, %v]", field, d, MaxDelay))
		}
		st.latency[f.Route] = f
	}
	seen = map[string]bool{}
	st.cfg.Errors = slices.Clone(c.Errors)
	for n, f := range c.Errors {
		field := fmt.Sprintf("errors[%d]", n)
		checkRoute(field, f.Route, seen)
		checkRatio(field, f.Ratio)
		if f.Status == 0 {
			f.Status = http.StatusInternalServerError
			st.cfg.Errors[n].Status = f.Status
		}
		if f.Status < 500 || f.Status > 599 {
			errs = append(errs, fmt.Errorf("%s.status: %d must be a 5xx status (500..599)", field, f.Status))
		}
		st.errors[f.Route] = f
	}
	known := i.Dependencies()
	for n, d := range c.Outages {
		switch {
		case !slices.Contains(known, d):
			errs = append(errs, fmt.Errorf("outages[%d]: unknown dependency %q (known: %s)", n, d, strings.Join(known, ", ")))
		case st.down[d]:
			errs = append(errs, fmt.Errorf("outages[%d]: %q appears twice", n, d))
		}
		st.down[d] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return st, nil
}

func (st *state) rule(route string) (LatencyFault, bool, ErrorFault, bool) {
	l, lok := st.latency[route]
	if !lok {
		l, lok = st.latency[AnyRoute]
	}
	e, eok := st.errors[route]
	if !eok {
		e, eok = st.errors[AnyRoute]
	}
	return l, lok, e, eok
}

// Middleware delays or fails requests as configured, then calls next. Put
// it inside the metrics middleware so injected latency and 5xx are measured
// like real ones. A request whose client goes away during an injected delay
// is passed on at once (the handler sees the canceled context).
func (i *Injector) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := i.state.Load()
		if len(st.latency) == 0 && len(st.errors) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		route := i.opt.Route(r)
		if slices.Contains(i.opt.Exempt, route) {
			next.ServeHTTP(w, r)
			return
		}
		l, lok, e, eok := st.rule(route)
		if lok && i.opt.Rand() < l.Ratio {
			t := time.NewTimer(time.Duration(l.Delay))
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
			}
		}
		if eok && i.opt.Rand() < e.Ratio {
			writeInjected(w, e.Status)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeInjected answers like the API's problem responses, marked so a
// reader of the access log or the response can tell it was injected.
func writeInjected(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Fault-Injected", "error")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status,
		"code": "fault_injected", "detail": "this failure was injected by the fault injector (/debug/fault on the admin listener)",
	})
}

// Err returns an error wrapping app.ErrUnavailable while dep is listed in
// Outages, nil otherwise. Adapters without a decorator here can call it
// before each call to dep (after Register).
func (i *Injector) Err(dep string) error {
	if i.state.Load().down[dep] {
		return fmt.Errorf("fault injection: %s outage: %w", dep, app.ErrUnavailable)
	}
	return nil
}

// Register declares dep as a dependency that Outages may list.
func (i *Injector) Register(dep string) { i.register(dep) }

// Store returns s decorated so that every call fails with an error wrapping
// app.ErrUnavailable while dep ("database") is listed in Outages. Close
// always reaches s.
func (i *Injector) Store(dep string, s app.Store) app.Store {
	i.register(dep)
	return &store{next: s, dep: dep, inj: i}
}

// Handler serves the configuration at /debug/fault:
//
//	GET          the active faults as JSON
//	PUT or POST  replace them with the JSON body (unknown fields are errors)
//	DELETE       remove every fault
//
// A PUT or POST must be Content-Type: application/json (415 otherwise), so
// an HTML form on another site cannot send one without a CORS preflight.
// Bad input is answered 400 with an application/problem+json body naming
// every bad field; the active faults are then unchanged.
func (i *Injector) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPut, http.MethodPost:
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				writeProblem(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
				return
			}
			var c Config
			dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				badRequest(w, "invalid JSON: "+err.Error())
				return
			}
			if dec.More() {
				badRequest(w, "invalid JSON: more than one value in the body")
				return
			}
			if err := i.Set(c); err != nil {
				badRequest(w, err.Error())
				return
			}
		case http.MethodDelete:
			i.Reset()
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT, POST, DELETE")
			writeProblem(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET, PUT, POST or DELETE")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(i.Config())
	})
}

func badRequest(w http.ResponseWriter, detail string) {
	writeProblem(w, http.StatusBadRequest, "invalid_fault_config", detail)
}

func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "code": code, "detail": detail,
	})
}

// store is the outage decorator returned by Injector.Store.
type store struct {
	next app.Store
	dep  string
	inj  *Injector
}

func (s *store) CreateUser(ctx context.Context, u *app.User) error {
	if err := s.inj.Err(s.dep); err != nil {
		return err
	}
	return s.next.CreateUser(ctx, u)
}

func (s *store) UserByID(ctx context.Context, id int64) (app.User, error) {
	if err := s.inj.Err(s.dep); err != nil {
		return app.User{}, err
	}
	return s.next.UserByID(ctx, id)
}

func (s *store) UserByUsername(ctx context.Context, username string) (app.User, error) {
	if err := s.inj.Err(s.dep); err != nil {
		return app.User{}, err
	}
	return s.next.UserByUsername(ctx, username)
}

func (s *store) CreateItem(ctx context.Context, it *app.Item) error {
	if err := s.inj.Err(s.dep); err != nil {
		return err
	}
	return s.next.CreateItem(ctx, it)
}

func (s *store) Item(ctx context.Context, ownerID, id int64) (app.Item, error) {
	if err := s.inj.Err(s.dep); err != nil {
		return app.Item{}, err
	}
	return s.next.Item(ctx, ownerID, id)
}

func (s *store) ListItems(ctx context.Context, ownerID int64, p app.Page) ([]app.Item, int, error) {
	if err := s.inj.Err(s.dep); err != nil {
		return nil, 0, err
	}
	return s.next.ListItems(ctx, ownerID, p)
}

func (s *store) UpdateItem(ctx context.Context, it *app.Item) error {
	if err := s.inj.Err(s.dep); err != nil {
		return err
	}
	return s.next.UpdateItem(ctx, it)
}

func (s *store) DeleteItem(ctx context.Context, ownerID, id int64) error {
	if err := s.inj.Err(s.dep); err != nil {
		return err
	}
	return s.next.DeleteItem(ctx, ownerID, id)
}

func (s *store) Ping(ctx context.Context) error {
	if err := s.inj.Err(s.dep); err != nil {
		return err
	}
	return s.next.Ping(ctx)
}

func (s *store) Close() error { return s.next.Close() }
