package dashboards

import (
	"strconv"

	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

// Names shared by every dashboard.
const (
	// DatasourceVar is the name of the Prometheus datasource variable.
	DatasourceVar = "datasource"
	// PrometheusUID, TempoUID and LokiUID are the provisioned datasource UIDs.
	PrometheusUID = "prometheus"
	TempoUID      = "tempo"
	LokiUID       = "loki"
	// DefaultJob is the Prometheus job that scrapes the API.
	DefaultJob = "glasshouse-api"
	// Tag is on every glasshouse dashboard; the top-bar links use it. A
	// service's own set is tagged with its spec's Prefix instead.
	Tag = "glasshouse"

	schemaVersion = 39
	gridWidth     = 24
)

// ds is the datasource reference every panel and query uses: the variable,
// never a fixed uid, so a fork can point the dashboard at another Prometheus.
var ds = &DatasourceRef{Type: "prometheus", UID: "${" + DatasourceVar + "}"}

// sel is the label matcher set for the service's own series.
const sel = `job="$job",instance=~"$instance"`

// set names one service's dashboards: uids, titles and the tag start with
// prefix, the job variable defaults to job, and descriptions name service.
type set struct{ prefix, job, service string }

// setOf is the dashboard set of spec's service.
func setOf(spec slo.Spec) set { return set{spec.Prefix(), spec.Job(), spec.Service} }

// newDashboard returns a dashboard with the settings every dashboard of s
// shares: uid s.prefix-kind, read-only, tagged, linked to its siblings, and
// with the datasource, job and instance variables.
func newDashboard(s set, kind, title, desc string, jobMetric string) *Dashboard {
	return &Dashboard{
		UID:           s.prefix + "-" + kind,
		Title:         s.prefix + " / " + title,
		Description:   desc,
		Tags:          []string{s.prefix},
		Editable:      false,
		GraphTooltip:  1,
		Refresh:       "30s",
		SchemaVersion: schemaVersion,
		Time:          TimeRange{From: "now-1h", To: "now"},
		Timezone:      "browser",
		Links: []Link{{
			Title: s.prefix, Type: "dashboards", Tags: []string{s.prefix},
			AsDropdown: true, IncludeVars: true, KeepTime: true,
		}},
		Annotations: Annotations{List: []Annotation{{
			Name:       "Annotations & Alerts",
			Datasource: &DatasourceRef{Type: "grafana", UID: "-- Grafana --"},
			Enable:     true, Hide: true, IconColor: "rgba(0, 211, 255, 1)",
			Type: "dashboard", BuiltIn: 1,
			Target: &AnnotationTgt{Limit: 100, Tags: []string{}, Type: "dashboard"},
		}}},
		Templating: Templating{List: []Variable{
			datasourceVar(),
			jobVar(jobMetric, s.job),
			instanceVar(jobMetric),
		}},
	}
}

func datasourceVar() Variable {
	return Variable{
		Name: DatasourceVar, Label: "Data source", Type: "datasource",
		Description: "Prometheus datasource that scrapes the service.",
		Query:       "prometheus",
		Current:     Current{Selected: true, Text: "Prometheus", Value: PrometheusUID},
		Options:     []any{}, Refresh: 1,
	}
}

func queryVar(name, label, desc, query string) Variable {
	return Variable{
		Name: name, Label: label, Description: desc, Type: "query",
		Datasource: ds,
		Query:      query, // the classic string form; every Grafana version reads it
		Definition: query,
		Options:    []any{},
		Refresh:    2, Sort: 1,
	}
}

// jobVar selects the service's job among those exporting metric, job by
// default: one imported dashboard serves every service on the stack.
func jobVar(metric, job string) Variable {
	v := queryVar("job", "Job", "Prometheus job of the service.", "label_values("+metric+", job)")
	v.Current = Current{Selected: true, Text: job, Value: job}
	return v
}

func instanceVar(metric string) Variable {
	v := queryVar("instance", "Instance", "Instances of the job (All aggregates them).",
		"label_values("+metric+`{job="$job"}, instance)`)
	v.IncludeAll, v.Multi, v.AllValue = true, true, ".+"
	v.Current = Current{Selected: true, Text: []string{"All"}, Value: []string{"$__all"}}
	return v
}

// layout places panels on the grid left to right, wrapping at 24 columns,
// and gives every panel and query a unique id and refId.
type layout struct {
	d      *Dashboard
	nextID int
	x, y   int
	rowH   int // height of the tallest panel on the current line
}

func newLayout(d *Dashboard) *layout { return &layout{d: d, nextID: 1} }

// row starts a new row titled title.
func (l *layout) row(title string) {
	l.newline()
	collapsed := false
	l.d.Panels = append(l.d.Panels, Panel{
		ID: l.id(), Type: "row", Title: title, Collapsed: &collapsed,
		GridPos: GridPos{H: 1, W: gridWidth, X: 0, Y: l.y},
	})
	l.y++
}

func (l *layout) newline() {
	if l.x > 0 {
		l.y += l.rowH
		l.x, l.rowH = 0, 0
	}
}

func (l *layout) id() int {
	id := l.nextID
	l.nextID++
	return id
}

// add places p (w columns by h units) and numbers its targets A, B, C...
func (l *layout) add(w, h int, p Panel) {
	if l.x+w > gridWidth {
		l.newline()
	}
	p.ID = l.id()
	p.GridPos = GridPos{H: h, W: w, X: l.x, Y: l.y}
	for i := range p.Targets {
		p.Targets[i].RefID = refID(i)
	}
	l.d.Panels = append(l.d.Panels, p)
	l.x += w
	l.rowH = max(l.rowH, h)
}

func refID(i int) string {
	if i < 26 {
		return string(rune('A' + i))
	}
	return "Q" + strconv.Itoa(i)
}

// q is a range query drawn as a time series.
func q(expr, legend string) Target {
	return Target{Datasource: ds, Expr: expr, LegendFormat: legend, Range: true, EditorMode: "code", Format: "time_series"}
}

// qi is an instant query (stat, gauge and table panels).
func qi(expr, legend string) Target {
	t := q(expr, legend)
	t.Range, t.Instant = false, true
	return t
}

// qx is a range query that also fetches exemplars (trace links).
func qx(expr, legend string) Target {
	t := q(expr, legend)
	t.Exemplar = true
	return t
}

func ptr[T any](v T) *T { return &v }

func baseSteps(color string) []Step { return []Step{{Color: color, Value: nil}} }

// fieldConfig is the field configuration every panel kind starts from: the
// unit, the colour mode, absolute threshold steps, and no value mappings or
// overrides. Each kind adds its own (custom settings, bounds, mappings).
func fieldConfig(unit, colorMode string, steps []Step) *FieldConfig {
	return &FieldConfig{
		Defaults: FieldDefaults{
			Unit:       unit,
			Color:      Color{Mode: colorMode},
			Thresholds: Thresholds{Mode: "absolute", Steps: steps},
			Mappings:   []any{},
		},
		Overrides: []Override{},
	}
}

// timeseries is a line graph of targets.
func timeseries(title, desc, unit string, targets ...Target) Panel {
	fc := fieldConfig(unit, "palette-classic", baseSteps("green"))
	fc.Defaults.Custom = &FieldCusto{
		DrawStyle: "line", LineWidth: 1, FillOpacity: ptr(10), GradientMode: "none", SpanNulls: ptr(false),
		ShowPoints: "never", PointSize: 5,
		Stacking:          &Stacking{Mode: "none", Group: "A"},
		ThresholdsStyle:   &ThresholdStyle{Mode: "off"},
		AxisPlacement:     "auto",
		ScaleDistribution: &ScaleDist{Type: "linear"},
	}
	return Panel{
		Type: "timeseries", Title: title, Description: desc, Datasource: ds,
		FieldConfig: fc,
		Options: map[string]any{
			"legend":  map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true, "calcs": []string{}},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		},
		Targets: targets,
	}
}

