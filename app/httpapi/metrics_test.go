package httpapi

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestServersShareMetrics: two servers on one telemetry (one registry)
// do not clash at start-up; they count into the same series.
func TestServersShareMetrics(t *testing.T) {
	o := chainOptions(t)
	a, b := newServer(o), newServer(o)
	a.metrics.itemCreated()
	b.metrics.itemCreated()
	a.metrics.loginAttempt("failure")
	if got := testutil.ToFloat64(b.metrics.itemsCreated); got != 2 {
		t.Errorf("app_items_created_total = %v, want 2", got)
	}
	if got := testutil.ToFloat64(b.metrics.logins.WithLabelValues("failure")); got != 1 {
		t.Errorf(`app_logins_total{result="failure"} = %v, want 1`, got)
	}
	if got := testutil.ToFloat64(a.metrics.logins.WithLabelValues("success")); got != 0 {
		t.Errorf(`app_logins_total{result="success"} = %v, want 0`, got)
	}
}
