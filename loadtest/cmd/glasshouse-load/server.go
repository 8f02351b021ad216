package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/glasshouse-dev/glasshouse/loadtest"
)

// serverMetric is the histogram the API records every request in (the
// telemetry package's RED metric): its _count is the server's request
// count, its code label the status, its buckets the latency.
const serverMetric = "http_server_request_duration_seconds"

// serverView is the API's own account of the requests it served, read
// from its Prometheus exposition: the cumulative totals over every
// method, route and code.
type serverView struct {
	requests uint64
	errors   uint64    // code 5xx
	bounds   []float64 // bucket upper bounds in seconds, ascending, without +Inf
	counts   []uint64  // cumulative count per bound
}

// scrapeServer fetches url and sums serverMetric.
func scrapeServer(ctx context.Context, client *http.Client, url string) (serverView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return serverView{}, err
	}
	res, err := client.Do(req)
	if err != nil {
		return serverView{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return serverView{}, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return parseServerView(res.Body)
}

func parseServerView(r io.Reader) (serverView, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return serverView{}, fmt.Errorf("parse metrics: %w", err)
	}
	f := fams[serverMetric]
	if f == nil {
		// No request recorded yet: a histogram vector shows no series
		// until its first observation.
		return serverView{}, nil
	}
	if f.GetType() != dto.MetricType_HISTOGRAM {
		return serverView{}, fmt.Errorf("%s is a %s, want a histogram", serverMetric, f.GetType())
	}
	var v serverView
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		n := h.GetSampleCount()
		v.requests += n
		for _, l := range m.GetLabel() {
			if l.GetName() == "code" && strings.HasPrefix(l.GetValue(), "5") {
				v.errors += n
			}
		}
		var bounds []float64
		var counts []uint64
		for _, b := range h.GetBucket() {
			if math.IsInf(b.GetUpperBound(), 1) {
				continue
			}
			bounds = append(bounds, b.GetUpperBound())
			counts = append(counts, b.GetCumulativeCount())
		}
		switch {
		case v.bounds == nil:
			v.bounds, v.counts = bounds, counts
		case !slices.Equal(v.bounds, bounds):
			return serverView{}, fmt.Errorf("%s series have different buckets", serverMetric)
		default:
			for i, c := range counts {
				v.counts[i] += c
			}
		}
	}
	return v, nil
}

// since is v minus an earlier view of the same server.
func (v serverView) since(before serverView) serverView {
	d := serverView{requests: v.requests - before.requests, errors: v.errors - before.errors, bounds: v.bounds}
	d.counts = slices.Clone(v.counts)
	if slices.Equal(v.bounds, before.bounds) {
		for i := range d.counts {
			d.counts[i] -= before.counts[i]
		}
	}
	return d
}

// quantileBucket is the index of the bucket holding the q-quantile (the
// first whose cumulative count reaches q of the requests); len(bounds)
// is the +Inf bucket.
func (v serverView) quantileBucket(q float64) int {
	rank := uint64(math.Ceil(q * float64(v.requests)))
	for i, c := range v.counts {
		if c >= rank {
			return i
		}
	}
	return len(v.bounds)
}

// bucketOf is the index of the bucket a value (seconds) falls in.
func (v serverView) bucketOf(s float64) int {
	i, _ := slices.BinarySearch(v.bounds, s)
	return i
}

// bucketName formats bucket i as its range.
func (v serverView) bucketName(i int) string {
	lo, hi := "0", "+Inf"
	if i > 0 {
		lo = formatSeconds(v.bounds[i-1])
	}
	if i < len(v.bounds) {
		hi = formatSeconds(v.bounds[i])
	}
	return "(" + lo + ", " + hi + "]"
}

func formatSeconds(s float64) string {
	return strconv.FormatFloat(s*1000, 'f', -1, 64) + "ms"
}

// clientView is the load generator's account of the same requests.
type clientView struct {
	completed uint64 // requests that got a response (status != 0)
	errors    uint64 // 5xx responses
	p99       float64
}

func newClientView(rn *loadtest.Runner, res *loadtest.Result) clientView {
	var c clientView
	for _, s := range rn.Snapshot() {
		if s.Metric.Name != loadtest.HTTPReqs.Name {
			continue
		}
		st := ""
		for _, t := range s.Tags {
			if t.Key == "status" {
				st = t.Value
			}
		}
		code, _ := strconv.Atoi(st)
		if code == 0 {
			continue
		}
		c.completed += uint64(s.Agg.Sum)
		if code >= 500 {
			c.errors += uint64(s.Agg.Sum)
		}
	}
	p99, _ := res.Value(loadtest.HTTPReqDuration.Name, "p(99)")
	c.p99 = p99 / 1000
	return c
}

// errServerDisagrees fails the run when the client's and the server's
// accounts of the same requests differ beyond their tolerance.
var errServerDisagrees = errors.New("client and server metrics disagree")

// compareViews prints the client's and the server's request count, 5xx
// ratio and p99 side by side and checks that they agree: the completed
// requests exactly (each one the client saw answered was served and
// recorded once), the 5xx count exactly, and the client's p99 within one
// bucket of the server's histogram (the server only knows buckets, and the
// client's time adds the loopback round trip).
func compareViews(w io.Writer, c clientView, s serverView) error {
	ratio := func(a, b uint64) string {
		if b == 0 {
			return "0.00%"
		}
		return strconv.FormatFloat(100*float64(a)/float64(b), 'f', 2, 64) + "%"
	}
	sb, cb := s.quantileBucket(0.99), s.bucketOf(c.p99)
	fmt.Fprintf(w, "\n  █ CLIENT vs SERVER (%s)\n\n", serverMetric)
	row := func(name, client, server, tolerance string) {
		fmt.Fprintf(w, "    %-20s %-28s %-28s %s\n", name, client, server, tolerance)
	}
	row("", "client", "server", "tolerance")
	row("completed requests", strconv.FormatUint(c.completed, 10), strconv.FormatUint(s.requests, 10), "exact")
	row("5xx responses", fmt.Sprintf("%d (%s)", c.errors, ratio(c.errors, c.completed)), fmt.Sprintf("%d (%s)", s.errors, ratio(s.errors, s.requests)), "exact")
	row("p99", strconv.FormatFloat(c.p99*1000, 'f', 2, 64)+"ms in "+s.bucketName(cb), "in "+s.bucketName(sb), "one bucket")
	var errs []error
	if c.completed != s.requests {
		errs = append(errs, fmt.Errorf("completed requests: client %d, server %d", c.completed, s.requests))
	}
	if c.errors != s.errors {
		errs = append(errs, fmt.Errorf("5xx responses: client %d, server %d", c.errors, s.errors))
	}
	if d := cb - sb; d < -1 || d > 1 {
		errs = append(errs, fmt.Errorf("p99: client %s in bucket %s, server in bucket %s (more than one bucket apart)", formatSeconds(c.p99), s.bucketName(cb), s.bucketName(sb)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", errServerDisagrees, err)
	}
	fmt.Fprintln(w, "\n    ✓ client and server agree")
	return nil
}

// serverAfter scrapes the server after the run until it has recorded as
// many requests as the client completed: the server observes a request
// after writing its response, so the last ones may land a moment after
// the client has them. It gives up after wait and returns the last view.
func serverAfter(ctx context.Context, client *http.Client, url string, before serverView, want uint64, wait time.Duration) (serverView, error) {
	deadline := time.Now().Add(wait)
	for {
		v, err := scrapeServer(ctx, client, url)
		if err != nil {
			return serverView{}, err
		}
		d := v.since(before)
		if d.requests >= want || time.Now().After(deadline) {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return d, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}