// withMin sets the axis minimum (0 for rates and ratios).
func withMin(p Panel, v float64) Panel {
	p.FieldConfig.Defaults.Min = ptr(v)
	return p
}

// withStack stacks the series (e.g. status codes adding up to the total).
func withStack(p Panel) Panel {
	p.FieldConfig.Defaults.Custom.Stacking = &Stacking{Mode: "normal", Group: "A"}
	p.FieldConfig.Defaults.Custom.FillOpacity = ptr(40)
	return p
}

// withThresholdLines draws each step as a dashed red/orange line.
func withThresholdLines(p Panel, steps ...Step) Panel {
	p.FieldConfig.Defaults.Thresholds.Steps = append(baseSteps("green"), steps...)
	p.FieldConfig.Defaults.Custom.ThresholdsStyle = &ThresholdStyle{Mode: "dashed"}
	return p
}

// withNoValue sets the text shown when a query legitimately has no series.
func withNoValue(p Panel, text string) Panel {
	p.FieldConfig.Defaults.NoValue = text
	return p
}

// stat is a single big number with a sparkline of the last value; its
// target is turned into a range query so the sparkline has points.
func stat(title, desc, unit string, t Target, steps ...Step) Panel {
	t.Range, t.Instant = true, false
	return Panel{
		Type: "stat", Title: title, Description: desc, Datasource: ds,
		FieldConfig: fieldConfig(unit, "thresholds", append(baseSteps("green"), steps...)),
		Options: map[string]any{
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode":     "value", "graphMode": "area", "justifyMode": "auto",
			"orientation": "auto", "textMode": "auto", "wideLayout": true,
			"showPercentChange": false,
		},
		Targets: []Target{t},
	}
}

