package main

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The testdata files are real outputs of one bench-loadgen run.
func TestParseRealOutputs(t *testing.T) {
	tests := []struct {
		tool           string
		reqs, p50, p99 float64
		scheduled      float64
	}{
		{"wrk", 333154, 1.05, 171.34, 0},
		{"hey", 49150, 0.6, 7.9, 50000},
		{"floor", 50000, 0.054, 0.078, 50000},
	}
	for _, tt := range tests {
		s, err := parse(tt.tool, filepath.Join("testdata", tt.tool+"-1.out"), 5000, 10)
		if err != nil {
			t.Fatalf("%s: %v", tt.tool, err)
		}
		if s.reqs != tt.reqs || math.Abs(s.p50-tt.p50) > 1e-9 || math.Abs(s.p99-tt.p99) > 1e-9 || s.scheduled != tt.scheduled {
			t.Errorf("%s: parsed %+v, want reqs %v p50 %v p99 %v scheduled %v", tt.tool, s, tt.reqs, tt.p50, tt.p99, tt.scheduled)
		}
		if s.cpuUS <= 0 || s.rssMB <= 0 {
			t.Errorf("%s: cpu %v us/req, rss %v MB", tt.tool, s.cpuUS, s.rssMB)
		}
	}
	s, err := parse("glasshouse-load", filepath.Join("testdata", "glasshouse-load-1.out"), 5000, 10)
	if err != nil || s.reqs == 0 || s.scheduled != 50000 || s.p99 <= s.p50 {
		t.Errorf("glasshouse-load: %+v %v", s, err)
	}
}

func TestReportTable(t *testing.T) {
	r, w, _ := os.Pipe()
	stdout := os.Stdout
	os.Stdout = w
	err := report("testdata", 5000, 10)
	w.Close()
	os.Stdout = stdout
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8192)
	n, _ := r.Read(b)
	out := string(b[:n])
	for _, want := range []string{"glasshouse-load ", "floor ", "hey ", "wrk ", "glasshouse-load-closed", "1.00x", "closed loop"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestPrecisionReport parses a real precision run (1,000 it/s for 5 s) and
// prints its row; the table is empty without precision files.
func TestPrecisionReport(t *testing.T) {
	s, err := parsePrecision(filepath.Join("testdata", "precision-1000-1.out"))
	if err != nil {
		t.Fatal(err)
	}
	want := precisionSample{lagP50: 31.372, lagP99: 2179.6875, gapP50: 76.172, cpuUS: 96}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"lag p50", s.lagP50, want.lagP50}, {"lag p99", s.lagP99, want.lagP99}, {"gap p50", s.gapP50, want.gapP50}, {"cpu", s.cpuUS, want.cpuUS}} {
		if math.Abs(c.got-c.want) > 0.01 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	r, w, _ := os.Pipe()
	stdout := os.Stdout
	os.Stdout = w
	err = precisionReport("testdata")
	w.Close()
	os.Stdout = stdout
	out, _ := io.ReadAll(r)
	if err != nil || !strings.Contains(string(out), "1000/s     31.4 [31.4..31.4]") {
		t.Errorf("precisionReport: %v\n%s", err, out)
	}
	if err := precisionReport(t.TempDir()); err != nil {
		t.Errorf("no precision files: %v", err)
	}
}
