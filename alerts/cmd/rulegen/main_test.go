package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sub", "rules.yaml")
	var stdout bytes.Buffer
	if err := run([]string{"rulegen", "-spec", "../../slo.yaml", "-out", out}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../../generated/slo-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Same rules as `make rules` wrote; only the header names the spec path.
	_, gotBody, _ := strings.Cut(string(got), "\ngroups:")
	_, wantBody, _ := strings.Cut(string(committed), "\ngroups:")
	if gotBody == "" || gotBody != wantBody {
		t.Errorf("rulegen output differs from alerts/generated/slo-rules.yaml")
	}
	if !strings.HasPrefix(stdout.String(), "wrote "+out) {
		t.Errorf("stdout = %q", stdout.String())
	}

	stdout.Reset()
	if err := run([]string{"rulegen", "-spec", "../../slo.yaml", "-out", "-", "-compress", "60"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if s := stdout.String(); !strings.Contains(s, "slo:sli_error:ratio_rate5s") || !strings.Contains(s, "compressed 60x") {
		t.Errorf("compressed output to stdout lacks the 5s window:\n%.400s", s)
	}
}

func TestRunErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("service: x\nperiod: 30d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nolinks := filepath.Join(t.TempDir(), "nolinks.yaml")
	if err := os.WriteFile(nolinks, []byte("service: x\nselector: 'job=\"x\"'\nperiod: 30d\nslos: [{name: a, description: d, objective: 0.9, sli: {type: availability}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-spec", "missing.yaml"}, "load slo spec"},
		{[]string{"-spec", bad, "-out", "-"}, "selector: required"},
		{[]string{"-spec", nolinks, "-out", "-"}, "links.runbooks: required"},
		{[]string{"-spec", "../../slo.yaml", "-out", "-", "-compress", "-2"}, "compress: -2"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		err := run(append([]string{"rulegen"}, tt.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run %v = %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestRunDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "orders")
	var stdout bytes.Buffer
	if err := run([]string{"rulegen", "-spec", "../../../examples/orders/slo.yaml", "-dir", dir}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"slo-rules.yaml", "symptoms.yaml", "tests/slo.test.yaml", "runbooks/slo-latency.md", "dashboards/orders-slo.json", "load-thresholds.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
		if !strings.Contains(stdout.String(), "wrote "+filepath.ToSlash(filepath.Join(dir, f))+"\n") {
			t.Errorf("stdout does not list %s:\n%s", f, stdout.String())
		}
	}
	err := run([]string{"rulegen", "-spec", "../../slo.yaml", "-dir", dir, "-compress", "60"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-compress applies to -out only") {
		t.Errorf("-dir with -compress = %v, want an error", err)
	}
}
