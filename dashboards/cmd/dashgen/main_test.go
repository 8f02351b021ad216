package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunWritesDashboards(t *testing.T) {
	out := t.TempDir()
	stale := filepath.Join(out, "old-dashboard.json")
	if err := os.WriteFile(stale, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"-slo", "../../../alerts/slo.yaml", "-out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v (stderr %s)", err, stderr.String())
	}
	for _, uid := range []string{"glasshouse-red", "glasshouse-slo", "glasshouse-runtime", "glasshouse-loadtest"} {
		p := filepath.Join(out, uid+".json")
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s not written: %v", p, err)
		}
		if !strings.Contains(stdout.String(), uid+".json") {
			t.Errorf("stdout does not report %s: %q", uid, stdout.String())
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale dashboard %s was not removed", stale)
	}
}

func TestRunErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing spec", []string{"-slo", filepath.Join(t.TempDir(), "nope.yaml")}, "load slo spec"},
		{"stray argument", []string{"extra"}, "unexpected arguments"},
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append(c.args, "-out", t.TempDir()), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", c.args, err, c.want)
			}
		})
	}
}
