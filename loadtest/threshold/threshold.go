// Package threshold parses k6 threshold expressions ("p(95)<300",
// "rate<0.01") and metric selectors ("http_req_duration{scenario:browse}")
// and evaluates an expression against an aggregated value.
//
// The grammar is k6's: an expression is `<aggregation> <operator> <number>`
// with optional spaces, the aggregations are count, rate, value, avg, min,
// max, med and p(N) (0 <= N <= 100), and the operators are < <= > >= == !=.
// A selector is a metric name optionally followed by a brace list of
// tag:value pairs. Which aggregations apply to which metric type is checked
// by the engine, which knows the metric types.
//
// It imports only the standard library.
package threshold

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Op is a comparison operator.
type Op string

// The operators of k6's threshold grammar.
const (
	Less         Op = "<"
	LessEqual    Op = "<="
	Greater      Op = ">"
	GreaterEqual Op = ">="
	Equal        Op = "=="
	NotEqual     Op = "!="
)

// Aggregation names.
const (
	Count = "count" // Counter: total
	Rate  = "rate"  // Counter: total per second; Rate: share of non-zero samples
	Value = "value" // Gauge: last value
	Avg   = "avg"   // Trend
	Min   = "min"   // Trend
	Max   = "max"   // Trend
	Med   = "med"   // Trend: p(50)
	P     = "p"     // Trend: p(N), N in Agg.P
)

// Agg is an aggregation method: Name is one of the constants above; P is
// the percentile (0..100) when Name is "p".
type Agg struct {
	Name string
	P    float64
}

// String formats a as in k6's summary ("p(95)", "rate").
func (a Agg) String() string {
	if a.Name == P {
		return "p(" + strconv.FormatFloat(a.P, 'f', -1, 64) + ")"
	}
	return a.Name
}

// Expr is one parsed threshold expression.
type Expr struct {
	Source string // as written, trimmed
	Agg    Agg
	Op     Op
	Value  float64
}

// Holds reports whether v satisfies the expression (the threshold passes).
func (e Expr) Holds(v float64) bool {
	switch e.Op {
	case Less:
		return v < e.Value
	case LessEqual:
		return v <= e.Value
	case Greater:
		return v > e.Value
	case GreaterEqual:
		return v >= e.Value
	case Equal:
		return v == e.Value
	case NotEqual:
		return v != e.Value
	}
	return false
}

// String formats e canonically (no spaces), e.g. "p(95)<300".
func (e Expr) String() string {
	return e.Agg.String() + string(e.Op) + strconv.FormatFloat(e.Value, 'g', -1, 64)
}

var exprRE = regexp.MustCompile(`^\s*([a-z]+)\s*(?:\(\s*([^()]*?)\s*\))?\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$`)

// Parse parses one threshold expression. The error says what is wrong and
// what is expected.
func Parse(s string) (Expr, error) {
	m := exprRE.FindStringSubmatch(s)
	if m == nil {
		return Expr{}, fmt.Errorf("threshold %q: want <aggregation> <operator> <number>, e.g. 'p(95)<300' or 'rate<0.01'", s)
	}
	e := Expr{Source: strings.TrimSpace(s), Op: Op(m[3])}
	name, arg, hasArg := m[1], m[2], strings.Contains(s, "(")
	switch name {
	case Count, Rate, Value, Avg, Min, Max, Med:
		if hasArg {
			return Expr{}, fmt.Errorf("threshold %q: aggregation %q takes no argument", s, name)
		}
		e.Agg = Agg{Name: name}
	case P:
		if !hasArg {
			return Expr{}, fmt.Errorf("threshold %q: percentile needs an argument, e.g. p(95)", s)
		}
		p, err := strconv.ParseFloat(arg, 64)
		if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
			return Expr{}, fmt.Errorf("threshold %q: percentile %q must be a number from 0 to 100", s, arg)
		}
		e.Agg = Agg{Name: P, P: p}
	default:
		return Expr{}, fmt.Errorf("threshold %q: unknown aggregation %q (want count, rate, value, avg, min, max, med or p(N))", s, name)
	}
	v, err := strconv.ParseFloat(m[4], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return Expr{}, fmt.Errorf("threshold %q: %q is not a finite number", s, m[4])
	}
	e.Value = v
	return e, nil
}

// Selector names a metric and optionally a tag filter: the sub-metric of
// samples carrying every listed tag with exactly that value.
type Selector struct {
	Metric string
	Tags   []Tag // sorted by key, unique keys
}

// Tag is one key:value pair of a selector.
type Tag struct{ Key, Value string }

// String formats s as k6 does ("http_req_duration{scenario:browse}").
func (s Selector) String() string {
	if len(s.Tags) == 0 {
		return s.Metric
	}
	var b strings.Builder
	b.WriteString(s.Metric)
	b.WriteByte('{')
	for i, t := range s.Tags {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.Key)
		b.WriteByte(':')
		v := t.Value
		if v == "" || v != strings.TrimSpace(v) || v[0] == '"' || v[0] == '\'' {
			v = `"` + v + `"` // quotes keep spaces and quote characters
		}
		b.WriteString(v)
	}
	b.WriteByte('}')
	return b.String()
}

var metricNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`)

// ValidMetricName reports whether name is a valid k6 metric name.
func ValidMetricName(name string) bool { return metricNameRE.MatchString(name) }

// ParseSelector parses "name" or "name{key:value,key2:value2}". Values may be
// quoted with " or ' and may contain spaces, colons (only the first colon
// separates key from value) and braces ("name:/items/{id}"), not commas.
func ParseSelector(s string) (Selector, error) {
	s = strings.TrimSpace(s)
	name, rest, hasTags := strings.Cut(s, "{")
	name = strings.TrimSpace(name)
	if !ValidMetricName(name) {
		return Selector{}, fmt.Errorf("metric %q: invalid name (want letters, digits and _, not starting with a digit)", name)
	}
	sel := Selector{Metric: name}
	if !hasTags {
		return sel, nil
	}
	if !strings.HasSuffix(rest, "}") {
		return Selector{}, fmt.Errorf("metric %q: tag selector must end with }", s)
	}
	body := strings.TrimSpace(strings.TrimSuffix(rest, "}"))
	if body == "" {
		return Selector{}, fmt.Errorf("metric %q: empty tag selector", s)
	}
	var errs []error
	for part := range strings.SplitSeq(body, ",") {
		k, v, ok := strings.Cut(part, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		if !ok || k == "" || strings.ContainsAny(k, "{}") {
			errs = append(errs, fmt.Errorf("metric %q: tag %q must be key:value", s, strings.TrimSpace(part)))
			continue
		}
		if slices.ContainsFunc(sel.Tags, func(t Tag) bool { return t.Key == k }) {
			errs = append(errs, fmt.Errorf("metric %q: tag %q listed twice", s, k))
			continue
		}
		sel.Tags = append(sel.Tags, Tag{k, v})
	}
	if err := errors.Join(errs...); err != nil {
		return Selector{}, err
	}
	slices.SortFunc(sel.Tags, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	return sel, nil
}
