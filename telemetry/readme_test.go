package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMEMetricsTable: the metrics table in README.md, which dashboards,
// alerts and load tests are built on, lists exactly the families the
// package registers (go_* and process_* aside), each with its type and
// labels.
func TestREADMEMetricsTable(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		typ    string
		labels []string
	}
	documented := map[string]row{}
	rowRE := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (counter|gauge|histogram) \\| ([^|]*) \\|")
	labelRE := regexp.MustCompile("`([a-z_]+)`")
	for _, m := range rowRE.FindAllStringSubmatch(string(readme), -1) {
		var labels []string
		// Label names are the backticked words outside parentheses
		// (those hold example values).
		cell := regexp.MustCompile(`\([^)]*\)`).ReplaceAllString(m[3], "")
		for _, l := range labelRE.FindAllStringSubmatch(cell, -1) {
			labels = append(labels, l[1])
		}
		slices.Sort(labels)
		documented[m[1]] = row{m[2], labels}
	}
	if len(documented) < 10 {
		t.Fatalf("found only %d metric rows in README.md; has the table's format changed?", len(documented))
	}

	tel, err := New(t.Context(), Config{LogWriter: io.Discard, LogFormat: "json", Getenv: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	// Touch every hook so that vectors have a series to show their labels.
	tel.ConcurrencyRejected()
	tel.PanicRecovered("/x")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(http.ResponseWriter, *http.Request) {})
	tel.Middleware(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))

	mfs, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		registered[name] = true
		doc, ok := documented[name]
		if !ok {
			t.Errorf("%s is registered but not in README.md's metrics table", name)
			continue
		}
		if typ := strings.ToLower(mf.GetType().String()); typ != doc.typ {
			t.Errorf("%s is a %s, README.md says %s", name, typ, doc.typ)
		}
		var labels []string
		if len(mf.GetMetric()) > 0 {
			for _, lp := range mf.GetMetric()[0].GetLabel() {
				labels = append(labels, lp.GetName())
			}
		}
		slices.Sort(labels)
		if !slices.Equal(labels, doc.labels) {
			t.Errorf("%s has labels %v, README.md says %v", name, labels, doc.labels)
		}
	}
	for name := range documented {
		// CPU utilisation needs CPU time to have passed since the
		// baseline taken in New; until then the series is left out.
		if !registered[name] && name != "system_cpu_utilization_ratio" {
			t.Errorf("README.md documents %s, which is not registered", name)
		}
	}
}
