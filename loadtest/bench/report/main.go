// Command report prints the load generator benchmark's ratio table from the
// result files loadtest/bench/run.sh leaves in a directory:
//
//	<tool>-<run>.out   the tool's output (glasshouse-load: its JSON summary)
//	<tool>-<run>.time  "user sys maxrss_kb" from /usr/bin/time
//
// Tools are glasshouse-load (fixed rate), floor (fixed rate: the least a
// generator that wakes for every arrival and every response costs here,
// see ../floor), hey (fixed rate), wrk (closed loop, as fast as it can) and
// glasshouse-load-closed (closed loop). For each it prints the median (and
// range) over the repeats of: requests, achieved/scheduled, generator CPU
// per request and its ratios to floor's and wrk's, p50 and p99. With
// -precision it prints the schedule precision table instead (see
// precisionReport).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

type sample struct {
	reqs, scheduled, cpuUS, p50, p99, rssMB float64
}

func main() {
	dir := flag.String("dir", ".", "results directory")
	rate := flag.Float64("rate", 5000, "scheduled rate of the fixed-rate runs")
	dur := flag.Float64("duration", 10, "seconds per run")
	precision := flag.Bool("precision", false, "print the schedule precision table (precision-<rate>-<run>.out) instead")
	flag.Parse()
	run := func() error { return report(*dir, *rate, *dur) }
	if *precision {
		run = func() error { return precisionReport(*dir) }
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

var tools = []string{"glasshouse-load", "floor", "hey", "wrk", "glasshouse-load-closed"}

func report(dir string, rate, dur float64) error {
	res := map[string][]sample{}
	for _, tool := range tools {
		outs, _ := filepath.Glob(filepath.Join(dir, tool+"-[0-9]*.out"))
		for _, out := range outs {
			s, err := parse(tool, out, rate, dur)
			if err != nil {
				return fmt.Errorf("%s: %w", out, err)
			}
			res[tool] = append(res[tool], s)
		}
	}
	if len(res["wrk"]) == 0 {
		return errors.New("no wrk results to compare with")
	}
	cpuOf := func(s sample) float64 { return s.cpuUS }
	wrkCPU := median(res["wrk"], cpuOf)
	vsFloor := func([]sample) string { return "-" }
	if fl := res["floor"]; len(fl) > 0 {
		floorCPU := median(fl, cpuOf)
		vsFloor = func(ss []sample) string { return fmt.Sprintf("%.2fx", median(ss, cpuOf)/floorCPU) }
	}
	fmt.Printf("\nGenerator comparison on loopback (target on core 0, generator on core 1); median [min..max] of %d runs\n\n", len(res["wrk"]))
	fmt.Printf("%-24s %-10s %-22s %-20s %-9s %-9s %-18s %-18s %s\n", "tool", "requests", "achieved/scheduled", "CPU/request (us)", "vs floor", "vs wrk", "p50 (ms)", "p99 (ms)", "max RSS")
	for _, tool := range tools {
		ss := res[tool]
		if len(ss) == 0 {
			continue
		}
		ach := "closed loop"
		if ss[0].scheduled > 0 {
			ach = rng(ss, func(s sample) float64 { return s.reqs / s.scheduled }, "%.4f")
		}
		cpu := median(ss, cpuOf)
		fmt.Printf("%-24s %-10.0f %-22s %-20s %-9s %-9s %-18s %-18s %.0f MB\n", tool,
			median(ss, func(s sample) float64 { return s.reqs }), ach,
			rng(ss, cpuOf, "%.1f"), vsFloor(ss), fmt.Sprintf("%.2fx", cpu/wrkCPU),
			rng(ss, func(s sample) float64 { return s.p50 }, "%.3f"), rng(ss, func(s sample) float64 { return s.p99 }, "%.3f"),
			median(ss, func(s sample) float64 { return s.rssMB }))
	}
	fmt.Println()
	return nil
}

func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func rng(ss []sample, f func(sample) float64, format string) string {
	lo, hi := f(ss[0]), f(ss[0])
	for _, s := range ss {
		lo, hi = min(lo, f(s)), max(hi, f(s))
	}
	m := median(ss, f)
	if len(ss) == 1 {
		return fmt.Sprintf(format, m)
	}
	return fmt.Sprintf(format+" ["+format+".."+format+"]", m, lo, hi)
}

func parse(tool, out string, rate, dur float64) (sample, error) {
	var s sample
	t, err := os.ReadFile(strings.TrimSuffix(out, ".out") + ".time")
	if err != nil {
		return s, err
	}
	f := strings.Fields(string(t))
	if len(f) < 3 {
		return s, fmt.Errorf("time file %q: want user sys maxrss", t)
	}
	user, _ := strconv.ParseFloat(f[0], 64)
	sys, _ := strconv.ParseFloat(f[1], 64)
	rss, _ := strconv.ParseFloat(f[2], 64)
	s.rssMB = rss / 1024
	b, err := os.ReadFile(out)
	if err != nil {
		return s, err
	}
	switch tool {
	case "glasshouse-load", "glasshouse-load-closed":
		var sum struct {
			Metrics map[string]struct {
				Values map[string]float64 `json:"values"`
			} `json:"metrics"`
			Scenarios map[string]struct {
				Scheduled float64 `json:"scheduled"`
			} `json:"scenarios"`
		}
		if err := json.Unmarshal(b, &sum); err != nil {
			return s, err
		}
		s.reqs = sum.Metrics["http_reqs"].Values["count"]
		s.p50 = sum.Metrics["http_req_duration"].Values["med"]
		s.p99 = sum.Metrics["http_req_duration"].Values["p(99)"]
		if tool == "glasshouse-load" {
			s.scheduled = sum.Scenarios["default"].Scheduled
		}
	case "floor":
		s.reqs = first(b, `requests (\d+)`)
		s.scheduled = first(b, `scheduled (\d+)`)
		s.p50 = first(b, `duration_p50_ms ([0-9.]+)`)
		s.p99 = first(b, `duration_p99_ms ([0-9.]+)`)
	case "hey":
		s.reqs = sumMatches(b, `\[\d+\]\s+(\d+) responses`)
		s.p50 = first(b, `50%+ in ([0-9.]+) secs`) * 1000
		s.p99 = first(b, `99%+ in ([0-9.]+) secs`) * 1000
		s.scheduled = rate * dur
	case "wrk":
		s.reqs = first(b, `(\d+) requests in`)
		s.p50 = wrkLatency(b, "50%")
		s.p99 = wrkLatency(b, "99%")
	}
	if s.reqs == 0 {
		return s, errors.New("no requests found")
	}
	s.cpuUS = (user + sys) / s.reqs * 1e6
	return s, nil
}

func first(b []byte, re string) float64 {
	m := regexp.MustCompile(re).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func sumMatches(b []byte, re string) float64 {
	var t float64
	for _, m := range regexp.MustCompile(re).FindAllSubmatch(b, -1) {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		t += v
	}
	return t
}

// wrkLatency reads "     99%    1.23ms" from wrk --latency, in ms.
func wrkLatency(b []byte, pct string) float64 {
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	re := regexp.MustCompile(`^\s+` + regexp.QuoteMeta(pct) + `\s+([0-9.]+)(us|ms|s)\s*$`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			switch m[2] {
			case "us":
				return v / 1000
			case "s":
				return v * 1000
			}
			return v
		}
	}
	return 0
}
