package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	in := `goos: linux
BenchmarkChain/bare-2      	    5000	     10000 ns/op	    1704 B/op	      45 allocs/op
BenchmarkChain/full-2      	    5000	     20000 ns/op	    6606 B/op	      89 allocs/op
BenchmarkChain/bare-2      	    5000	     12000 ns/op	    1704 B/op	      45 allocs/op
BenchmarkChain/full-2      	    5000	     10000 ns/op	    6606 B/op	      89 allocs/op
BenchmarkChain/bare-2      	    5000	     11000 ns/op	    1704 B/op	      45 allocs/op
BenchmarkChain/full-2      	    5000	     11500 ns/op	    6606 B/op	      89 allocs/op
BenchmarkChain/full-nolog-2 	    5000	     11000 ns/op	    6000 B/op	      85 allocs/op
PASS
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	// medians: bare 11000, full 11500 -> 95.7%
	for _, want := range []string{"bare                  3        10000        11000", "full                  3        10000        11500", "full              / bare              =  95.7% of medians, 100.0% of minimums  (meets", "+500 ns, +44 allocs",
		"full-nolog        / bare              = 100.0%", "access log                                       -1000 ns    +4 allocs"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(strings.NewReader("PASS\n"), &out); err == nil {
		t.Error("no results: want an error")
	}
}