// gauge is a dial for a bounded value such as budget remaining.
func gauge(title, desc, unit string, min, max float64, t Target, steps ...Step) Panel {
	fc := fieldConfig(unit, "thresholds", steps)
	fc.Defaults.Min, fc.Defaults.Max = ptr(min), ptr(max)
	return Panel{
		Type: "gauge", Title: title, Description: desc, Datasource: ds,
		FieldConfig: fc,
		Options: map[string]any{
			"reduceOptions":        map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"orientation":          "auto",
			"showThresholdLabels":  false,
			"showThresholdMarkers": true,
			"minVizHeight":         75, "minVizWidth": 75, "sizing": "auto",
		},
		Targets: []Target{t},
	}
}

// heatmap shows pre-bucketed histogram counts (format "heatmap").
func heatmap(title, desc, yUnit string, t Target) Panel {
	t.Format = "heatmap"
	t.LegendFormat = "{{le}}"
	fc := fieldConfig("reqps", "palette-classic", baseSteps("green"))
	fc.Defaults.Custom = &FieldCusto{HideFrom: &HideFrom{}, ScaleDistribution: &ScaleDist{Type: "linear"}}
	return Panel{
		Type: "heatmap", Title: title, Description: desc, Datasource: ds,
		MaxDataPoints: 60,
		FieldConfig:   fc,
		Options: map[string]any{
			"calculate":    false,
			"cellGap":      1,
			"color":        map[string]any{"mode": "scheme", "scheme": "Oranges", "exponent": 0.5, "fill": "dark-orange", "reverse": false, "scale": "exponential", "steps": 64},
			"exemplars":    map[string]any{"color": "rgba(255,0,255,0.7)"},
			"filterValues": map[string]any{"le": 1e-9},
			"legend":       map[string]any{"show": true},
			"rowsFrame":    map[string]any{"layout": "auto"},
			"tooltip":      map[string]any{"mode": "single", "yHistogram": true, "showColorScale": false},
			"yAxis":        map[string]any{"axisPlacement": "left", "reverse": false, "unit": yUnit},
			"cellValues":   map[string]any{"unit": "reqps"},
		},
		Targets: []Target{t},
	}
}

// stateTimeline shows discrete states over time (alert state).
func stateTimeline(title, desc string, mappings []any, t Target) Panel {
	fc := fieldConfig("none", "thresholds", baseSteps("green"))
	fc.Defaults.Mappings = mappings
	fc.Defaults.Custom = &FieldCusto{FillOpacity: ptr(80), LineWidth: 0, SpanNulls: ptr(false), HideFrom: &HideFrom{}}
	return Panel{
		Type: "state-timeline", Title: title, Description: desc, Datasource: ds,
		FieldConfig: fc,
		Options: map[string]any{
			"alignValue": "left", "mergeValues": true, "rowHeight": 0.9,
			"showValue": "auto",
			"legend":    map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
			"tooltip":   map[string]any{"mode": "single", "sort": "none"},
		},
		Targets: []Target{t},
	}
}

// step is a threshold step at v.
func step(color string, v float64) Step { return Step{Color: color, Value: ptr(v)} }

// fmtFloat formats a float for PromQL without float noise (1-0.999 -> 0.001).
func fmtFloat(v float64) string { return strconv.FormatFloat(round12(v), 'g', -1, 64) }

// round12 removes float noise from v (1-0.999 = 0.0010000000000000009).
func round12(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	return f
}
