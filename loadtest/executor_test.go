package loadtest

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder collects what iterations saw, safely across VUs.
type recorder struct {
	mu    sync.Mutex
	start []time.Duration // actual start, from t0
	due   []time.Duration // intended start, from t0
	vu    []int
	t0    time.Time
}

func newRecorder() *recorder { return &recorder{t0: time.Now()} }

func (r *recorder) add(vu *VU) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start = append(r.start, time.Since(r.t0))
	r.due = append(r.due, vu.ScheduledAt().Sub(r.t0))
	r.vu = append(r.vu, vu.IDInScenario)
}

func run(t *testing.T, test Test) (*Result, error) {
	t.Helper()
	return Run(t.Context(), test, RunOptions{})
}

func TestConstantArrivalRateStartsOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		res, err := run(t, Test{Scenarios: []Scenario{{
			Name:     "car",
			Executor: ConstantArrivalRate{Rate: 10, Duration: 2 * time.Second, PreAllocatedVUs: 2, MaxVUs: 5},
			Exec: func(ctx context.Context, vu *VU) error {
				rec.add(vu)
				return Sleep(ctx, 150*time.Millisecond)
			},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.start) != 20 {
			t.Fatalf("%d iterations started, want 20", len(rec.start))
		}
		for i, got := range rec.start {
			want := time.Duration(i) * 100 * time.Millisecond
			if got != want || rec.due[i] != want {
				t.Errorf("iteration %d started at %v (due %v), want %v", i, got, rec.due[i], want)
			}
		}
		sc := res.Scenarios[0]
		// 150 ms iterations every 100 ms need 2 VUs at a time.
		if sc.Scheduled != 20 || sc.Started != 20 || sc.Completed != 20 || sc.Dropped != 0 || sc.PeakBusy != 2 || sc.VUs != 2 {
			t.Errorf("accounting = %+v, want 20 scheduled/started/completed, 0 dropped, peak 2 busy, 2 VUs", sc)
		}
		if lag, _ := res.Value("schedule_lag", "max"); lag != 0 {
			t.Errorf("schedule lag max = %v ms under a fake clock, want 0", lag)
		}
	})
}

// cumulative is the number of iterations due by t of a piecewise-linear
// rate (per second) starting at r0.
func cumulative(r0 float64, stages []Stage, t time.Duration) float64 {
	var sum float64
	from := r0
	for _, s := range stages {
		d := s.Duration.Seconds()
		to := float64(s.Target)
		x := math.Min(t.Seconds(), d)
		if x <= 0 {
			break
		}
		sum += from*x + (to-from)/(2*d)*x*x
		t -= s.Duration
		from = to
	}
	return sum
}

func TestRampingArrivalRateFollowsTheIntegral(t *testing.T) {
	stages := []Stage{{time.Second, 10}, {time.Second, 10}, {time.Second, 0}}
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		res, err := run(t, Test{Scenarios: []Scenario{{
			Name:     "rar",
			Executor: RampingArrivalRate{StartRate: 0, Stages: stages, PreAllocatedVUs: 1, MaxVUs: 3},
			Exec:     func(ctx context.Context, vu *VU) error { rec.add(vu); return nil },
		}}})
		if err != nil {
			t.Fatal(err)
		}
		// 5 + 10 + 5 iterations: iteration i starts when the integral of the
		// rate reaches i.
		if len(rec.start) != 20 || res.Scenarios[0].Scheduled != 20 {
			t.Fatalf("%d iterations (%d scheduled), want 20", len(rec.start), res.Scenarios[0].Scheduled)
		}
		for i, got := range rec.start {
			// Find the due time by bisection on the integral (independent
			// of the engine's closed form).
			lo, hi := time.Duration(0), 3*time.Second
			for hi-lo > time.Nanosecond {
				mid := (lo + hi) / 2
				if cumulative(0, stages, mid) >= float64(i) {
					hi = mid
				} else {
					lo = mid
				}
			}
			if d := got - hi; d < -2*time.Microsecond || d > 2*time.Microsecond {
				t.Errorf("iteration %d started at %v, want %v", i, got, hi)
			}
		}
	})
}

