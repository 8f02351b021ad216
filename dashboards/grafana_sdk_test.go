//lint:file-ignore SA1019 The SDK deprecates dashboard.Dashboard in favour of dashboardv2, the v2 resource format; the committed dashboards are classic dashboard JSON, which file provisioning loads and which only dashboard.Dashboard describes.

package dashboards_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/gauge"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// committedDir holds the dashboards Grafana provisions, relative to this
// package directory.
const committedDir = "json"

// registerGrafanaVariants registers, with the Grafana Foundation SDK, the
// panel and query types the dashboards use, so that their options, custom
// field config and queries are decoded strictly by the SDK's own types. A
// panel type not registered here fails decodeGrafanaStrict, so a new panel
// type cannot slip through as an untyped map.
//
// The SDK keeps its registry in a process-wide runtime; registering the same
// variant twice replaces it with itself, so calling this from several tests
// is harmless.
func registerGrafanaVariants() {
	rt := cog.NewRuntime()
	for _, v := range []variants.PanelcfgConfig{
		bargauge.VariantConfig(),
		gauge.VariantConfig(),
		heatmap.VariantConfig(),
		stat.VariantConfig(),
		statetimeline.VariantConfig(),
		timeseries.VariantConfig(),
	} {
		rt.RegisterPanelcfgVariant(v)
	}
	rt.RegisterDataqueryVariant(prometheus.VariantConfig())
}

// allowance is one error of the strict decode that the committed dashboards
// are allowed to have, with the reason. path is the error's path with every
// index written [*]; msg is the error's message.
type allowance struct {
	path, msg, why string
}

const missing = "required field is missing from input"

// grafanaAllowList returns the only errors the strict decode tolerates. Each
// is a field that the SDK's schema marks required but that Grafana fills with
// its default when it loads a dashboard, or a place where the SDK cannot
// represent what Grafana itself writes. An unknown field or a value of the
// wrong type is never on this list.
// TestCommittedJSONIsValidGrafana fails on an entry that no dashboard uses, so
// the list only shrinks.
func grafanaAllowList() []allowance {
	panelLink := "the SDK types a panel's links as dashboard links (type, icon, tags...), but a panel carries data links (title, url, targetBlank), which the SDK cannot represent; unknown fields in them still fail"
	list := []allowance{
		{"panels[*].panels", missing, "an expanded row keeps its panels at the top level; Grafana defaults a row's panels to []"},
		{"links[*].icon", missing, "Grafana defaults a dashboard link's icon to \"external link\""},
		{"links[*].tooltip", missing, "Grafana defaults a dashboard link's tooltip to \"\""},
		{"panels[*].options.percentChangeColorMode", missing, "stat panel option; Grafana fills it from the stat plugin's defaults"},
		{"panels[*].options.legend", missing, "bar gauge option; Grafana fills it from the bar gauge plugin's defaults"},
		{"panels[*].options.legend.calcs", missing, "legend option; Grafana defaults it to [] (no legend calculations)"},
		{"panels[*].options.showValue", missing, "heatmap option; Grafana fills it from the heatmap plugin's defaults"},
	}
	for _, f := range []string{"type", "icon", "tooltip", "tags", "asDropdown", "includeVars", "keepTime"} {
		list = append(list, allowance{"panels[*].links[*]." + f, missing, panelLink})
	}
	return list
}

// decodeGrafanaStrict decodes raw into the Grafana Foundation SDK's
// dashboard type and returns every error that is not on allow, counting in
// used how often each entry of allow was needed. Unknown fields and values
// of the wrong type fail. Beyond the SDK's Dashboard.UnmarshalJSONStrict it
// checks three places where that decoder is lenient by design:
//   - a panel whose type has no registered variant gets its options decoded
//     into an untyped value, so every panel type must be registered;
//   - a panel's fieldConfig is decoded leniently apart from defaults.custom,
//     so fieldConfig is decoded again with FieldConfigSource.UnmarshalJSONStrict;
//   - a query whose datasource type is unknown lands in an untyped bag, so
//     every target must decode to a typed Prometheus query.
func decodeGrafanaStrict(raw []byte, allow []allowance, used map[int]int) (*dashboard.Dashboard, error) {
	registerGrafanaVariants()
	var errs []error
	var d dashboard.Dashboard
	if err := d.UnmarshalJSONStrict(raw); err != nil {
		var build cog.BuildErrors
		if !errors.As(err, &build) {
			return nil, err // not JSON, or an array that is not one
		}
		errs = append(errs, asErrors(build)...)
	}
	var top struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	for i, p := range top.Panels {
		errs = append(errs, checkPanelStrict(fmt.Sprintf("panels[%d]", i), p)...)
	}
	var kept []error
	for _, err := range errs {
		if i, ok := allowed(err, allow); ok {
			used[i]++
			continue
		}
		kept = append(kept, err)
	}
	return &d, errors.Join(kept...)
}

