package loadtest

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glasshouse-dev/glasshouse/loadtest/histogram"
	"github.com/glasshouse-dev/glasshouse/loadtest/threshold"
)

// MetricType is one of k6's four metric types.
type MetricType uint8

// The metric types.
const (
	Counter MetricType = iota // a sum; aggregations count and rate (per second)
	Gauge                     // the last value; aggregation value (min and max are kept)
	Rate                      // the share of non-zero samples; aggregation rate
	Trend                     // a distribution; aggregations avg min max med p(N)
)

// String is k6's name of the type ("counter", "gauge", "rate", "trend").
func (t MetricType) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Rate:
		return "rate"
	case Trend:
		return "trend"
	}
	return "MetricType(" + strconv.Itoa(int(t)) + ")"
}

// ValueType says what a metric's values measure, for formatting.
type ValueType uint8

// The value types. Time values are milliseconds, data values bytes.
const (
	Default ValueType = iota
	Time
	Data
)

// String is k6's "contains" value ("default", "time", "data").
func (v ValueType) String() string {
	switch v {
	case Time:
		return "time"
	case Data:
		return "data"
	}
	return "default"
}

// Metric describes a metric: its name, type and value type. Metrics are
// plain values; the samples live in the run. Declare custom metrics in
// Test.Metrics so thresholds can name them; a metric first used without
// being declared is registered on first use.
type Metric struct {
	Name     string
	Type     MetricType
	Contains ValueType
}

// NewCounter describes a custom Counter metric.
func NewCounter(name string) Metric { return Metric{Name: name, Type: Counter} }

// NewGauge describes a custom Gauge metric.
func NewGauge(name string) Metric { return Metric{Name: name, Type: Gauge} }

// NewRate describes a custom Rate metric (the share of non-zero samples).
func NewRate(name string) Metric { return Metric{Name: name, Type: Rate} }

// NewTrend describes a custom Trend metric. Pass Time when its values are
// durations in milliseconds (as k6's `new Trend(name, true)`).
func NewTrend(name string, contains ...ValueType) Metric {
	m := Metric{Name: name, Type: Trend}
	if len(contains) > 0 {
		m.Contains = contains[0]
	}
	return m
}

// Built-in metrics, with k6's names, plus two glasshouse extensions
// (HTTPReqLatency and ScheduleLag) that make the open model's
// coordinated-omission-free latency explicit.
var (
	Checks                = Metric{"checks", Rate, Default}
	DataReceived          = Metric{"data_received", Counter, Data}
	DataSent              = Metric{"data_sent", Counter, Data}
	DroppedIterations     = Metric{"dropped_iterations", Counter, Default}
	GroupDuration         = Metric{"group_duration", Trend, Time}
	HTTPReqBlocked        = Metric{"http_req_blocked", Trend, Time}
	HTTPReqConnecting     = Metric{"http_req_connecting", Trend, Time}
	HTTPReqDuration       = Metric{"http_req_duration", Trend, Time}
	HTTPReqFailed         = Metric{"http_req_failed", Rate, Default}
	HTTPReqLatency        = Metric{"http_req_latency", Trend, Time}
	HTTPReqReceiving      = Metric{"http_req_receiving", Trend, Time}
	HTTPReqSending        = Metric{"http_req_sending", Trend, Time}
	HTTPReqTLSHandshaking = Metric{"http_req_tls_handshaking", Trend, Time}
	HTTPReqWaiting        = Metric{"http_req_waiting", Trend, Time}
	HTTPReqs              = Metric{"http_reqs", Counter, Default}
	IterationDuration     = Metric{"iteration_duration", Trend, Time}
	Iterations            = Metric{"iterations", Counter, Default}
	ScheduleLag           = Metric{"schedule_lag", Trend, Time}
	VUs                   = Metric{"vus", Gauge, Default}
	VUsMax                = Metric{"vus_max", Gauge, Default}
)

func builtinMetrics() []Metric {
	return []Metric{Checks, DataReceived, DataSent, DroppedIterations, GroupDuration,
		HTTPReqBlocked, HTTPReqConnecting, HTTPReqDuration, HTTPReqFailed, HTTPReqLatency,
		HTTPReqReceiving, HTTPReqSending, HTTPReqTLSHandshaking, HTTPReqWaiting, HTTPReqs,
		IterationDuration, Iterations, ScheduleLag, VUs, VUsMax}
}

// Tag is one key=value pair of a sample's tags.
type Tag = threshold.Tag

// TagSet is an interned, sorted set of tags. Two samples with equal tags
// share one *TagSet, so it can be compared by pointer.
type TagSet struct {
	key  string // canonical: k\x00v\x00k\x00v...
	tags []Tag
	json string // {"k":"v",...}, built lazily for the JSON output
}

// Tags returns the sorted tags. The slice must not be modified.
func (t *TagSet) Tags() []Tag { return t.tags }