func TestArrivalsCount(t *testing.T) {
	tests := []struct {
		rate  int
		unit  time.Duration
		dur   time.Duration
		count int64
	}{
		{10, time.Second, time.Second, 10},
		{1, time.Second, 1500 * time.Millisecond, 2},
		{3, time.Minute, time.Minute, 3},
		{1000, time.Second, 20 * time.Second, 20000},
		{7, 100 * time.Millisecond, time.Second, 70},
	}
	for _, tt := range tests {
		a := newArrivals(tt.rate, tt.unit, []Stage{{tt.dur, tt.rate}})
		var n int64
		for {
			if _, ok := a.at(n); !ok {
				break
			}
			n++
		}
		if n != tt.count {
			t.Errorf("rate %d/%v for %v: %d iterations, want %d", tt.rate, tt.unit, tt.dur, n, tt.count)
		}
	}
}

func TestRampingVUsSteps(t *testing.T) {
	tests := []struct {
		e    RampingVUs
		want []vuStep
	}{
		{RampingVUs{StartVUs: 0, Stages: []Stage{{4 * time.Second, 4}}},
			[]vuStep{{0, 0}, {time.Second, 1}, {2 * time.Second, 2}, {3 * time.Second, 3}, {4 * time.Second, 4}}},
		{RampingVUs{StartVUs: 2, Stages: []Stage{{time.Second, 2}, {2 * time.Second, 0}}},
			[]vuStep{{0, 2}, {2 * time.Second, 1}, {3 * time.Second, 0}}},
		{RampingVUs{StartVUs: 1, Stages: []Stage{{0, 5}, {time.Second, 5}}},
			[]vuStep{{0, 1}, {0, 5}}},
	}
	for _, tt := range tests {
		if got := tt.e.vuSteps(); !slices.Equal(got, tt.want) {
			t.Errorf("%+v: steps %v, want %v", tt.e, got, tt.want)
		}
	}
}

func TestRampingVUsActivatesAndRetiresVUs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		res, err := run(t, Test{Scenarios: []Scenario{{
			Name: "ramp",
			Executor: RampingVUs{StartVUs: 0, GracefulRampDown: NoGrace,
				Stages: []Stage{{3 * time.Second, 3}, {time.Second, 3}, {3 * time.Second, 0}, {time.Second, 0}}},
			Exec: func(ctx context.Context, vu *VU) error {
				rec.add(vu)
				// 270 ms never lands on a step, so no tie with the ramp.
				return Sleep(ctx, 270*time.Millisecond)
			},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		first := map[int]time.Duration{}
		last := map[int]time.Duration{}
		for i, vu := range rec.vu {
			if _, ok := first[vu]; !ok {
				first[vu] = rec.start[i]
			}
			last[vu] = rec.start[i]
		}
		for vu := 1; vu <= 3; vu++ {
			if want := time.Duration(vu) * time.Second; first[vu] != want {
				t.Errorf("VU %d first started at %v, want %v", vu, first[vu], want)
			}
			// VU 3 is retired first, at 5s; VU 1 last, at 7s.
			retired := time.Duration(8-vu) * time.Second
			if last[vu] >= retired {
				t.Errorf("VU %d started an iteration at %v, after its retirement at %v", vu, last[vu], retired)
			}
		}
		sc := res.Scenarios[0]
		// Each retirement interrupts the VU's running iteration (NoGrace).
		if sc.VUs != 3 || sc.PeakBusy != 3 || sc.Interrupted != 3 {
			t.Errorf("accounting = %+v, want 3 VUs, peak 3, 3 interrupted", sc)
		}
		if got, want := sc.Completed+sc.Interrupted, int64(len(rec.start)); got != want {
			t.Errorf("completed+interrupted %d, started %d", got, want)
		}
	})
}

func TestClosedExecutorsIterationAccounting(t *testing.T) {
	tests := []struct {
		name      string
		e         Executor
		perVU     map[int]int // expected iterations per VU (nil: don't check)
		total     int64
		iterSleep time.Duration
	}{
		{"shared-iterations", SharedIterations{VUs: 3, Iterations: 10}, nil, 10, 100 * time.Millisecond},
		{"per-vu-iterations", PerVUIterations{VUs: 3, Iterations: 4}, map[int]int{1: 4, 2: 4, 3: 4}, 12, 100 * time.Millisecond},
		{"constant-vus", ConstantVUs{VUs: 2, Duration: time.Second}, map[int]int{1: 12, 2: 12}, 24, 90 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := newRecorder()
				res, err := run(t, Test{Scenarios: []Scenario{{
					Name: "s", Executor: tt.e,
					Exec: func(ctx context.Context, vu *VU) error { rec.add(vu); return Sleep(ctx, tt.iterSleep) },
				}}})
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(rec.start)) != tt.total || res.Scenarios[0].Completed != tt.total {
					t.Errorf("%d iterations started, %d completed, want %d", len(rec.start), res.Scenarios[0].Completed, tt.total)
				}
				if got, _ := res.Value("iterations", "count"); got != float64(tt.total) {
					t.Errorf("iterations metric = %v, want %d", got, tt.total)
				}
				if tt.perVU != nil {
					got := map[int]int{}
					for _, vu := range rec.vu {
						got[vu]++
					}
					if !mapsEqual(got, tt.perVU) {
						t.Errorf("iterations per VU = %v, want %v", got, tt.perVU)
					}
				}
				if vus, _ := res.Value("vus_max", "value"); vus != float64(tt.e.maxVUs()) {
					t.Errorf("vus_max = %v, want %d", vus, tt.e.maxVUs())
				}
			})
		})
	}
}

