package dashboards

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Query is one PromQL expression of a dashboard, located by panel and refId.
type Query struct {
	Dashboard string // dashboard uid
	PanelID   int
	Panel     string // panel title
	RefID     string
	Expr      string // as written, with template variables
	Instant   bool
	Exemplar  bool
}

// String names the query for error messages: "glasshouse-red/3 p99 latency/A".
func (q Query) String() string {
	return fmt.Sprintf("%s/%d %q/%s", q.Dashboard, q.PanelID, q.Panel, q.RefID)
}

// Queries returns every panel query of d, rows' nested panels included, in
// panel order.
func Queries(d *Dashboard) []Query {
	var out []Query
	for _, p := range flatPanels(d.Panels) {
		for _, t := range p.Targets {
			out = append(out, Query{Dashboard: d.UID, PanelID: p.ID, Panel: p.Title, RefID: t.RefID, Expr: t.Expr, Instant: t.Instant, Exemplar: t.Exemplar})
		}
	}
	return out
}

func flatPanels(ps []Panel) []Panel {
	var out []Panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatPanels(p.Panels)...)
	}
	return out
}

// varRE matches Grafana variable references: $name, ${name}, ${name:fmt}, [[name]].
var varRE = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// Expand substitutes Grafana template variables in expr from vars (names
// without the $). A reference to a variable missing from vars is an error, so
// a typo in a query cannot pass unnoticed.
func Expand(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := varRE.ReplaceAllStringFunc(expr, func(m string) string {
		sm := varRE.FindStringSubmatch(m)
		name := sm[1] + sm[2] + sm[3]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, "$"+name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown template variable(s) %s in %q", strings.Join(missing, ", "), expr)
	}
	return out, nil
}

// Lint sentinels: durations no human would type, so a range selector that
// does not use $__rate_interval (or $__range) is caught after expansion.
const (
	lintRateInterval = 3*time.Hour + 33*time.Minute + 33*time.Second
	lintRange        = 2*time.Hour + 22*time.Minute + 22*time.Second
)

// LintVars returns the values Lint substitutes for template variables.
func LintVars() map[string]string {
	return map[string]string{
		"__rate_interval": "3h33m33s", "__range": "2h22m22s", "__interval": "1m",
		"job": "glasshouse-api", "instance": ".+", "loadjob": "glasshouse-load", "scenario": ".*", "slo": "availability", "service": "glasshouse-api", "route": ".+",
	}
}

var uidRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// Lint applies the dashboard-linter rules glasshouse relies on and returns
// every violation: a fixed, well-formed uid; read-only; datasource, job and
// instance variables; explicit, unique, non-zero panel ids; panels that fit
// the grid without overlapping; on every non-row panel a description, a
// unit, the datasource variable and at least one query; unique non-empty
// refIds; queries that parse after variable expansion, use $__rate_interval
// for every range, and filter service metrics by job.
func Lint(d *Dashboard) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(d.UID+": "+format, a...)) }

	if !uidRE.MatchString(d.UID) {
		add("uid %q must be set and match %s", d.UID, uidRE)
	}
	if d.Title == "" || d.Description == "" {
		add("title and description are required")
	}
	if d.Editable {
		add("editable must be false (provisioned dashboards are read-only; fork to edit)")
	}
	if len(d.Tags) == 0 {
		add("no tag (the links between a service's dashboards use it)")
	}
	for _, l := range d.Links {
		for _, tag := range l.Tags {
			if !slices.Contains(d.Tags, tag) {
				add("link %q lists dashboards tagged %q, which this dashboard is not", l.Title, tag)
			}
		}
	}
	vars := map[string]Variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars[DatasourceVar]; !ok || v.Type != "datasource" || v.Query != "prometheus" {
		add("needs a datasource variable %q of type datasource for prometheus", DatasourceVar)
	}
	for _, name := range []string{"job", "instance"} {
		if _, ok := vars[name]; !ok {
			add("needs a %q template variable", name)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && (v.Datasource == nil || *v.Datasource != *ds) {
			add("variable %q must query the datasource variable", v.Name)
		}
		if v.Description == "" {
			add("variable %q needs a description", v.Name)
		}
	}

	ids := map[int]string{}
	var boxes []Panel
	for _, p := range flatPanels(d.Panels) {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 {
			add("%s: explicit positive id required", where)
		} else if other, dup := ids[p.ID]; dup {
			add("%s: id %d already used by %q", where, p.ID, other)
		}
		ids[p.ID] = p.Title
		if p.Title == "" {
			add("%s: title required", where)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > gridWidth {
			add("%s: gridPos %+v outside the 24-column grid", where, g)
		}
		for _, b := range boxes {
			if overlap(b.GridPos, g) {
				add("%s: overlaps panel %d %q", where, b.ID, b.Title)
			}
		}
		boxes = append(boxes, p)
		if p.Type == "row" {
			continue
		}
		if p.Description == "" {
			add("%s: description required", where)
		}
		if p.FieldConfig == nil || p.FieldConfig.Defaults.Unit == "" {
			add("%s: unit required", where)
		}
		if p.Datasource == nil || *p.Datasource != *ds {
			add("%s: datasource must be the ${%s} variable", where, DatasourceVar)
		}
		if len(p.Targets) == 0 {
			add("%s: at least one query required", where)
		}
		refs := map[string]bool{}
		for _, t := range p.Targets {
			if t.RefID == "" || refs[t.RefID] {
				add("%s: refId %q empty or duplicated", where, t.RefID)
			}
			refs[t.RefID] = true
			if t.Datasource == nil || *t.Datasource != *ds {
				add("%s/%s: query datasource must be the ${%s} variable", where, t.RefID, DatasourceVar)
			}
			for _, err := range lintExpr(t.Expr) {
				add("%s/%s: %v", where, t.RefID, err)
			}
		}
	}
	return errs
}

func overlap(a, b GridPos) bool {
	return a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
}

// ParseExpr expands expr with vars and parses it as PromQL.
func ParseExpr(expr string, vars map[string]string) (parser.Expr, error) {
	e, err := Expand(expr, vars)
	if err != nil {
		return nil, err
	}
	node, err := parser.NewParser(parser.Options{}).ParseExpr(e)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", e, err)
	}
	return node, nil
}

