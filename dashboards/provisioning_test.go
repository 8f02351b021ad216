package dashboards

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/glasshouse-dev/glasshouse/telemetry"
)

const (
	datasourcesFile = "provisioning/datasources/datasources.yaml"
	providerFile    = "provisioning/dashboards/dashboards.yaml"
	// DashboardsMount is where compose mounts dashboards/json in Grafana.
	dashboardsMount = "/var/lib/grafana/dashboards/glasshouse"
)

// grafanaExpand mimics how Grafana reads provisioning files: "$$" is a
// literal "$", "$NAME" and "${NAME}" are environment variables.
func grafanaExpand(s string, env map[string]string) string {
	re := regexp.MustCompile(`\$\$|\$\{(\w+)\}|\$(\w+)`)
	return re.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sm := re.FindStringSubmatch(m)
		return env[sm[1]+sm[2]]
	})
}

type provDatasource struct {
	Name     string         `yaml:"name"`
	UID      string         `yaml:"uid"`
	Type     string         `yaml:"type"`
	URL      string         `yaml:"url"`
	Access   string         `yaml:"access"`
	OrgID    int            `yaml:"orgId"`
	Default  bool           `yaml:"isDefault"`
	Editable bool           `yaml:"editable"`
	JSON     map[string]any `yaml:"jsonData"`
}

func loadDatasources(t *testing.T) (raw string, byUID map[string]provDatasource) {
	t.Helper()
	b, err := os.ReadFile(datasourcesFile)
	if err != nil {
		t.Fatal(err)
	}
	// Expand with a hostile environment: an unescaped reference to a
	// Grafana macro would be replaced by junk and fail the checks below.
	env := map[string]string{"__value": "JUNK", "__trace": "JUNK", "__tags": "JUNK"}
	var f struct {
		APIVersion  int              `yaml:"apiVersion"`
		Datasources []provDatasource `yaml:"datasources"`
	}
	dec := yaml.NewDecoder(strings.NewReader(grafanaExpand(string(b), env)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", datasourcesFile, err)
	}
	if f.APIVersion != 1 {
		t.Errorf("apiVersion = %d, want 1", f.APIVersion)
	}
	byUID = map[string]provDatasource{}
	for _, d := range f.Datasources {
		byUID[d.UID] = d
	}
	return string(b), byUID
}

func get[T any](t *testing.T, m map[string]any, path ...string) T {
	t.Helper()
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("jsonData.%s: not an object at %q", strings.Join(path, "."), k)
		}
		cur = mm[k]
	}
	v, ok := cur.(T)
	if !ok {
		t.Fatalf("jsonData.%s = %#v, wrong type", strings.Join(path, "."), cur)
	}
	return v
}

func TestDatasourcesProvisioned(t *testing.T) {
	raw, ds := loadDatasources(t)
	want := map[string]struct{ typ, url string }{
		PrometheusUID: {"prometheus", "http://prometheus:9090"},
		TempoUID:      {"tempo", "http://tempo:3200"},
		LokiUID:       {"loki", "http://loki:3100"},
	}
	if len(ds) != len(want) {
		t.Errorf("%d datasources, want %d", len(ds), len(want))
	}
	for uid, w := range want {
		d, ok := ds[uid]
		if !ok {
			t.Errorf("no datasource with uid %q", uid)
			continue
		}
		if d.Type != w.typ || d.URL != w.url || d.Access != "proxy" || d.Editable {
			t.Errorf("datasource %s = %+v, want type %s url %s access proxy, not editable", uid, d, w.typ, w.url)
		}
	}

	// Prometheus exemplars -> Tempo, on the label the API's exemplars carry.
	dest := get[[]any](t, ds[PrometheusUID].JSON, "exemplarTraceIdDestinations")
	if len(dest) != 1 {
		t.Fatalf("exemplarTraceIdDestinations = %v, want one", dest)
	}
	e := dest[0].(map[string]any)
	if e["name"] != "trace_id" || e["datasourceUid"] != TempoUID {
		t.Errorf("exemplar destination = %v, want name trace_id -> datasourceUid tempo", e)
	}

	// Tempo -> Loki (by trace id) and -> Prometheus.
	tl := ds[TempoUID].JSON
	if get[string](t, tl, "tracesToLogsV2", "datasourceUid") != LokiUID || !get[bool](t, tl, "tracesToLogsV2", "filterByTraceID") {
		t.Errorf("tracesToLogsV2 = %v, want loki filtered by trace id", tl["tracesToLogsV2"])
	}
	if q := get[string](t, tl, "tracesToLogsV2", "query"); q != `{stack="glasshouse"} |= "${__trace.traceId}"` {
		t.Errorf("tracesToLogsV2.query after Grafana's env expansion = %q; literal $ must be written $$", q)
	}
	if get[string](t, tl, "tracesToMetrics", "datasourceUid") != PrometheusUID {
		t.Errorf("tracesToMetrics must point at prometheus")
	}
	for _, qq := range get[[]any](t, tl, "tracesToMetrics", "queries") {
		q := qq.(map[string]any)["query"].(string)
		if !strings.Contains(q, "{$__tags") {
			t.Errorf("tracesToMetrics query %q lost $__tags in env expansion", q)
		}
		if _, err := ParseExpr(strings.ReplaceAll(q, "$__tags", `job="glasshouse-api"`), nil); err != nil {
			t.Errorf("tracesToMetrics query: %v", err)
		}
	}

	// Loki derived field -> Tempo.
	fields := get[[]any](t, ds[LokiUID].JSON, "derivedFields")
	if len(fields) != 1 {
		t.Fatalf("derivedFields = %v, want one", fields)
	}
	f := fields[0].(map[string]any)
	if f["datasourceUid"] != TempoUID || f["url"] != "${__value.raw}" {
		t.Errorf("derived field = %v, want datasourceUid tempo and url ${__value.raw} (written $${__value.raw})", f)
	}

	// Every $ in the raw file is escaped, so Grafana's env expansion leaves
	// the macros alone whatever the environment holds.
	if s := regexp.MustCompile(`\$\$`).ReplaceAllString(raw, ""); strings.Contains(s, "$") {
		t.Errorf("%s has an unescaped $ (write $$ for a literal $)", datasourcesFile)
	}
}

