// Package promexport exposes a running load test's metrics in the
// Prometheus text format under the names k6's Prometheus remote-write
// output uses (k6_ prefix, _total counters, _rate rates, time trends as
// histograms in seconds), so a Grafana dashboard can show the generator's
// view beside the server's. loadtest/README.md lists every name.
//
// It imports loadtest and the Prometheus client library; loadtest does not
// import it.
package promexport

import (
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/glasshouse-dev/glasshouse/loadtest"
	"github.com/glasshouse-dev/glasshouse/loadtest/histogram"
)

// Source is what the collector reads; *loadtest.Runner implements it.
type Source interface {
	Snapshot() []loadtest.SeriesSnapshot
	ThresholdResults() []loadtest.ThresholdResult
}

// Buckets are the histogram bucket upper bounds in seconds. 0.25 is the
// API's latency SLO threshold.
var Buckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Quantiles are the objectives of non-time trends' summaries.
var Quantiles = []float64{0.5, 0.9, 0.95, 0.99}

// dropped are unbounded tags that never become labels.
var dropped = map[string]bool{"url": true, "error": true, "vu": true, "iter": true}

// Collector is a prometheus.Collector over a Source. It is unchecked (it
// describes nothing up front) because the label sets follow the run's tags.
type Collector struct{ src Source }

// New returns a collector reading src at every scrape.
func New(src Source) *Collector { return &Collector{src: src} }

// Handler serves src's metrics (and nothing else) at any path.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(src))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Describe implements prometheus.Collector (unchecked).
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

var invalidLabel = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func labelName(k string) string {
	l := invalidLabel.ReplaceAllString(k, "_")
	if l == "" || (l[0] >= '0' && l[0] <= '9') || strings.HasPrefix(l, "__") {
		l = "tag_" + l
	}
	return l
}

type family struct {
	metric loadtest.Metric
	labels []string // sorted label names
	series map[string]*merged
	order  []string
}

type merged struct {
	values []string
	agg    loadtest.Agg
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	fams := map[string]*family{}
	var names []string
	snap := c.src.Snapshot()
	for _, s := range snap {
		f := fams[s.Metric.Name]
		if f == nil {
			f = &family{metric: s.Metric, series: map[string]*merged{}}
			fams[s.Metric.Name] = f
			names = append(names, s.Metric.Name)
		}
		for _, t := range s.Tags {
			if l := labelName(t.Key); !dropped[t.Key] && !slices.Contains(f.labels, l) {
				f.labels = append(f.labels, l)
			}
		}
	}
	for _, f := range fams {
		slices.Sort(f.labels)
	}
	for _, s := range snap {
		f := fams[s.Metric.Name]
		vals := make([]string, len(f.labels))
		for _, t := range s.Tags {
			if dropped[t.Key] {
				continue
			}
			if i := slices.Index(f.labels, labelName(t.Key)); i >= 0 {
				vals[i] = t.Value
			}
		}
		key := strings.Join(vals, "\x00")
		m := f.series[key]
		if m == nil {
			m = &merged{values: vals, agg: loadtest.Agg{Metric: s.Metric}}
			if s.Metric.Type == loadtest.Trend {
				m.agg.Hist = new(histogram.Histogram)
			}
			f.series[key] = m
			f.order = append(f.order, key)
		}
		mergeAgg(&m.agg, s.Agg)
	}
	for _, n := range names {
		f := fams[n]
		for _, k := range f.order {
			emit(ch, f, f.series[k])
		}
	}
	c.collectThresholds(ch)
}

func mergeAgg(dst *loadtest.Agg, a loadtest.Agg) {
	switch a.Metric.Type {
	case loadtest.Trend:
		dst.Hist.Merge(a.Hist)
	case loadtest.Gauge:
		if !dst.HasData || a.Min < dst.Min {
			dst.Min = a.Min
		}
		if !dst.HasData || a.Max > dst.Max {
			dst.Max = a.Max
		}
		dst.Value = a.Value
	}
	dst.Sum += a.Sum
	dst.Count += a.Count
	dst.Passes += a.Passes
	dst.HasData = true
}

func emit(ch chan<- prometheus.Metric, f *family, m *merged) {
	name := "k6_" + f.metric.Name
	help := "k6 " + f.metric.Type.String() + " metric " + f.metric.Name + " (glasshouse loadtest)."
	a := m.agg
	switch f.metric.Type {
	case loadtest.Counter:
		d := prometheus.NewDesc(name+"_total", help, f.labels, nil)
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, a.Sum, m.values...)
	case loadtest.Gauge:
		d := prometheus.NewDesc(name, help, f.labels, nil)
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, a.Value, m.values...)
	case loadtest.Rate:
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name+"_rate", help+" Share of non-zero samples so far.", f.labels, nil),
			prometheus.GaugeValue, a.RateValue(), m.values...)
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name+"_samples_total", help+" Samples.", f.labels, nil),
			prometheus.CounterValue, float64(a.Count), m.values...)
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name+"_nonzero_total", help+" Non-zero samples.", f.labels, nil),
			prometheus.CounterValue, float64(a.Passes), m.values...)
	case loadtest.Trend:
		h := a.Hist
		if f.metric.Contains == loadtest.Time {
			buckets := make(map[float64]uint64, len(Buckets))
			for _, b := range Buckets {
				buckets[b] = h.CountAtOrBelow(b * 1000)
			}
			d := prometheus.NewDesc(name+"_seconds", help+" Seconds.", f.labels, nil)
			ch <- prometheus.MustNewConstHistogram(d, h.Count(), h.Sum()/1000, buckets, m.values...)
			return
		}
		q := make(map[float64]float64, len(Quantiles))
		for _, o := range Quantiles {
			if v := h.Quantile(o); !math.IsNaN(v) {
				q[o] = v
			}
		}
		d := prometheus.NewDesc(name, help, f.labels, nil)
		ch <- prometheus.MustNewConstSummary(d, h.Count(), h.Sum(), q, m.values...)
	}
}

func (c *Collector) collectThresholds(ch chan<- prometheus.Metric) {
	d := prometheus.NewDesc("k6_threshold_ok", "1 when the threshold passed at its last evaluation, 0 when it failed.", []string{"metric", "threshold"}, nil)
	for _, t := range c.src.ThresholdResults() {
		v := 0.0
		if t.OK {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, t.Metric, t.Expr)
	}
}
