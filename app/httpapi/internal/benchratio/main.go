// Command benchratio reads `go test -bench BenchmarkChain -benchmem` output
// on stdin and prints, per sub-benchmark, the minimum and median ns/op and
// the median allocs/op over the runs; then the throughput of the full
// middleware chain as a share of the bare handler's (median bare ns/op /
// median full ns/op, and the same of the minimums, which load from other
// processes disturbs least) against the 95% target, and what each optional part
// of telemetry costs. It never fails on the ratio: timings on shared
// machines are evidence to read, not assertions.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
}

type sample struct{ ns, allocs, bytes []float64 }

func parse(r io.Reader) (map[string]*sample, []string, error) {
	out := map[string]*sample{}
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkChain/") {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkChain/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // GOMAXPROCS suffix
			}
		}
		s := out[name]
		if s == nil {
			s = &sample{}
			out[name] = s
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				s.ns = append(s.ns, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			case "B/op":
				s.bytes = append(s.bytes, v)
			}
		}
	}
	return out, order, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func run(in io.Reader, out io.Writer) error {
	res, order, err := parse(in)
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return fmt.Errorf("no BenchmarkChain results on stdin")
	}
	fmt.Fprintf(out, "\n%-17s %5s %12s %12s %10s %10s\n", "variant", "runs", "ns/op (min)", "ns/op (med)", "B/op", "allocs/op")
	for _, name := range order {
		s := res[name]
		fmt.Fprintf(out, "%-17s %5d %12.0f %12.0f %10.0f %10.0f\n", name, len(s.ns), slices.Min(s.ns), median(s.ns), median(s.bytes), median(s.allocs))
	}
	fmt.Fprintln(out)
	for _, p := range [][2]string{
		{"full", "bare"}, {"full-nolog", "bare"}, {"full-unsampled", "bare"}, {"full-notrace", "bare"},
		{"full", "auth"}, {"full-par", "bare-par"}, {"full-http", "bare-http"}, {"bare-http-headers", "bare-http"},
		{"full-http", "bare-http-headers"},
	} {
		chain, base := res[p[0]], res[p[1]]
		if chain == nil || base == nil || median(chain.ns) == 0 {
			continue
		}
		ratio := median(base.ns) / median(chain.ns)
		verdict := "below"
		if ratio >= 0.95 {
			verdict = "meets"
		}
		fmt.Fprintf(out, "throughput %-17s / %-17s = %5.1f%% of medians, %5.1f%% of minimums  (%s the 95%% target; +%.0f ns, +%.0f allocs per request)\n",
			p[0], p[1], 100*ratio, 100*slices.Min(base.ns)/slices.Min(chain.ns), verdict,
			median(chain.ns)-median(base.ns), median(chain.allocs)-median(base.allocs))
	}
	// Where the full chain's overhead goes, from the variants that leave
	// a part out (differences of minimums: rough on a noisy machine).
	first := true
	for _, p := range []struct{ part, without string }{
		{"access log", "full-nolog"},
		{"span recording (attributes, SDK span)", "full-unsampled"},
		{"tracing altogether (span, IDs, traceresponse)", "full-notrace"},
	} {
		full, without := res["full"], res[p.without]
		if full == nil || without == nil {
			continue
		}
		if first {
			fmt.Fprintln(out, "\nfull-chain cost of (minimum of full minus minimum of the variant without it;")
			fmt.Fprintln(out, "rough: load that changes between variants shows up here, and a negative cost is noise):")
			first = false
		}
		fmt.Fprintf(out, "  %-47s %+6.0f ns  %+4.0f allocs\n", p.part,
			slices.Min(full.ns)-slices.Min(without.ns), median(full.allocs)-median(without.allocs))
	}
	return nil
}