func mapsEqual(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSharedIterationsMaxDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res, err := run(t, Test{Scenarios: []Scenario{{
			Name: "s", Executor: SharedIterations{VUs: 1, Iterations: 100, MaxDuration: time.Second},
			Exec: func(ctx context.Context, vu *VU) error { return Sleep(ctx, 300*time.Millisecond) },
		}}})
		if err != nil {
			t.Fatal(err)
		}
		// Starts at 0, 300, 600, 900 ms; the last finishes in the grace period.
		if sc := res.Scenarios[0]; sc.Completed != 4 || sc.Interrupted != 0 {
			t.Errorf("completed %d, interrupted %d; want 4 and 0", sc.Completed, sc.Interrupted)
		}
	})
}

func TestGracefulStop(t *testing.T) {
	tests := []struct {
		grace                  time.Duration
		completed, interrupted int64
		took                   time.Duration
	}{
		{200 * time.Millisecond, 0, 1, 1200 * time.Millisecond},
		{time.Second, 1, 0, 1500 * time.Millisecond},
		{NoGrace, 0, 1, time.Second},
	}
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			res, err := run(t, Test{Scenarios: []Scenario{{
				Name: "s", Executor: ConstantVUs{VUs: 1, Duration: time.Second}, GracefulStop: tt.grace,
				Exec: func(ctx context.Context, vu *VU) error { return Sleep(ctx, 1500*time.Millisecond) },
			}}})
			if err != nil {
				t.Fatal(err)
			}
			sc := res.Scenarios[0]
			if sc.Completed != tt.completed || sc.Interrupted != tt.interrupted {
				t.Errorf("grace %v: completed %d interrupted %d, want %d and %d", tt.grace, sc.Completed, sc.Interrupted, tt.completed, tt.interrupted)
			}
			if took := time.Since(start); took != tt.took {
				t.Errorf("grace %v: run took %v, want %v", tt.grace, took, tt.took)
			}
		})
	}
}

