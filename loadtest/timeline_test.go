package loadtest

import (
	"math"
	"testing"
	"time"

	"github.com/glasshouse-dev/glasshouse/loadtest/histogram"
)

// TestIntervalQuantiles: each interval's quantiles come from the samples
// recorded in that interval only, not from the run so far.
func TestIntervalQuantiles(t *testing.T) {
	reg := newRegistry()
	st := reg.metric(HTTPReqDuration.Name)
	tags := reg.tagSet(map[string]string{"status": "200"})
	prev := new(histogram.Histogram)
	near := func(got, want float64) bool { return math.Abs(got-want) <= want*histogram.RelativeError*2 }

	q, prev := intervalQuantiles(st, prev)
	if !math.IsNaN(q.P50) || !math.IsNaN(q.P99) {
		t.Errorf("no samples: %+v, want NaN", q)
	}
	for v := 1; v <= 100; v++ {
		reg.record(st, tags, float64(v), time.Now())
	}
	q, prev = intervalQuantiles(st, prev)
	if !near(q.P50, 50) || !near(q.P95, 95) || !near(q.P99, 99) {
		t.Errorf("first interval (1..100) = %+v, want p50 50, p95 95, p99 99", q)
	}
	for v := 1001; v <= 1100; v++ {
		reg.record(st, tags, float64(v), time.Now())
	}
	q, _ = intervalQuantiles(st, prev)
	if !near(q.P50, 1050) || !near(q.P95, 1095) || !near(q.P99, 1099) {
		t.Errorf("second interval (1001..1100) = %+v, want p50 1050, p95 1095, p99 1099", q)
	}
}

func TestFailedStatuses(t *testing.T) {
	got := FailedStatuses([]TimelinePoint{{Failed: map[string]float64{"503": 1, "0": 2}}, {Failed: map[string]float64{"500": 1, "503": 3}}})
	want := []string{"0", "500", "503"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("FailedStatuses = %v, want %v", got, want)
	}
}
