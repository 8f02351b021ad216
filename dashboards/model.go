package dashboards

// This file holds the subset of Grafana's dashboard JSON model (schemaVersion
// 39, Grafana 10.x-12.x) that the glasshouse dashboards use. The types are
// deliberately small and typed: every field written here is one Grafana
// reads, and omitempty keeps the output close to what Grafana itself saves.

// Dashboard is one Grafana dashboard as stored in a provisioned JSON file.
type Dashboard struct {
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	Description   string      `json:"description"`
	Tags          []string    `json:"tags"`
	Editable      bool        `json:"editable"`
	GraphTooltip  int         `json:"graphTooltip"` // 1 = shared crosshair
	Refresh       string      `json:"refresh"`
	SchemaVersion int         `json:"schemaVersion"`
	Time          TimeRange   `json:"time"`
	Timezone      string      `json:"timezone"`
	Links         []Link      `json:"links"`
	Annotations   Annotations `json:"annotations"`
	Templating    Templating  `json:"templating"`
	Panels        []Panel     `json:"panels"`
	Version       int         `json:"version"`
}

// TimeRange is the default time range, in Grafana's relative syntax.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Link is a dashboard link shown in the top bar.
type Link struct {
	Title       string   `json:"title"`
	Type        string   `json:"type"` // "dashboards" (by tag) or "link"
	Tags        []string `json:"tags,omitempty"`
	URL         string   `json:"url,omitempty"`
	AsDropdown  bool     `json:"asDropdown"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
	TargetBlank bool     `json:"targetBlank"`
	Icon        string   `json:"icon,omitempty"`
	Tooltip     string   `json:"tooltip,omitempty"`
}

// Annotations holds the dashboard's annotation queries.
type Annotations struct {
	List []Annotation `json:"list"`
}

// Annotation is one annotation query.
type Annotation struct {
	Name       string          `json:"name"`
	Datasource *DatasourceRef  `json:"datasource"`
	Enable     bool            `json:"enable"`
	Hide       bool            `json:"hide"`
	IconColor  string          `json:"iconColor"`
	Type       string          `json:"type,omitempty"`
	BuiltIn    int             `json:"builtIn,omitempty"`
	Expr       string          `json:"expr,omitempty"`
	Step       string          `json:"step,omitempty"`
	TitleFmt   string          `json:"titleFormat,omitempty"`
	TextFormat string          `json:"textFormat,omitempty"`
	TagKeys    string          `json:"tagKeys,omitempty"`
	UseValue   bool            `json:"useValueForTime,omitempty"`
	Target     *AnnotationTgt  `json:"target,omitempty"`
	Filter     *AnnotationFilt `json:"filter,omitempty"`
}

// AnnotationTgt is the target of Grafana's built-in annotation query.
type AnnotationTgt struct {
	Limit    int      `json:"limit"`
	MatchAny bool     `json:"matchAny"`
	Tags     []string `json:"tags"`
	Type     string   `json:"type"`
}

// AnnotationFilt restricts an annotation to some panels.
type AnnotationFilt struct {
	Exclude bool  `json:"exclude"`
	IDs     []int `json:"ids"`
}

// DatasourceRef points at a datasource by type and uid; uid may be a
// variable reference such as "${datasource}".
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Templating holds the dashboard variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a dashboard template variable (datasource or query type).
type Variable struct {
	Name        string         `json:"name"`
	Label       string         `json:"label"`
	Description string         `json:"description"`
	Type        string         `json:"type"` // "datasource", "query", "custom", "constant"
	Datasource  *DatasourceRef `json:"datasource,omitempty"`
	Query       any            `json:"query"`
	Definition  string         `json:"definition,omitempty"`
	Current     Current        `json:"current"`
	Options     []any          `json:"options"`
	Hide        int            `json:"hide"`    // 0 shown, 2 hidden
	Refresh     int            `json:"refresh"` // 1 on load, 2 on time range change
	Regex       string         `json:"regex"`
	Sort        int            `json:"sort"`
	IncludeAll  bool           `json:"includeAll"`
	AllValue    string         `json:"allValue,omitempty"`
	Multi       bool           `json:"multi"`
	SkipURLSync bool           `json:"skipUrlSync"`
}

// Current is a variable's selected value.
type Current struct {
	Selected bool `json:"selected"`
	Text     any  `json:"text"`
	Value    any  `json:"value"`
}

// Panel is a dashboard panel. Rows are panels of type "row".
type Panel struct {
	ID              int            `json:"id"`
	Type            string         `json:"type"`
	Title           string         `json:"title"`
	Description     string         `json:"description,omitempty"`
	Datasource      *DatasourceRef `json:"datasource,omitempty"`
	GridPos         GridPos        `json:"gridPos"`
	Collapsed       *bool          `json:"collapsed,omitempty"`
	Repeat          string         `json:"repeat,omitempty"` // variable a row is repeated for
	Panels          []Panel        `json:"panels,omitempty"`
	Interval        string         `json:"interval,omitempty"`
	MaxDataPoints   int            `json:"maxDataPoints,omitempty"`
	FieldConfig     *FieldConfig   `json:"fieldConfig,omitempty"`
	Options         any            `json:"options,omitempty"`
	Targets         []Target       `json:"targets,omitempty"`
	Links           []PanelLink    `json:"links,omitempty"`
	Transformations []any          `json:"transformations,omitempty"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// PanelLink is a link in a panel's header.
type PanelLink struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	TargetBlank bool   `json:"targetBlank"`
}

