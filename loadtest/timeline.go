package loadtest

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/glasshouse-dev/glasshouse/loadtest/histogram"
)

// TimelinePoint is one interval (one second; the last may be shorter) of
// a run, recorded when RunOptions.Timeline is set: what the HTML report
// plots. Rates are per second over the interval; quantiles are in
// milliseconds over the interval's samples only, NaN when it had none.
type TimelinePoint struct {
	// At is the end of the interval, from the scenarios' start.
	At time.Duration
	// Requests is http_reqs per second.
	Requests float64
	// VUs is the number of VUs running at the end of the interval.
	VUs int64
	// Duration and Latency are http_req_duration and http_req_latency.
	Duration, Latency Quantiles
	// ScheduleLag is schedule_lag (arrival-rate executors only).
	ScheduleLag Quantiles
	// Dropped is dropped_iterations per second.
	Dropped float64
	// Failed is failed requests (http_req_failed) per second by status;
	// status "0" is a network error.
	Failed map[string]float64
}

// Quantiles are the p50, p95 and p99 of one interval's samples.
type Quantiles struct{ P50, P95, P99 float64 }

// timeline samples the run once a second. Only the Run goroutine uses it.
type timeline struct {
	r                  *runner
	points             []TimelinePoint
	lastAt             time.Duration
	reqs, dropped      float64
	failed             map[string]float64
	dur, lat, lag      *histogram.Histogram
	durSt, latSt, lagS *metricState
}

func newTimeline(r *runner) *timeline {
	return &timeline{r: r, failed: map[string]float64{}, durSt: r.httpDuration, latSt: r.httpLatency, lagS: r.scheduleLag,
		dur: new(histogram.Histogram), lat: new(histogram.Histogram), lag: new(histogram.Histogram)}
}

// sample records the interval since the previous sample. The final
// sample, taken after every VU has stopped, repeats the previous VU count.
func (tl *timeline) sample(final bool) {
	r := tl.r
	at := r.elapsed()
	secs := (at - tl.lastAt).Seconds()
	if secs <= 0 {
		return
	}
	p := TimelinePoint{At: at, VUs: r.active.Load(), Failed: map[string]float64{}}
	if final {
		p.VUs = r.peakActive.Load()
		if n := len(tl.points); n > 0 {
			p.VUs = tl.points[n-1].VUs
		}
	}
	reqs := r.httpReqs.aggregate(nil).Sum
	p.Requests = (reqs - tl.reqs) / secs
	dropped := r.dropped.aggregate(nil).Sum
	p.Dropped = (dropped - tl.dropped) / secs
	tl.reqs, tl.dropped = reqs, dropped
	for status, n := range failedByStatus(r.httpFailed) {
		if d := n - tl.failed[status]; d > 0 {
			p.Failed[status] = d / secs
		}
		tl.failed[status] = n
	}
	p.Duration, tl.dur = intervalQuantiles(tl.durSt, tl.dur)
	p.Latency, tl.lat = intervalQuantiles(tl.latSt, tl.lat)
	p.ScheduleLag, tl.lag = intervalQuantiles(tl.lagS, tl.lag)
	tl.lastAt = at
	tl.points = append(tl.points, p)
}

// failedByStatus sums the failed samples of the http_req_failed Rate by
// the status tag.
func failedByStatus(st *metricState) map[string]float64 {
	st.mu.RLock()
	sinks := slices.Clone(st.order)
	st.mu.RUnlock()
	out := map[string]float64{}
	for _, s := range sinks {
		status, _ := s.tags.Get("status")
		s.mu.Lock()
		n := s.nz
		s.mu.Unlock()
		if n > 0 {
			out[status] += float64(n)
		}
	}
	return out
}

// intervalQuantiles returns the quantiles of the samples st gained since
// prev (its aggregate at the previous sample), and the new aggregate.
func intervalQuantiles(st *metricState, prev *histogram.Histogram) (Quantiles, *histogram.Histogram) {
	cur := st.aggregate(nil).Hist
	type bucket struct {
		v float64
		n uint64
	}
	var delta []bucket
	before := map[float64]uint64{}
	prev.Each(func(v float64, n uint64) bool { before[v] = n; return true })
	var total uint64
	cur.Each(func(v float64, n uint64) bool {
		if d := n - before[v]; n > before[v] {
			delta = append(delta, bucket{v, d})
			total += d
		}
		return true
	})
	if total == 0 {
		return Quantiles{math.NaN(), math.NaN(), math.NaN()}, cur
	}
	q := func(f float64) float64 {
		rank := uint64(math.Ceil(f * float64(total)))
		var seen uint64
		for _, b := range delta {
			if seen += b.n; seen >= rank {
				return b.v
			}
		}
		return delta[len(delta)-1].v
	}
	return Quantiles{q(0.5), q(0.95), q(0.99)}, cur
}

// FailedStatuses lists the statuses of every point's Failed, sorted
// numerically ("0" first).
func FailedStatuses(points []TimelinePoint) []string {
	var out []string
	for _, p := range points {
		for s := range p.Failed {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return out
}