func TestDroppedIterations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res, err := run(t, Test{Scenarios: []Scenario{{
			Name:     "open",
			Executor: ConstantArrivalRate{Rate: 10, Duration: time.Second, PreAllocatedVUs: 1, MaxVUs: 2},
			Exec:     func(ctx context.Context, vu *VU) error { return Sleep(ctx, time.Second) },
		}}})
		if err != nil {
			t.Fatal(err)
		}
		sc := res.Scenarios[0]
		// t=0 runs on the pre-allocated VU, t=100ms allocates the second,
		// the 8 others find both busy at maxVUs and are dropped.
		if sc.Scheduled != 10 || sc.Started != 2 || sc.Dropped != 8 || sc.VUs != 2 || sc.Completed != 2 {
			t.Errorf("accounting = %+v, want 10 scheduled, 2 started, 8 dropped, 2 VUs, 2 completed", sc)
		}
		if got, _ := res.Value("dropped_iterations{scenario:open}", "count"); got != 8 {
			t.Errorf("dropped_iterations = %v, want 8", got)
		}
	})
}

func TestScenariosRunConcurrentlyFromTheirStartTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newRecorder(), newRecorder()
		_, err := run(t, Test{Scenarios: []Scenario{
			{Name: "a", Executor: PerVUIterations{VUs: 1, Iterations: 1}, Exec: func(ctx context.Context, vu *VU) error { a.add(vu); return nil }},
			{Name: "b", Executor: PerVUIterations{VUs: 1, Iterations: 1}, StartTime: 2 * time.Second, Exec: func(ctx context.Context, vu *VU) error { b.add(vu); return nil }},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if a.start[0] != 0 || b.start[0] != 2*time.Second {
			t.Errorf("a started at %v, b at %v; want 0 and 2s", a.start[0], b.start[0])
		}
	})
}

func TestThresholdAbortOnFail(t *testing.T) {
	tests := []struct {
		delay time.Duration
		took  time.Duration
	}{
		{0, 2 * time.Second},               // the first evaluation, at 2s
		{5 * time.Second, 6 * time.Second}, // the first evaluation after 5s
	}
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			res, err := run(t, Test{
				Scenarios: []Scenario{{Name: "s", Executor: ConstantVUs{VUs: 1, Duration: time.Minute},
					Exec: func(ctx context.Context, vu *VU) error { return Sleep(ctx, 100*time.Millisecond) }}},
				Thresholds: map[string][]Threshold{"iterations": {{Expr: "count<5", AbortOnFail: true, DelayAbortEval: tt.delay}}},
			})
			if !errors.Is(err, ErrThresholdsFailed) || ExitCode(err) != ExitThresholdsFailed {
				t.Fatalf("err = %v (exit %d), want thresholds failed (99)", err, ExitCode(err))
			}
			if took := time.Since(start); took != tt.took {
				t.Errorf("delay %v: aborted after %v, want %v", tt.delay, took, tt.took)
			}
			if res.ThresholdsPassed() {
				t.Error("result says thresholds passed")
			}
		})
	}
}

func TestThresholdsEvaluatedAtTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCounter("things")
		res, err := run(t, Test{
			Metrics: []Metric{c, NewTrend("size"), NewRate("good"), NewGauge("level")},
			Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{VUs: 2, Iterations: 5},
				Exec: func(ctx context.Context, vu *VU) error {
					vu.Add(c, 2)
					vu.Add(NewTrend("size"), float64(vu.Iteration+1))
					vu.Add(NewRate("good"), float64(vu.Iteration%2))
					vu.Add(NewGauge("level"), 7)
					return Sleep(ctx, time.Second)
				}}},
			Thresholds: map[string][]Threshold{
				"things":                  {T("count==20"), T("rate==4")}, // 20 over 5 s
				"size":                    {T("max==5"), T("min==1"), T("avg==3"), T("med>2.99"), T("med<3.01"), T("p(100)==5")},
				"good":                    {T("rate==0.4")},
				"level":                   {T("value==7")},
				"things{scenario:s}":      {T("count>19")},
				"things{scenario:absent}": {T("count==0")},
				"iteration_duration":      {T("p(95)<1000")}, // fails: iterations take 1 s
			},
		})
		if ExitCode(err) != ExitThresholdsFailed {
			t.Fatalf("err = %v, want only iteration_duration to fail", err)
		}
		if got := res.FailedThresholds(); !slices.Equal(got, []string{"iteration_duration: p(95)<1000"}) {
			t.Errorf("failed thresholds = %v, want only iteration_duration", got)
		}
	})
}

func TestAbortAndExternalAbortExitCodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, err := run(t, Test{Scenarios: []Scenario{{Name: "s", Executor: ConstantVUs{VUs: 2, Duration: time.Minute},
			Exec: func(ctx context.Context, vu *VU) error {
				if vu.Iteration == 3 {
					return Abort("enough")
				}
				return Sleep(ctx, 100*time.Millisecond)
			}}}})
		if ExitCode(err) != ExitScriptAborted || !strings.Contains(err.Error(), "enough") {
			t.Errorf("err = %v (exit %d), want abort (108) with the reason", err, ExitCode(err))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		start := time.Now()
		teardown := false
		res, err := Run(ctx, Test{
			Scenarios: []Scenario{
				{Name: "s", Executor: ConstantVUs{VUs: 1, Duration: time.Minute},
					Exec: func(ctx context.Context, vu *VU) error { return Sleep(ctx, 130*time.Millisecond) }},
				{Name: "late", Executor: ConstantVUs{VUs: 1, Duration: time.Minute}, StartTime: 10 * time.Second,
					Exec: func(ctx context.Context, vu *VU) error { return nil }},
			},
			Teardown: func(ctx context.Context, vu *VU, data any) error { teardown = true; return nil },
		}, RunOptions{})
		if ExitCode(err) != ExitExternalAbort {
			t.Errorf("err = %v (exit %d), want external abort (105)", err, ExitCode(err))
		}
		// Graceful: the iteration started at 1.43 s finishes at 1.56 s.
		if took := time.Since(start); took != 1560*time.Millisecond {
			t.Errorf("stopped after %v, want 1.56s (the running iteration finishes)", took)
		}
		if !teardown || res == nil {
			t.Fatalf("teardown ran = %v, result = %v; want teardown and a result after an external abort", teardown, res)
		}
		if s := res.Scenarios[0]; s.Completed != 12 || s.Interrupted != 0 {
			t.Errorf("interrupted scenario: %d completed, %d interrupted; want 12 and 0", s.Completed, s.Interrupted)
		}
		if s := res.Scenarios[1]; s.Started != 0 {
			t.Errorf("a scenario due after the interrupt started %d iterations", s.Started)
		}
	})
}

func TestSetupDataAndErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []any
		var mu sync.Mutex
		_, err := run(t, Test{
			Setup: func(ctx context.Context, vu *VU) (any, error) { return "token", nil },
			Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{VUs: 2},
				Exec: func(ctx context.Context, vu *VU) error {
					mu.Lock()
					got = append(got, vu.Data())
					mu.Unlock()
					return nil
				}}},
			Teardown: func(ctx context.Context, vu *VU, data any) error {
				if data != "token" {
					return errors.New("teardown got " + data.(string))
				}
				return nil
			},
		})
		if err != nil || !slices.Equal(got, []any{"token", "token"}) {
			t.Errorf("err %v, VUs saw %v; want token twice", err, got)
		}
		_, err = run(t, Test{
			Setup:     func(ctx context.Context, vu *VU) (any, error) { return nil, errors.New("no users") },
			Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{}, Exec: func(ctx context.Context, vu *VU) error { return nil }}},
		})
		if ExitCode(err) != ExitScriptException || !strings.Contains(err.Error(), "no users") {
			t.Errorf("setup error: err = %v (exit %d), want 107 with the reason", err, ExitCode(err))
		}
		_, err = run(t, Test{
			Setup:     func(ctx context.Context, vu *VU) (any, error) { <-ctx.Done(); return nil, ctx.Err() },
			Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{}, Exec: func(ctx context.Context, vu *VU) error { return nil }}},
			Options:   Options{SetupTimeout: time.Second},
		})
		if ExitCode(err) != ExitSetupTimeout {
			t.Errorf("setup timeout: err = %v (exit %d), want 100", err, ExitCode(err))
		}
	})
}

