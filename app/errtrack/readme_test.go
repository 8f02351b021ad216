package errtrack_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glasshouse-dev/glasshouse/app/errtrack"
)

// TestREADMEMetricsTable: README.md's metric table lists exactly the
// families the tracker registers, each with its type and labels.
func TestREADMEMetricsTable(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rowRE := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (counter|gauge|histogram) \\| ([^|]*) \\|")
	documented := map[string]string{}
	for _, m := range rowRE.FindAllStringSubmatch(string(readme), -1) {
		cell := regexp.MustCompile(`\([^)]*\)`).ReplaceAllString(m[3], "")
		var labels []string
		for _, l := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(cell, -1) {
			labels = append(labels, l[1])
		}
		slices.Sort(labels)
		documented[m[1]] = m[2] + " " + strings.Join(labels, ",")
	}
	reg := prometheus.NewRegistry()
	tr, err := errtrack.New(errtrack.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	tr.Report(errtrack.Event{Route: "/x", ErrorType: errtrack.TypePanic})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]string{}
	for _, mf := range mfs {
		var labels []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		slices.Sort(labels)
		registered[mf.GetName()] = strings.ToLower(mf.GetType().String()) + " " + strings.Join(labels, ",")
	}
	for name, want := range registered {
		if got := documented[name]; got != want {
			t.Errorf("README row for %s: %q, want %q", name, got, want)
		}
	}
	for name := range documented {
		if _, ok := registered[name]; !ok {
			t.Errorf("README lists %s, which the tracker does not register", name)
		}
	}
}