// Get returns the value of tag k.
func (t *TagSet) Get(k string) (string, bool) {
	for _, tg := range t.tags {
		if tg.Key == k {
			return tg.Value, true
		}
	}
	return "", false
}

// Matches reports whether t holds every tag of sel with the same value.
func (t *TagSet) Matches(sel []Tag) bool {
	for _, s := range sel {
		if v, ok := t.Get(s.Key); !ok || v != s.Value {
			return false
		}
	}
	return true
}

// sink aggregates the samples of one metric with one tag set. The sinks of
// one request tag set share a mutex so a request's dozen samples take one
// lock.
type sink struct {
	mu      *sync.Mutex
	tags    *TagSet
	sum     float64 // Counter: sum
	last    float64 // Gauge
	min     float64 // Gauge
	max     float64 // Gauge
	lastAt  int64   // Gauge: unix nanos of last sample
	n, nz   uint64  // Rate: samples, non-zero samples; Gauge/Counter: samples
	hist    *histogram.Histogram
	mtype   MetricType
	metric  *metricState
	hasData bool
}

func (s *sink) add(v float64, now int64) {
	s.mu.Lock()
	s.addLocked(v, now)
	s.mu.Unlock()
}

func (s *sink) addLocked(v float64, now int64) {
	switch s.mtype {
	case Counter:
		s.sum += v
		s.n++
	case Gauge:
		if !s.hasData || v < s.min {
			s.min = v
		}
		if !s.hasData || v > s.max {
			s.max = v
		}
		if now >= s.lastAt {
			s.last, s.lastAt = v, now
		}
		s.n++
	case Rate:
		s.n++
		if v != 0 {
			s.nz++
		}
	case Trend:
		s.hist.Add(v)
	}
	s.hasData = true
}

// metricState holds every sink of one metric.
type metricState struct {
	Metric
	mu     sync.RWMutex
	series map[*TagSet]*sink
	order  []*sink // creation order
}

// registry holds the run's metrics and interned tag sets. It is safe for
// concurrent use.
type registry struct {
	mu      sync.RWMutex
	metrics map[string]*metricState
	order   []*metricState // registration order

	tmu     sync.RWMutex
	tagsets map[string]*TagSet

	out *jsonOutput // optional per-sample output
}

func newRegistry() *registry {
	r := &registry{metrics: map[string]*metricState{}, tagsets: map[string]*TagSet{}}
	for _, m := range builtinMetrics() {
		if _, err := r.register(m); err != nil {
			panic(err) // built-ins are valid by construction
		}
	}
	return r
}

func (r *registry) register(m Metric) (*metricState, error) {
	r.mu.RLock()
	st, ok := r.metrics[m.Name]
	r.mu.RUnlock()
	if ok {
		if st.Type != m.Type || st.Contains != m.Contains {
			return nil, fmt.Errorf("metric %q already registered as a %s (%s), not a %s (%s)", m.Name, st.Type, st.Contains, m.Type, m.Contains)
		}
		return st, nil
	}
	if !threshold.ValidMetricName(m.Name) {
		return nil, fmt.Errorf("metric %q: invalid name (want letters, digits and _, at most 128, not starting with a digit)", m.Name)
	}
	if m.Type > Trend {
		return nil, fmt.Errorf("metric %q: invalid type %d", m.Name, m.Type)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.metrics[m.Name]; ok {
		return st, nil
	}
	st = &metricState{Metric: m, series: map[*TagSet]*sink{}}
	r.metrics[m.Name] = st
	r.order = append(r.order, st)
	if r.out != nil {
		r.out.metric(m, nil)
	}
	return st, nil
}

func (r *registry) metric(name string) *metricState {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.metrics[name]
}

// intern returns the canonical *TagSet for key, a canonical key built by
// appendTag; tags is called only when the set is new.
func (r *registry) intern(key []byte, tags func() []Tag) *TagSet {
	r.tmu.RLock()
	ts, ok := r.tagsets[string(key)]
	r.tmu.RUnlock()
	if ok {
		return ts
	}
	r.tmu.Lock()
	defer r.tmu.Unlock()
	if ts, ok := r.tagsets[string(key)]; ok {
		return ts
	}
	ts = &TagSet{key: string(key), tags: tags()}
	r.tagsets[ts.key] = ts
	return ts
}

// tagSet interns a tag map.
func (r *registry) tagSet(m map[string]string) *TagSet {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var buf []byte
	for _, k := range keys {
		buf = appendTag(buf, k, m[k])
	}
	return r.intern(buf, func() []Tag {
		tags := make([]Tag, len(keys))
		for i, k := range keys {
			tags[i] = Tag{Key: k, Value: m[k]}
		}
		return tags
	})
}

func appendTag(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, 0)
	b = append(b, v...)
	return append(b, 0)
}

