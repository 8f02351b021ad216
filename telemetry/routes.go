package telemetry

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// RouteFromPattern turns a ServeMux pattern (Request.Pattern) into the
// route label Middleware uses: "GET /api/v1/items/{id}" ->
// "/api/v1/items/{id}", "" (no pattern matched) -> Unmatched.
func RouteFromPattern(p string) string {
	if p == "" {
		return Unmatched
	}
	if i := strings.IndexAny(p, " \t"); i >= 0 {
		p = strings.TrimLeft(p[i:], " \t")
	}
	return p
}

// routeEntry is what Middleware needs per route, computed once: the label,
// the span name for each method and the http.route attribute.
type routeEntry struct {
	route     string
	spanNames [methodOther + 1]string // by methodIndex
	routeAttr attribute.KeyValue
}

func newRouteEntry(route string) *routeEntry {
	e := &routeEntry{route: route, routeAttr: semconv.HTTPRoute(route)}
	for i, m := range methodLabels {
		e.spanNames[i] = spanName(m, route)
	}
	return e
}

// routeSet bounds the route label whatever the Router returns. ServeMux
// returns registered patterns, except for one corner: a CONNECT request
// redirected to a trailing-slash pattern reports the redirect target path.
// After max distinct values every new one is recorded as "unmatched" and a
// warning is logged once.
type routeSet struct {
	max       int
	unmatched *routeEntry
	log       *slog.Logger

	// byPattern caches lookup for patterns whose route was accepted; at
	// most maxPatterns of them, so it stays bounded too.
	byPattern   sync.Map // pattern -> *routeEntry
	maxPatterns int

	mu       sync.Mutex // guards the rest
	routes   map[string]*routeEntry
	patterns int
	warned   bool
}

func newRouteSet(max int, log *slog.Logger) *routeSet {
	return &routeSet{
		max:         max,
		maxPatterns: 4 * max,
		unmatched:   newRouteEntry(Unmatched),
		log:         log,
		routes:      make(map[string]*routeEntry),
	}
}

// lookup returns the entry of the route of a ServeMux pattern ("" when
// nothing matched).
func (rs *routeSet) lookup(pattern string) *routeEntry {
	if pattern == "" {
		return rs.unmatched
	}
	if e, ok := rs.byPattern.Load(pattern); ok {
		return e.(*routeEntry)
	}
	route := RouteFromPattern(pattern)
	if route == Unmatched {
		return rs.unmatched
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	e, ok := rs.routes[route]
	if !ok {
		if len(rs.routes) >= rs.max {
			if !rs.warned {
				rs.warned = true
				rs.log.Warn("too many distinct routes; new ones are labelled unmatched", "max_routes", rs.max, "route", route)
			}
			return rs.unmatched
		}
		e = newRouteEntry(route)
		rs.routes[route] = e
	}
	if rs.patterns < rs.maxPatterns {
		if _, loaded := rs.byPattern.LoadOrStore(pattern, e); !loaded {
			rs.patterns++
		}
	}
	return e
}

// methodLabels are the method label values by methodIndex: the nine
// RFC 9110/5789 methods, then "_OTHER" (OpenTelemetry semconv).
var methodLabels = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace, "_OTHER",
}

// methodOther is the methodIndex of every method not in methodLabels.
const methodOther = len(methodLabels) - 1

// methodAttrs are the http.request.method attributes by methodIndex.
var methodAttrs = func() (a [methodOther]attribute.KeyValue) {
	for i := range a {
		a[i] = semconv.HTTPRequestMethodKey.String(methodLabels[i])
	}
	return a
}()

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodConnect:
		return 6
	case http.MethodOptions:
		return 7
	case http.MethodTrace:
		return 8
	}
	return methodOther
}

// normalizeMethod bounds the method label: the nine RFC 9110/5789 methods
// keep their name, anything else is "_OTHER" (OpenTelemetry semconv).
func normalizeMethod(m string) string { return methodLabels[methodIndex(m)] }

// spanName follows the HTTP semantic conventions: "{method} {route}", just
// "{method}" without a route, and "HTTP" for unknown methods.
func spanName(method, route string) string {
	m := normalizeMethod(method)
	if m == "_OTHER" {
		m = "HTTP"
	}
	if route == "" || route == Unmatched {
		return m
	}
	return m + " " + route
}
