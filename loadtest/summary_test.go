package loadtest

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestSummaryGolden pins the end-of-test summary and the JSON summary of a
// deterministic run (fake clock, no network).
func TestSummaryGolden(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		items := NewCounter("items_created")
		queue := NewGauge("queue_depth")
		good := NewRate("slo_latency_good")
		think := NewTrend("think_time", Time)
		size := NewTrend("page_size")
		res, err := Run(t.Context(), Test{
			Metrics: []Metric{items, queue, good, think, size},
			Scenarios: []Scenario{
				{Name: "browse", Executor: ConstantArrivalRate{Rate: 5, Duration: 2 * time.Second, PreAllocatedVUs: 1, MaxVUs: 3},
					Exec: func(ctx context.Context, vu *VU) error {
						vu.Check("status is 200", true)
						vu.Add(good, float64(vu.Iteration%4/3^1))
						vu.Add(size, float64(10+vu.Iteration))
						return Sleep(ctx, 300*time.Millisecond)
					}},
				{Name: "write", Executor: PerVUIterations{VUs: 2, Iterations: 3}, StartTime: 500 * time.Millisecond,
					Exec: func(ctx context.Context, vu *VU) error {
						return vu.Group("create item", func() error {
							vu.Add(items, 1)
							vu.Add(queue, float64(vu.Iteration))
							vu.Check("created", vu.Iteration != 1)
							start := time.Now()
							err := Sleep(ctx, time.Duration(100*(vu.Iteration+1))*time.Millisecond)
							vu.Add(think, ms(time.Since(start)))
							return err
						})
					}},
			},
			Thresholds: map[string][]Threshold{
				"checks":                             {T("rate>0.9")},
				"slo_latency_good":                   {T("rate>=0.7")},
				"iteration_duration{scenario:write}": {T("p(95)<250"), T("max<1000")},
				"items_created":                      {T("count==6")},
			},
		}, RunOptions{})
		if ExitCode(err) != ExitThresholdsFailed {
			t.Fatalf("err = %v, want the checks and p(95) thresholds to fail", err)
		}
		var text, js bytes.Buffer
		if err := res.WriteSummary(&text); err != nil {
			t.Fatal(err)
		}
		if err := res.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		golden(t, "summary.golden", text.Bytes())
		golden(t, "summary.json.golden", js.Bytes())
	})
}

func TestFormatters(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{formatMs(0), "0s"}, {formatMs(0.01531), "15.31µs"}, {formatMs(148.2149), "148.21ms"},
		{formatMs(1200), "1.2s"}, {formatMs(62_500), "1m2.5s"}, {formatMs(0.0005), "500ns"},
		{formatBytes(45), "45 B"}, {formatBytes(4700), "4.7 kB"}, {formatBytes(519_000), "519 kB"}, {formatBytes(1.25e6), "1.2 MB"},
		{formatFloat(45), "45"}, {formatFloat(6.5612), "6.56"}, {formatFloat(0.5), "0.5"},
		{percent(0.999), "99.90%"}, {clock(62500 * time.Millisecond), "1m02.5s"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
