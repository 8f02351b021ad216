package httpapi

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's own counters, registered on the registry of
// Options.Telemetry next to telemetry's RED metrics. Their names are the
// ones the dashboards, rules and the app README's metric table use.
type metrics struct {
	signups      prometheus.Counter
	logins       *prometheus.CounterVec
	itemsCreated prometheus.Counter
	rejected     *prometheus.CounterVec // app_http_rate_limited_total
}

// newMetrics registers the API's counters on reg. Servers built on the same
// registry (tests build several) share them, as they share the registry's
// RED metrics.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		signups: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "app_signups_total",
			Help: "Successful user sign-ups.",
		})),
		logins: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "app_logins_total",
			Help: "Login attempts by result.",
		}, []string{"result"})),
		itemsCreated: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "app_items_created_total",
			Help: "Items created.",
		})),
		rejected: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "app_http_rate_limited_total",
			Help: "Requests rejected with 429 by the rate limiter, by route template and limit scope.",
		}, []string{"route", "scope"})),
	}
	// Dashboards divide by logins: both series exist from the start, so a
	// quiet service shows 0 instead of "no data".
	for _, r := range []string{"success", "failure"} {
		m.logins.WithLabelValues(r)
	}
	return m
}

// register registers c on reg, or returns the collector already registered
// under the same descriptors. Any other error is a programming error
// (a clash of names), found at start-up.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(err)
}

// signedUp counts a successful sign-up.
func (m *metrics) signedUp() { m.signups.Inc() }

// loginAttempt counts a login attempt; result is "success" or "failure".
func (m *metrics) loginAttempt(result string) { m.logins.WithLabelValues(result).Inc() }

// itemCreated counts a created item.
func (m *metrics) itemCreated() { m.itemsCreated.Inc() }

// rateLimited counts a request rejected with 429. route is a route
// template, scope one of the fixed scopes ("anonymous", "user", "login",
// "login_ip", "in_flight").
func (m *metrics) rateLimited(route, scope string) {
	m.rejected.WithLabelValues(route, scope).Inc()
}
