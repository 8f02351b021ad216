// Command benchratio reads `go test -bench BenchmarkChain -benchmem` output
// on stdin and prints, per sub-benchmark, the median ns/op and allocs/op
// over the runs, then the throughput of the full middleware chain as a
// share of the bare handler's (bare ns/op / full ns/op), against the 95%
// target. It never fails on the ratio: timings on shared machines are
// evidence to read, not assertions.
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
	fmt.Fprintf(out, "\n%-10s %6s %12s %10s %10s\n", "variant", "runs", "ns/op", "B/op", "allocs/op")
	for _, name := range order {
		s := res[name]
		fmt.Fprintf(out, "%-11s %6d %12.0f %10.0f %10.0f\n", name, len(s.ns), median(s.ns), median(s.bytes), median(s.allocs))
	}
	fmt.Fprintln(out)
	for _, p := range [][2]string{{"full", "bare"}, {"full-nolog", "bare"}, {"full", "auth"}, {"full-http", "bare-http"}} {
		chain, base := res[p[0]], res[p[1]]
		if chain == nil || base == nil || median(chain.ns) == 0 {
			continue
		}
		ratio := median(base.ns) / median(chain.ns)
		verdict := "below"
		if ratio >= 0.95 {
			verdict = "meets"
		}
		fmt.Fprintf(out, "throughput %-10s / %-9s = %5.1f%%  (%s the 95%% target; +%.0f ns, +%.0f allocs per request)\n",
			p[0], p[1], 100*ratio, verdict, median(chain.ns)-median(base.ns), median(chain.allocs)-median(base.allocs))
	}
	return nil
}