// allowed reports which entry of allow, if any, covers err.
func allowed(err error, allow []allowance) (int, bool) {
	var b *cog.BuildError
	if !errors.As(err, &b) {
		return 0, false
	}
	path := regexp.MustCompile(`\[\d+\]`).ReplaceAllString(b.Path, "[*]")
	for i, a := range allow {
		if a.path == path && a.msg == b.Message {
			return i, true
		}
	}
	return 0, false
}

func asErrors(build cog.BuildErrors) []error {
	errs := make([]error, len(build))
	for i, b := range build {
		errs[i] = b
	}
	return errs
}

// checkPanelStrict checks one raw panel (and the panels of a row) for the
// places the SDK decodes leniently; path names the panel in errors.
func checkPanelStrict(path string, raw json.RawMessage) []error {
	var p struct {
		Type        string            `json:"type"`
		FieldConfig json.RawMessage   `json:"fieldConfig"`
		Panels      []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return []error{fmt.Errorf("%s: %w", path, err)}
	}
	var errs []error
	if p.Type == "row" {
		for i, c := range p.Panels {
			errs = append(errs, checkPanelStrict(fmt.Sprintf("%s.panels[%d]", path, i), c)...)
		}
		return errs
	}
	if _, ok := cog.ConfigForPanelcfgVariant(p.Type); !ok {
		errs = append(errs, fmt.Errorf("%s: panel type %q has no SDK variant registered in registerGrafanaVariants, so its options would not be checked", path, p.Type))
	}
	// The SDK's PanelOrRowPanel drops a panel that had any error, so the
	// queries are looked at on a panel decoded on its own; its errors were
	// already reported by the dashboard's decode.
	var sp dashboard.Panel
	_ = sp.UnmarshalJSONStrict(raw)
	errs = append(errs, checkTargetsTyped(path, sp)...)
	if p.FieldConfig != nil {
		var fc dashboard.FieldConfigSource
		if err := fc.UnmarshalJSONStrict(p.FieldConfig); err != nil {
			// Errors inside defaults.custom were already reported, typed by
			// the panel's variant; this pass is for the rest of fieldConfig.
			for _, e := range asErrors(cog.MakeBuildErrors(path+".fieldConfig", err)) {
				if !strings.Contains(e.(*cog.BuildError).Path, ".defaults.custom") {
					errs = append(errs, e)
				}
			}
		}
	}
	return errs
}

// checkTargetsTyped fails for every query of p that the SDK could not decode
// into a typed Prometheus query; path names p in errors.
func checkTargetsTyped(path string, p dashboard.Panel) []error {
	var errs []error
	for i, q := range p.Targets {
		if _, ok := q.(*prometheus.Dataquery); !ok {
			errs = append(errs, fmt.Errorf("%s.targets[%d]: decoded as %T, not a Prometheus query (datasource type missing or unknown)", path, i, q))
		}
	}
	return errs
}

// TestCommittedJSONIsValidGrafana decodes every committed dashboard strictly
// into the Grafana Foundation SDK's dashboard types: an unknown field or a
// value of the wrong type anywhere (dashboard, panels, options, field config,
// queries, variables, links, annotations) fails.
func TestCommittedJSONIsValidGrafana(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(committedDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no dashboards under %s", committedDir)
	}
	allow, used := grafanaAllowList(), map[int]int{}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			d, err := decodeGrafanaStrict(raw, allow, used)
			if err != nil {
				t.Fatalf("%s is not a valid Grafana dashboard:\n%v", path, err)
			}
			// The decode must have read the content, not an empty shell.
			var want struct {
				UID    string            `json:"uid"`
				Panels []json.RawMessage `json:"panels"`
			}
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if d.Uid == nil || *d.Uid != want.UID {
				t.Errorf("decoded uid = %v, want %q", d.Uid, want.UID)
			}
			if got := len(d.Panels); got != len(want.Panels) {
				t.Errorf("decoded %d panels, want %d", got, len(want.Panels))
			}
		})
	}
	if t.Failed() {
		return
	}
	for i, a := range allow {
		if used[i] == 0 {
			t.Errorf("allow-list entry %s %q is no longer needed by any dashboard: remove it from grafanaAllowList", a.path, a.msg)
		}
	}
}

