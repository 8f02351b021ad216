package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// precisionSample is one precision run of glasshouse-load at a fixed rate.
type precisionSample struct {
	lagP50, lagP99, gapP50, cpuUS float64 // microseconds
}

var precisionFile = regexp.MustCompile(`^precision-(\d+)-\d+\.out$`)

// precisionReport prints, per rate, the median [min..max] over repeats of
// schedule_lag p50 and p99, http_req_latency p50 minus http_req_duration
// p50 (the generator's own share of the reported latency) and CPU per
// request, from precision-<rate>-<run>.out (JSON summaries with med and
// p(99)) and their .time files. It prints nothing without such files.
func precisionReport(dir string) error {
	files, _ := filepath.Glob(filepath.Join(dir, "precision-*.out"))
	byRate := map[int][]precisionSample{}
	for _, f := range files {
		m := precisionFile.FindStringSubmatch(filepath.Base(f))
		if m == nil {
			continue
		}
		rate, _ := strconv.Atoi(m[1])
		s, err := parsePrecision(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		byRate[rate] = append(byRate[rate], s)
	}
	if len(byRate) == 0 {
		return nil
	}
	rates := make([]int, 0, len(byRate))
	for r := range byRate {
		rates = append(rates, r)
	}
	slices.Sort(rates)
	fmt.Printf("\nSchedule precision of glasshouse-load (constant-arrival-rate against the target); median [min..max], microseconds\n\n")
	fmt.Printf("%-10s %-24s %-24s %-30s %s\n", "rate", "schedule_lag p50", "schedule_lag p99", "latency p50 - duration p50", "CPU/request")
	for _, r := range rates {
		ss := byRate[r]
		p := func(f func(precisionSample) float64) string {
			v := make([]float64, len(ss))
			for i, s := range ss {
				v[i] = f(s)
			}
			slices.Sort(v)
			n := len(v)
			return fmt.Sprintf("%.1f [%.1f..%.1f]", (v[(n-1)/2]+v[n/2])/2, v[0], v[n-1])
		}
		fmt.Printf("%-10s %-24s %-24s %-30s %s\n", strconv.Itoa(r)+"/s",
			p(func(s precisionSample) float64 { return s.lagP50 }), p(func(s precisionSample) float64 { return s.lagP99 }),
			p(func(s precisionSample) float64 { return s.gapP50 }), p(func(s precisionSample) float64 { return s.cpuUS }))
	}
	fmt.Println()
	return nil
}

func parsePrecision(out string) (precisionSample, error) {
	b, err := os.ReadFile(out)
	if err != nil {
		return precisionSample{}, err
	}
	var sum struct {
		Metrics map[string]struct {
			Values map[string]float64 `json:"values"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		return precisionSample{}, err
	}
	v := func(metric, stat string) (float64, error) {
		x, ok := sum.Metrics[metric].Values[stat]
		if !ok {
			return 0, fmt.Errorf("no %s %s in the summary (run with -summary-trend-stats med,p(99))", metric, stat)
		}
		return x, nil
	}
	var s precisionSample
	var errs []error
	get := func(metric, stat string) float64 {
		x, err := v(metric, stat)
		if err != nil {
			errs = append(errs, err)
		}
		return x
	}
	s.lagP50 = 1000 * get("schedule_lag", "med")
	s.lagP99 = 1000 * get("schedule_lag", "p(99)")
	s.gapP50 = 1000 * (get("http_req_latency", "med") - get("http_req_duration", "med"))
	reqs := get("http_reqs", "count")
	if len(errs) > 0 {
		return s, errs[0]
	}
	t, err := os.ReadFile(strings.TrimSuffix(out, ".out") + ".time")
	if err != nil {
		return s, err
	}
	f := strings.Fields(string(t))
	if len(f) < 2 || reqs == 0 {
		return s, fmt.Errorf("time file %q or no requests", t)
	}
	user, _ := strconv.ParseFloat(f[0], 64)
	sys, _ := strconv.ParseFloat(f[1], 64)
	s.cpuUS = (user + sys) / reqs * 1e6
	return s, nil
}