// FieldConfig configures how a panel's fields are displayed.
type FieldConfig struct {
	Defaults  FieldDefaults `json:"defaults"`
	Overrides []Override    `json:"overrides"`
}

// FieldDefaults applies to every field unless overridden.
type FieldDefaults struct {
	Unit       string      `json:"unit"`
	Decimals   *int        `json:"decimals,omitempty"`
	Min        *float64    `json:"min,omitempty"`
	Max        *float64    `json:"max,omitempty"`
	NoValue    string      `json:"noValue,omitempty"`
	Color      Color       `json:"color"`
	Thresholds Thresholds  `json:"thresholds"`
	Mappings   []any       `json:"mappings"`
	Links      []DataLink  `json:"links,omitempty"`
	Custom     *FieldCusto `json:"custom,omitempty"`
}

// DataLink is a link attached to data points.
type DataLink struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Color picks the field colour scheme.
type Color struct {
	Mode       string `json:"mode"`
	FixedColor string `json:"fixedColor,omitempty"`
}

// Thresholds are colour steps; with custom.thresholdsStyle they draw lines.
type Thresholds struct {
	Mode  string `json:"mode"` // "absolute" or "percentage"
	Steps []Step `json:"steps"`
}

// Step is one threshold step; the first has a nil Value (base).
type Step struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

// FieldCusto is the panel-kind specific field configuration (time series,
// state timeline, heatmap). FillOpacity and SpanNulls are pointers because
// only the line-drawing kinds have them: a heatmap must leave them out.
type FieldCusto struct {
	DrawStyle         string          `json:"drawStyle,omitempty"`
	LineWidth         int             `json:"lineWidth,omitempty"`
	FillOpacity       *int            `json:"fillOpacity,omitempty"`
	GradientMode      string          `json:"gradientMode,omitempty"`
	ShowPoints        string          `json:"showPoints,omitempty"`
	PointSize         int             `json:"pointSize,omitempty"`
	SpanNulls         *bool           `json:"spanNulls,omitempty"`
	Stacking          *Stacking       `json:"stacking,omitempty"`
	ThresholdsStyle   *ThresholdStyle `json:"thresholdsStyle,omitempty"`
	AxisLabel         string          `json:"axisLabel,omitempty"`
	AxisPlacement     string          `json:"axisPlacement,omitempty"`
	AxisSoftMin       *float64        `json:"axisSoftMin,omitempty"`
	ScaleDistribution *ScaleDist      `json:"scaleDistribution,omitempty"`
	HideFrom          *HideFrom       `json:"hideFrom,omitempty"`
	LineStyle         *LineStyle      `json:"lineStyle,omitempty"`
}

// Stacking configures series stacking.
type Stacking struct {
	Mode  string `json:"mode"` // "none", "normal", "percent"
	Group string `json:"group"`
}

// ThresholdStyle draws thresholds on a graph: "off", "line", "dashed", "line+area".
type ThresholdStyle struct {
	Mode string `json:"mode"`
}

// ScaleDist selects a linear or log axis.
type ScaleDist struct {
	Type string `json:"type"`
	Log  int    `json:"log,omitempty"`
}

// HideFrom hides a field from legend, tooltip or viz.
type HideFrom struct {
	Legend  bool `json:"legend"`
	Tooltip bool `json:"tooltip"`
	Viz     bool `json:"viz"`
}

// LineStyle draws solid or dashed lines.
type LineStyle struct {
	Fill string `json:"fill"`
	Dash []int  `json:"dash,omitempty"`
}

// Override changes field config for matching fields.
type Override struct {
	Matcher    Matcher    `json:"matcher"`
	Properties []Property `json:"properties"`
}

// Matcher selects fields, e.g. {"id":"byName","options":"p99"}.
type Matcher struct {
	ID      string `json:"id"`
	Options any    `json:"options"`
}

// Property is one overridden field-config property.
type Property struct {
	ID    string `json:"id"`
	Value any    `json:"value"`
}

// Target is one query of a panel.
type Target struct {
	RefID        string         `json:"refId"`
	Datasource   *DatasourceRef `json:"datasource"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat"`
	Format       string         `json:"format,omitempty"` // "time_series", "heatmap", "table"
	Instant      bool           `json:"instant"`
	Range        bool           `json:"range"`
	Exemplar     bool           `json:"exemplar"`
	Interval     string         `json:"interval,omitempty"`
	Hide         bool           `json:"hide,omitempty"`
	EditorMode   string         `json:"editorMode"`
}