// TestGrafanaStrictDecodeRejects proves the strict decode is strict: each case
// damages a copy of a committed dashboard in one place and must be rejected
// with an error naming the damaged field.
func TestGrafanaStrictDecodeRejects(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(committedDir, "glasshouse-red.json"))
	if err != nil {
		t.Fatal(err)
	}
	allow := grafanaAllowList()
	if _, err := decodeGrafanaStrict(raw, allow, map[int]int{}); err != nil {
		t.Fatalf("the undamaged dashboard must decode: %v", err)
	}

	// firstPanel returns the first non-row panel of d.
	firstPanel := func(d map[string]any) map[string]any {
		for _, p := range d["panels"].([]any) {
			if m := p.(map[string]any); m["type"] != "row" {
				return m
			}
		}
		t.Fatal("no panel")
		return nil
	}
	tests := []struct {
		name    string
		damage  func(d map[string]any)
		wantErr string
	}{
		{"unknown dashboard field", func(d map[string]any) {
			d["refreshEvery"] = "5s"
		}, "refreshEvery"},
		{"wrong type of dashboard field", func(d map[string]any) {
			d["editable"] = "no"
		}, "editable"},
		{"unknown panel field", func(d map[string]any) {
			firstPanel(d)["colour"] = "red"
		}, "colour"},
		{"wrong type in gridPos", func(d map[string]any) {
			firstPanel(d)["gridPos"].(map[string]any)["h"] = "four"
		}, "gridPos"},
		{"unknown panel option", func(d map[string]any) {
			firstPanel(d)["options"].(map[string]any)["sparkline"] = true
		}, "sparkline"},
		{"wrong type of nested panel option", func(d map[string]any) {
			o := firstPanel(d)["options"].(map[string]any)
			o["reduceOptions"].(map[string]any)["calcs"] = "lastNotNull"
		}, "reduceOptions"},
		{"unknown custom field config of the panel type", func(d map[string]any) {
			for _, p := range d["panels"].([]any) {
				if m := p.(map[string]any); m["type"] == "timeseries" {
					fc := m["fieldConfig"].(map[string]any)["defaults"].(map[string]any)
					fc["custom"].(map[string]any)["lineWidthPx"] = 2
					return
				}
			}
			t.Fatal("no time series panel")
		}, "lineWidthPx"},
		{"time series field config on a heatmap", func(d map[string]any) {
			for _, p := range d["panels"].([]any) {
				if m := p.(map[string]any); m["type"] == "heatmap" {
					fc := m["fieldConfig"].(map[string]any)["defaults"].(map[string]any)
					fc["custom"].(map[string]any)["spanNulls"] = false
					return
				}
			}
			t.Fatal("no heatmap panel")
		}, "spanNulls"},
		{"unknown field config default", func(d map[string]any) {
			fc := firstPanel(d)["fieldConfig"].(map[string]any)
			fc["defaults"].(map[string]any)["units"] = "s"
		}, "units"},
		{"unknown query field", func(d map[string]any) {
			q := firstPanel(d)["targets"].([]any)[0].(map[string]any)
			q["query"] = "up"
		}, "query"},
		{"query without a known datasource", func(d map[string]any) {
			p := firstPanel(d)
			delete(p, "datasource")
			delete(p["targets"].([]any)[0].(map[string]any), "datasource")
		}, "not a Prometheus query"},
		{"panel type without a variant", func(d map[string]any) {
			firstPanel(d)["type"] = "grafana-clock-panel"
		}, "grafana-clock-panel"},
		{"unknown variable field", func(d map[string]any) {
			v := d["templating"].(map[string]any)["list"].([]any)[0].(map[string]any)
			v["defaultValue"] = "prometheus"
		}, "defaultValue"},
		{"time series field config outside custom", func(d map[string]any) {
			fc := firstPanel(d)["fieldConfig"].(map[string]any)
			fc["defaults"].(map[string]any)["fillOpacity"] = 10
		}, "fillOpacity"},
		{"missing field that Grafana does not default", func(d map[string]any) {
			delete(d, "schemaVersion")
		}, "schemaVersion"},
		{"unknown panel link field", func(d map[string]any) {
			for _, p := range d["panels"].([]any) {
				if links, ok := p.(map[string]any)["links"].([]any); ok {
					links[0].(map[string]any)["newTab"] = true
					return
				}
			}
			t.Fatal("no panel with links")
		}, "newTab"},
		{"unknown link field", func(d map[string]any) {
			d["links"].([]any)[0].(map[string]any)["target"] = "_blank"
		}, "target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d map[string]any
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			tt.damage(d)
			damaged, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			_, err = decodeGrafanaStrict(damaged, allow, map[int]int{})
			if err == nil {
				t.Fatalf("decodeGrafanaStrict accepted a dashboard with %s", tt.name)
			}
			if got := err.Error(); !strings.Contains(got, tt.wantErr) {
				t.Errorf("error = %q, want it to name %q", got, tt.wantErr)
			}
		})
	}
}