// sink returns the sink of metric st for tags, creating it on first use.
func (st *metricState) sink(tags *TagSet) *sink { return st.sinkWith(tags, nil) }

// sinkWith is sink with the mutex a new sink uses (nil: its own).
func (st *metricState) sinkWith(tags *TagSet, mu *sync.Mutex) *sink {
	st.mu.RLock()
	s, ok := st.series[tags]
	st.mu.RUnlock()
	if ok {
		return s
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if s, ok := st.series[tags]; ok {
		return s
	}
	if mu == nil {
		mu = new(sync.Mutex)
	}
	s = &sink{tags: tags, mtype: st.Type, metric: st, mu: mu}
	if st.Type == Trend {
		s.hist = new(histogram.Histogram)
	}
	st.series[tags] = s
	st.order = append(st.order, s)
	return s
}

// record adds one sample.
func (r *registry) record(st *metricState, tags *TagSet, v float64, now time.Time) {
	r.recordSink(st.sink(tags), v, now)
}

func (r *registry) recordSink(s *sink, v float64, now time.Time) {
	s.add(v, now.UnixNano())
	if r.out != nil {
		r.out.point(s.metric.Name, s.tags, v, now)
	}
}

// Agg is the aggregate of a metric or sub-metric over the run so far.
type Agg struct {
	Metric Metric
	// Counter: Sum (and Count samples); Gauge: Value, Min, Max; Rate:
	// Passes (non-zero) and Count; Trend: Hist.
	Sum, Value, Min, Max float64
	Count, Passes        uint64
	Hist                 *histogram.Histogram
	HasData              bool
}

// RateValue is the share of non-zero samples (Rate), 0 when there are none.
func (a Agg) RateValue() float64 {
	if a.Count == 0 {
		return 0
	}
	return float64(a.Passes) / float64(a.Count)
}

// aggregate merges every sink of st whose tags match sel.
func (st *metricState) aggregate(sel []Tag) Agg {
	a := Agg{Metric: st.Metric}
	if st.Type == Trend {
		a.Hist = new(histogram.Histogram)
	}
	var lastAt int64 = math.MinInt64
	st.mu.RLock()
	sinks := make([]*sink, 0, len(st.series))
	for ts, s := range st.series {
		if ts.Matches(sel) {
			sinks = append(sinks, s)
		}
	}
	st.mu.RUnlock()
	for _, s := range sinks {
		s.mu.Lock()
		if !s.hasData {
			s.mu.Unlock()
			continue
		}
		switch st.Type {
		case Counter:
			a.Sum += s.sum
			a.Count += s.n
		case Gauge:
			if !a.HasData || s.min < a.Min {
				a.Min = s.min
			}
			if !a.HasData || s.max > a.Max {
				a.Max = s.max
			}
			if s.lastAt > lastAt {
				a.Value, lastAt = s.last, s.lastAt
			}
			a.Count += s.n
		case Rate:
			a.Count += s.n
			a.Passes += s.nz
		case Trend:
			a.Hist.Merge(s.hist)
			a.Count += s.hist.Count()
		}
		a.HasData = true
		s.mu.Unlock()
	}
	return a
}

// SeriesSnapshot is a copy of one metric's aggregate for one tag set.
type SeriesSnapshot struct {
	Metric Metric
	Tags   []Tag
	Agg    Agg
}

// snapshot copies every series, sorted by metric name then tags.
func (r *registry) snapshot() []SeriesSnapshot {
	r.mu.RLock()
	metrics := slices.Clone(r.order)
	r.mu.RUnlock()
	var out []SeriesSnapshot
	for _, st := range metrics {
		st.mu.RLock()
		tss := make([]*TagSet, 0, len(st.order))
		for _, s := range st.order {
			tss = append(tss, s.tags)
		}
		st.mu.RUnlock()
		for _, ts := range tss {
			a := st.aggregateOne(ts)
			if a.HasData {
				out = append(out, SeriesSnapshot{Metric: st.Metric, Tags: ts.tags, Agg: a})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b SeriesSnapshot) int { return strings.Compare(a.Metric.Name, b.Metric.Name) })
	return out
}

func (st *metricState) aggregateOne(ts *TagSet) Agg {
	st.mu.RLock()
	s := st.series[ts]
	st.mu.RUnlock()
	a := Agg{Metric: st.Metric}
	if s == nil {
		return a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a.HasData = s.hasData
	switch st.Type {
	case Counter:
		a.Sum, a.Count = s.sum, s.n
	case Gauge:
		a.Value, a.Min, a.Max, a.Count = s.last, s.min, s.max, s.n
	case Rate:
		a.Count, a.Passes = s.n, s.nz
	case Trend:
		a.Hist = s.hist.Clone()
		a.Count = a.Hist.Count()
	}
	return a
}
