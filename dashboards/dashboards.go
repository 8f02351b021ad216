// Package dashboards generates glasshouse's Grafana dashboards (RED, SLO,
// runtime/USE, load test) as typed Go values, renders them to the JSON that
// Grafana provisions from dashboards/json/, and checks them: Lint applies the
// dashboard-linter rules that matter, Queries and Expand extract every PromQL
// expression with its template variables substituted so tests can parse it
// and evaluate it against a real Prometheus.
//
// From this repository it imports only the SLO spec (alerts/slo) and its
// rule names (alerts/rules): the SLO dashboard is derived from
// alerts/slo.yaml (TestImports).
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/glasshouse-dev/glasshouse/alerts/slo"
)

// All returns every glasshouse dashboard, built from spec: the service's
// set and the load-test dashboard of glasshouse-load.
func All(spec slo.Spec) []*Dashboard {
	return append(Service(spec), LoadTest())
}

// Service returns the dashboards one service needs, named after spec
// (Prefix, Job, Service): RED, SLO and runtime. Every one has a job
// variable, so the copy generated from one spec also shows any other job.
func Service(spec slo.Spec) []*Dashboard {
	return []*Dashboard{RED(spec), SLO(spec), Runtime(spec)}
}

// Render returns d as indented JSON with a trailing newline, the exact bytes
// committed under dashboards/json/.
func Render(d *Dashboard) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("render dashboard %s: %w", d.UID, err)
	}
	return buf.Bytes(), nil
}

// FileName is the JSON file name of d under the dashboards directory.
func FileName(d *Dashboard) string { return d.UID + ".json" }

// Files renders the dashboards ds, keyed by file name.
func Files(ds []*Dashboard) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, d := range ds {
		if errs := Lint(d); len(errs) > 0 {
			return nil, fmt.Errorf("dashboard %s fails lint: %w", d.UID, errs[0])
		}
		b, err := Render(d)
		if err != nil {
			return nil, err
		}
		out[FileName(d)] = b
	}
	return out, nil
}

// Write renders the dashboards ds into dir, replacing what is there, and
// removes stale *.json files that no dashboard produces any more. It returns
// the names of the files written.
func Write(dir string, ds []*Dashboard) ([]string, error) {
	files, err := Files(ds)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("write dashboards: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("write dashboards: %w", err)
	}
	for _, p := range old {
		if _, ok := files[filepath.Base(p)]; !ok {
			if err := os.Remove(p); err != nil {
				return nil, fmt.Errorf("remove stale dashboard: %w", err)
			}
		}
	}
	var names []string
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, fmt.Errorf("write dashboard: %w", err)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}