func TestIterationErrorsAndPanicsAreContained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log strings.Builder
		var mu sync.Mutex
		res, err := Run(t.Context(), Test{Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{VUs: 1, Iterations: 3},
			Exec: func(ctx context.Context, vu *VU) error {
				switch vu.Iteration {
				case 0:
					return errors.New("boom")
				case 1:
					panic("kaboom")
				}
				return nil
			}}}}, RunOptions{Log: lockedWriter{&mu, &log}})
		if err != nil {
			t.Fatal(err)
		}
		sc := res.Scenarios[0]
		if sc.Completed != 1 || sc.Interrupted != 2 || sc.Errors != 2 {
			t.Errorf("accounting = %+v, want 1 completed, 2 interrupted by errors", sc)
		}
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(log.String(), "boom") || !strings.Contains(log.String(), "kaboom") {
			t.Errorf("log = %q, want both errors", log.String())
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestConfigErrors(t *testing.T) {
	noop := func(ctx context.Context, vu *VU) error { return nil }
	tests := []struct {
		name string
		test Test
		want []string
	}{
		{"no scenarios", Test{}, []string{"at least one scenario"}},
		{"executor problems", Test{Scenarios: []Scenario{
			{Name: "a", Executor: ConstantArrivalRate{Rate: 0, PreAllocatedVUs: 5, MaxVUs: 2}, Exec: noop},
			{Name: "a", Executor: ConstantVUs{VUs: 1}, Exec: noop},
			{Name: "", Executor: RampingVUs{}, Exec: noop},
			{Name: "c", Executor: SharedIterations{VUs: 5, Iterations: 2}},
			{Name: "d", Executor: RampingArrivalRate{PreAllocatedVUs: 1, Stages: []Stage{{-time.Second, -1}}}, Exec: noop},
		}}, []string{
			"rate is required", "maxVUs (2) must not be below preAllocatedVUs (5)", "duration is required",
			`duplicate name "a"`, "constant-vus): duration is required", "scenarios[2]: name is required",
			"at least one stage", "vus (5) must not exceed iterations (2)", "exec function is required",
			"stages[0].duration must not be negative", "stages[0].target (rate) must not be negative",
		}},
		{"threshold problems", Test{
			Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{}, Exec: noop}},
			Thresholds: map[string][]Threshold{
				"http_req_duration": {T("p(95<300"), T("rate<0.1")},
				"nope":              {T("count<1")},
				"checks{}":          {T("rate>0.9")},
				"vus":               {T("avg<1")},
			},
		}, []string{
			`threshold "p(95<300"`, "aggregation rate does not apply to trend metrics", `metric "nope" is not defined`,
			"empty tag selector", "aggregation avg does not apply to gauge metrics (use value)",
		}},
		{"bad custom metric and options", Test{
			Scenarios: []Scenario{{Name: "s", Executor: PerVUIterations{}, Exec: noop}},
			Metrics:   []Metric{NewCounter("bad-name"), NewTrend("http_reqs")},
			Options:   Options{SummaryTrendStats: []string{"p(95)", "mode"}},
		}, []string{`metric "bad-name": invalid name`, `"http_reqs" already registered as a counter`, `summary trend stat "mode"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.test, RunOptions{})
			var ce *ConfigError
			if !errors.As(err, &ce) || ExitCode(err) != ExitInvalidConfig {
				t.Fatalf("err = %v, want a *ConfigError (exit 104)", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestProgressLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf strings.Builder
		var mu sync.Mutex
		_, err := Run(t.Context(), Test{Scenarios: []Scenario{{Name: "s", Executor: ConstantVUs{VUs: 2, Duration: 3 * time.Second},
			Exec: func(ctx context.Context, vu *VU) error { return Sleep(ctx, 350*time.Millisecond) }}}},
			RunOptions{Progress: lockedWriter{&mu, &buf}})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		out := buf.String()
		for _, want := range []string{"\rrunning (0m01.0s), 2/2 VUs, 4 complete and 0 interrupted iterations [ 33%]\x1b[K",
			"\rrunning (0m03.0s), 2/2 VUs, 16 complete and 0 interrupted iterations [100%]\x1b[K",
			"\rrunning (0m03.1s), 0/2 VUs, 18 complete and 0 interrupted iterations [100%]\x1b[K\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("progress %q lacks %q", out, want)
			}
		}
	})
}
