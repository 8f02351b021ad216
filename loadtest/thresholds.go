package loadtest

import (
	"fmt"
	"slices"
	"time"

	"github.com/glasshouse-dev/glasshouse/loadtest/threshold"
)

// compiledThreshold is one metric selector's thresholds.
type compiledThreshold struct {
	key    string
	sel    threshold.Selector
	metric *metricState
	exprs  []*thresholdState
}

type thresholdState struct {
	expr           threshold.Expr
	abortOnFail    bool
	delayAbortEval time.Duration
	ok, evaluated  bool
	value          float64
}

// ThresholdResult is the latest evaluation of one threshold.
type ThresholdResult struct {
	Metric   string // selector as written, e.g. "http_req_duration{scenario:a}"
	Expr     string // as written
	Agg      string // e.g. "p(95)"
	Value    float64
	OK       bool
	Type     MetricType
	Contains ValueType
}

func validAgg(t MetricType, agg string) bool {
	switch t {
	case Counter:
		return agg == threshold.Count || agg == threshold.Rate
	case Gauge:
		return agg == threshold.Value
	case Rate:
		return agg == threshold.Rate
	case Trend:
		return slices.Contains([]string{threshold.Avg, threshold.Min, threshold.Max, threshold.Med, threshold.P}, agg)
	}
	return false
}

func aggNames(t MetricType) string {
	switch t {
	case Counter:
		return "count, rate"
	case Gauge:
		return "value"
	case Rate:
		return "rate"
	}
	return "avg, min, max, med, p(N)"
}

func (r *runner) compileThresholds(ths map[string][]Threshold, errs []error) ([]*compiledThreshold, []error) {
	keys := make([]string, 0, len(ths))
	for k := range ths {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []*compiledThreshold
	for _, k := range keys {
		sel, err := threshold.ParseSelector(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("thresholds: %w", err))
			continue
		}
		st := r.reg.metric(sel.Metric)
		if st == nil {
			errs = append(errs, fmt.Errorf("thresholds: metric %q is not defined (declare custom metrics in Test.Metrics)", sel.Metric))
			continue
		}
		ct := &compiledThreshold{key: k, sel: sel, metric: st}
		for _, th := range ths[k] {
			e, err := threshold.Parse(th.Expr)
			if err != nil {
				errs = append(errs, fmt.Errorf("thresholds on %s: %w", k, err))
				continue
			}
			if !validAgg(st.Type, e.Agg.Name) {
				errs = append(errs, fmt.Errorf("thresholds on %s: %q: aggregation %s does not apply to %s metrics (use %s)", k, th.Expr, e.Agg, st.Type, aggNames(st.Type)))
				continue
			}
			if th.DelayAbortEval < 0 {
				errs = append(errs, fmt.Errorf("thresholds on %s: %q: delayAbortEval must not be negative", k, th.Expr))
			}
			ct.exprs = append(ct.exprs, &thresholdState{expr: e, abortOnFail: th.AbortOnFail, delayAbortEval: th.DelayAbortEval})
		}
		out = append(out, ct)
	}
	return out, errs
}

// aggValue computes aggregation agg of a.
func aggValue(a Agg, agg threshold.Agg, elapsed time.Duration) float64 {
	switch agg.Name {
	case threshold.Count:
		return a.Sum
	case threshold.Rate:
		if a.Metric.Type == Counter {
			if elapsed <= 0 {
				return 0
			}
			return a.Sum / elapsed.Seconds()
		}
		return a.RateValue()
	case threshold.Value:
		return a.Value
	case threshold.Avg:
		return a.Hist.Mean()
	case threshold.Min:
		return a.Hist.Min()
	case threshold.Max:
		return a.Hist.Max()
	case threshold.Med:
		return a.Hist.Quantile(0.5)
	case threshold.P:
		return a.Hist.Quantile(agg.P / 100)
	}
	return 0
}

// evaluateThresholds evaluates every threshold over the run so far and,
// during the run, aborts on a failed abortOnFail threshold.
func (r *runner) evaluateThresholds(final bool) {
	elapsed := r.elapsed()
	r.tmu.Lock()
	defer r.tmu.Unlock()
	for _, ct := range r.thresholds {
		a := ct.metric.aggregate(ct.sel.Tags)
		for _, ts := range ct.exprs {
			ts.value = aggValue(a, ts.expr.Agg, elapsed)
			ts.ok = ts.expr.Holds(ts.value)
			ts.evaluated = true
			if !final && !ts.ok && ts.abortOnFail && elapsed >= ts.delayAbortEval {
				r.logf("ERRO thresholds on metrics '%s' were crossed; at least one has abortOnFail enabled, stopping test prematurely", ct.key)
				r.abort(fmt.Errorf("%w: %s %s (abortOnFail)", ErrThresholdsFailed, ct.key, ts.expr.Source))
			}
		}
	}
}

func (r *runner) thresholdResults() []ThresholdResult {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	var out []ThresholdResult
	for _, ct := range r.thresholds {
		for _, ts := range ct.exprs {
			out = append(out, ThresholdResult{Metric: ct.key, Expr: ts.expr.Source, Agg: ts.expr.Agg.String(),
				Value: ts.value, OK: ts.ok || !ts.evaluated, Type: ct.metric.Type, Contains: ct.metric.Contains})
		}
	}
	return out
}