// lintExpr checks one query: it parses, every range is a variable, and
// every service series is filtered by job.
func lintExpr(expr string) []error {
	if strings.TrimSpace(expr) == "" {
		return []error{errors.New("empty expression")}
	}
	node, err := ParseExpr(expr, LintVars())
	if err != nil {
		return []error{err}
	}
	var errs []error
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.MatrixSelector:
			if n.Range != lintRateInterval && n.Range != lintRange {
				errs = append(errs, fmt.Errorf("range [%s] must be [$__rate_interval] (or [$__range]); hard-coded windows break at other scrape intervals", n.Range))
			}
		case *parser.SubqueryExpr:
			errs = append(errs, errors.New("subqueries are not used in glasshouse dashboards"))
		case *parser.VectorSelector:
			if isRecorded(n.Name) {
				return nil
			}
			if !hasMatcher(n.LabelMatchers, "job") {
				errs = append(errs, fmt.Errorf("selector %s must filter by job=\"$job\" (or $loadjob)", n))
			}
		}
		return nil
	})
	return errs
}

// isRecorded reports whether name is a recording-rule or alert series,
// which carry the SLO's labels instead of job and instance.
func isRecorded(name string) bool {
	return strings.Contains(name, ":") || name == "ALERTS" || name == "ALERTS_FOR_STATE"
}

func hasMatcher(ms []*labels.Matcher, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}

// MetricNames returns the metric names selected by expr (expanded with vars),
// sorted and without duplicates.
func MetricNames(expr string, vars map[string]string) ([]string, error) {
	node, err := ParseExpr(expr, vars)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			if name == "" {
				for _, m := range vs.LabelMatchers {
					if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
						name = m.Value
					}
				}
			}
			if name != "" && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		return nil
	})
	slices.Sort(names)
	return names, nil
}