// TestDerivedFieldMatchesAppLogs feeds the Loki derived-field regex a real
// JSON log line written by the telemetry package inside a span, and checks
// it extracts exactly that span's trace ID: the log-to-trace link works on
// the app's own format, not on a format someone assumed.
func TestDerivedFieldMatchesAppLogs(t *testing.T) {
	_, ds := loadDatasources(t)
	f := get[[]any](t, ds[LokiUID].JSON, "derivedFields")[0].(map[string]any)
	re, err := regexp.Compile(f["matcherRegex"].(string))
	if err != nil {
		t.Fatalf("matcherRegex: %v", err)
	}
	var buf bytes.Buffer
	tel, err := telemetry.New(t.Context(), telemetry.Config{
		LogWriter: &buf, LogFormat: "json", DisableAccessLog: true,
		Getenv: func(string) string { return "" },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(t.Context()) })
	ctx, span := tel.Span(t.Context(), "dashboards.test")
	tel.Logger.InfoContext(ctx, "item created", "item_id", "42")
	span.End()
	want := span.SpanContext().TraceID().String()
	line := strings.TrimSpace(buf.String())
	m := re.FindStringSubmatch(line)
	if m == nil || m[1] != want {
		t.Fatalf("matcherRegex %s on the app's log line\n%s\ncaptured %q, want trace id %s", re, line, m, want)
	}
	// A line without a span must not produce a bogus link.
	buf.Reset()
	tel.Logger.Info("no span here")
	if re.MatchString(buf.String()) {
		t.Errorf("matcherRegex matched a log line without a trace: %s", buf.String())
	}
}

func TestDashboardProvider(t *testing.T) {
	b, err := os.ReadFile(providerFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name                  string `yaml:"name"`
			OrgID                 int    `yaml:"orgId"`
			Folder                string `yaml:"folder"`
			FolderUID             string `yaml:"folderUid"`
			Type                  string `yaml:"type"`
			DisableDeletion       bool   `yaml:"disableDeletion"`
			AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
			UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path                      string `yaml:"path"`
				FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", providerFile, err)
	}
	if f.APIVersion != 1 || len(f.Providers) != 1 {
		t.Fatalf("want apiVersion 1 and one provider, got %+v", f)
	}
	p := f.Providers[0]
	if p.Type != "file" || p.Options.Path != dashboardsMount || p.AllowUIUpdates || !p.DisableDeletion {
		t.Errorf("provider = %+v, want a read-only file provider loading %s", p, dashboardsMount)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{dashboardsMount, "/etc/grafana/provisioning/datasources", "/etc/grafana/provisioning/dashboards"} {
		if !bytes.Contains(readme, []byte(s)) {
			t.Errorf("README.md does not document the mount point %s", s)
		}
	}
}

// TestComposeShipsTheLogLabel checks the one thing the trace-to-logs query
// assumes about the log collector: API lines reach Loki with
// stack="glasshouse" (compose/alloy/config.alloy).
func TestComposeShipsTheLogLabel(t *testing.T) {
	b, err := os.ReadFile("../compose/alloy/config.alloy")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"stack"\s*=\s*"glasshouse"`).Match(b) {
		t.Errorf(`compose/alloy/config.alloy no longer labels log streams stack="glasshouse"; Tempo's trace-to-logs query in %s depends on it`, datasourcesFile)
	}
}

// TestServiceMapHasItsMetrics: Tempo's service graph reads the
// traces_service_graph_* series that Tempo's metrics generator remote-writes
// to Prometheus. Provisioning serviceMap without that pipeline gives a
// Service Graph tab that only ever says "No data", so it is provisioned only
// when compose/tempo/tempo.yaml runs the service-graphs processor with a
// remote write and compose's Prometheus accepts remote writes.
func TestServiceMapHasItsMetrics(t *testing.T) {
	_, ds := loadDatasources(t)
	if _, ok := ds[TempoUID].JSON["serviceMap"]; !ok {
		return
	}
	tempo, err := os.ReadFile("../compose/tempo/tempo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	compose, err := os.ReadFile("../compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, need := range []struct {
		ok   bool
		what string
	}{
		{bytes.Contains(tempo, []byte("metrics_generator")) && bytes.Contains(tempo, []byte("remote_write")), "compose/tempo/tempo.yaml has no metrics_generator with a remote_write"},
		{bytes.Contains(tempo, []byte("service-graphs")), "compose/tempo/tempo.yaml does not enable the service-graphs processor"},
		{bytes.Contains(compose, []byte("--web.enable-remote-write-receiver")), "compose's Prometheus does not accept remote writes (--web.enable-remote-write-receiver)"},
	} {
		if !need.ok {
			t.Errorf("%s provisions Tempo's serviceMap, but %s: the Service Graph would show no data", datasourcesFile, need.what)
		}
	}
}
