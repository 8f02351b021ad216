package telemetry

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeSources counts reads and serves CPU times that a test advances.
type fakeSources struct {
	reads     atomic.Int32
	busy, all atomic.Int64 // seconds
	loadErr   error
}

func (f *fakeSources) sources() systemSources {
	return systemSources{
		cpuTimes: func(context.Context) (float64, float64, error) {
			f.reads.Add(1)
			return float64(f.busy.Load()), float64(f.all.Load()), nil
		},
		memory: func(context.Context) (uint64, uint64, uint64, error) { return 600, 400, 1000, nil },
		load: func(context.Context) (float64, float64, float64, error) {
			if f.loadErr != nil {
				return 0, 0, 0, f.loadErr
			}
			return 1.5, 1, 0.5, nil
		},
		rss: func(context.Context) (uint64, error) { return 42, nil },
	}
}

func (f *fakeSources) spend(busy, idle int64) {
	f.busy.Add(busy)
	f.all.Add(busy + idle)
}

func TestSystemSamplerCPUAndCache(t *testing.T) {
	clock := newFakeClock()
	f := &fakeSources{}
	f.spend(100, 900)
	s := newSystemSampler(t.Context(), clock.Now, 5*time.Second, f.sources())
	if got := f.reads.Load(); got != 1 {
		t.Fatalf("New read CPU times %d times, want 1 (the baseline)", got)
	}

	f.spend(30, 70) // 30% busy since the baseline
	got := s.sample(t.Context())
	if !got.cpuOK || got.cpuRatio != 0.3 {
		t.Errorf("cpu ratio %v (ok %v), want 0.3", got.cpuRatio, got.cpuOK)
	}

	// Within the TTL every reader gets the cached sample.
	f.spend(100, 0)
	for range 10 {
		if again := s.sample(t.Context()); again.cpuRatio != 0.3 {
			t.Errorf("cached cpu ratio %v, want 0.3", again.cpuRatio)
		}
	}
	if got := f.reads.Load(); got != 2 {
		t.Errorf("CPU read %d times, want 2: the cache did not hold", got)
	}

	clock.Advance(5 * time.Second)
	if got := s.sample(t.Context()); got.cpuRatio != 1 {
		t.Errorf("cpu ratio after a fully busy interval %v, want 1", got.cpuRatio)
	}
	// No CPU time passed: keep the last value rather than divide by zero.
	clock.Advance(5 * time.Second)
	if got := s.sample(t.Context()); !got.cpuOK || got.cpuRatio != 1 {
		t.Errorf("cpu ratio with no elapsed CPU time %v (ok %v), want the last value 1", got.cpuRatio, got.cpuOK)
	}
}

func TestSystemCollector(t *testing.T) {
	f := &fakeSources{}
	s := newSystemSampler(t.Context(), newFakeClock().Now, time.Second, f.sources())
	f.spend(1, 3)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newSystemCollector(s))
	want := `
# HELP system_cpu_utilization_ratio Host CPU utilisation (0..1) between the previous and this sample (gopsutil).
# TYPE system_cpu_utilization_ratio gauge
system_cpu_utilization_ratio 0.25
# HELP system_load_average Host load average over the window (gopsutil).
# TYPE system_load_average gauge
system_load_average{window="15m"} 0.5
system_load_average{window="1m"} 1.5
system_load_average{window="5m"} 1
# HELP system_memory_available_bytes Host memory available for new work without swapping (gopsutil).
# TYPE system_memory_available_bytes gauge
system_memory_available_bytes 400
# HELP system_memory_total_bytes Host memory in total (gopsutil).
# TYPE system_memory_total_bytes gauge
system_memory_total_bytes 1000
# HELP system_memory_used_bytes Host memory in use (gopsutil).
# TYPE system_memory_used_bytes gauge
system_memory_used_bytes 600
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestSystemCollectorPartialFailure(t *testing.T) {
	f := &fakeSources{loadErr: errors.New("not on this OS")}
	s := newSystemSampler(t.Context(), newFakeClock().Now, -1, f.sources())
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newSystemCollector(s))
	if n := testutil.CollectAndCount(reg, "system_load_average"); n != 0 {
		t.Errorf("load average series %d, want 0 when the OS cannot report it", n)
	}
	if n := testutil.CollectAndCount(reg, "system_memory_used_bytes"); n != 1 {
		t.Errorf("memory series %d, want 1", n)
	}
	st := s.sample(t.Context())
	if st.err == nil || !strings.Contains(st.err.Error(), "load average: not on this OS") {
		t.Errorf("sample error %v, want the load failure", st.err)
	}
}

func TestSystemStats(t *testing.T) {
	e := newTestEnv(t, nil)
	f := &fakeSources{}
	e.tel.system = newSystemSampler(t.Context(), e.clock.Now, time.Second, f.sources())
	f.spend(1, 1)
	st, err := e.tel.SystemStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.CPUPercent != 50 || st.MemoryUsedBytes != 600 || st.MemoryAvailBytes != 400 || st.ProcessRSSBytes != 42 || st.Goroutines < 1 {
		t.Errorf("SystemStats = %+v", st)
	}
}

// TestSystemStatsReal reads this machine through gopsutil: the numbers
// must be plausible, whatever the host.
func TestSystemStatsReal(t *testing.T) {
	e := newTestEnv(t, nil, func(c *Config) { c.Now = time.Now })
	st, err := e.tel.SystemStats(t.Context())
	if err != nil {
		t.Logf("partial system stats: %v", err)
	}
	if st.MemoryAvailBytes == 0 || st.MemoryUsedBytes == 0 || st.ProcessRSSBytes == 0 {
		t.Errorf("implausible system stats %+v", st)
	}
	if st.CPUPercent < 0 || st.CPUPercent > 100 {
		t.Errorf("CPU percent %v out of range", st.CPUPercent)
	}
}
