package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
)

// SystemStats is a reading of the host and the process (an API may show it
// on a health report).
type SystemStats struct {
	CPUPercent       float64 `json:"cpu_percent"`
	MemoryUsedBytes  uint64  `json:"memory_used_bytes"`
	MemoryAvailBytes uint64  `json:"memory_available_bytes"`
	ProcessRSSBytes  uint64  `json:"process_rss_bytes"`
	Goroutines       int     `json:"goroutines"`
}

// SystemStats reads the same cached gopsutil sample as the system_* gauges.
// CPUPercent (0..100) is the host's utilisation between the previous sample
// and this one. Parts the OS cannot report are zero; the error joins what
// failed, so a caller can still show the rest.
func (t *Telemetry) SystemStats(ctx context.Context) (SystemStats, error) {
	s := t.system.sample(ctx)
	return SystemStats{
		CPUPercent:       s.cpuRatio * 100,
		MemoryUsedBytes:  s.memUsed,
		MemoryAvailBytes: s.memAvail,
		ProcessRSSBytes:  s.rss,
		Goroutines:       runtime.NumGoroutine(),
	}, s.err
}

// sample is one reading of the host and process.
type sample struct {
	cpuRatio             float64
	cpuOK                bool
	memUsed, memAvail    uint64
	memTotal             uint64
	memOK                bool
	load1, load5, load15 float64
	loadOK               bool
	rss                  uint64
	err                  error
}

// systemSources are the gopsutil readers behind the sampler; tests swap
// them for fakes.
type systemSources struct {
	cpuTimes func(context.Context) (busy, all float64, err error)
	memory   func(context.Context) (used, avail, total uint64, err error)
	load     func(context.Context) (l1, l5, l15 float64, err error)
	rss      func(context.Context) (uint64, error)
}

func gopsutilSources(ctx context.Context) systemSources {
	src := systemSources{
		cpuTimes: cpuTimes,
		memory: func(ctx context.Context) (uint64, uint64, uint64, error) {
			vm, err := mem.VirtualMemoryWithContext(ctx)
			if err != nil {
				return 0, 0, 0, err
			}
			return vm.Used, vm.Available, vm.Total, nil
		},
		load: func(ctx context.Context) (float64, float64, float64, error) {
			la, err := load.AvgWithContext(ctx)
			if err != nil {
				return 0, 0, 0, err
			}
			return la.Load1, la.Load5, la.Load15, nil
		},
	}
	// Without a process handle, process RSS is reported as 0.
	if p, err := process.NewProcessWithContext(ctx, int32(os.Getpid())); err == nil {
		src.rss = func(ctx context.Context) (uint64, error) {
			mi, err := p.MemoryInfoWithContext(ctx)
			if err != nil {
				return 0, err
			}
			return mi.RSS, nil
		}
	}
	return src
}

// systemSampler reads the host and process at most once per ttl, however
// many scrapes or health checks ask, and never on the request path of the
// API. CPU utilisation is the busy share of CPU time between two
// consecutive readings (the first one taken when the sampler is built), so
// at a 15 s scrape interval the gauge is the average over the last 15 s.
type systemSampler struct {
	now func() time.Time
	ttl time.Duration
	src systemSources

	mu       sync.Mutex
	last     sample
	lastAt   time.Time
	have     bool
	prevBusy float64
	prevAll  float64
	prevOK   bool
}

func newSystemSampler(ctx context.Context, now func() time.Time, ttl time.Duration, src systemSources) *systemSampler {
	if ttl == 0 {
		ttl = time.Second
	}
	s := &systemSampler{now: now, ttl: ttl, src: src}
	if busy, all, err := src.cpuTimes(ctx); err == nil {
		s.prevBusy, s.prevAll, s.prevOK = busy, all, true
	}
	return s
}

// cpuTimes returns busy and total CPU seconds since boot, summed over CPUs.
// Idle and iowait count as not busy; guest time is already part of user.
func cpuTimes(ctx context.Context) (busy, all float64, err error) {
	ts, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return 0, 0, err
	}
	if len(ts) == 0 {
		return 0, 0, errors.New("no cpu times")
	}
	t := ts[0]
	all = t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	return all - t.Idle - t.Iowait, all, nil
}

func (s *systemSampler) sample(ctx context.Context) sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.have && s.ttl > 0 && now.Sub(s.lastAt) < s.ttl {
		return s.last
	}
	var out sample
	var errs []error
	if busy, all, err := s.src.cpuTimes(ctx); err != nil {
		errs = append(errs, fmt.Errorf("cpu: %w", err))
	} else {
		switch {
		case s.prevOK && all > s.prevAll:
			out.cpuRatio = min(max((busy-s.prevBusy)/(all-s.prevAll), 0), 1)
			out.cpuOK = true
		case s.have && s.last.cpuOK:
			out.cpuRatio, out.cpuOK = s.last.cpuRatio, true // no CPU time passed: keep the last value
		}
		if all > s.prevAll || !s.prevOK {
			s.prevBusy, s.prevAll, s.prevOK = busy, all, true
		}
	}
	if used, avail, total, err := s.src.memory(ctx); err != nil {
		errs = append(errs, fmt.Errorf("memory: %w", err))
	} else {
		out.memUsed, out.memAvail, out.memTotal, out.memOK = used, avail, total, true
	}
	if l1, l5, l15, err := s.src.load(ctx); err != nil {
		errs = append(errs, fmt.Errorf("load average: %w", err))
	} else {
		out.load1, out.load5, out.load15, out.loadOK = l1, l5, l15, true
	}
	if s.src.rss != nil {
		if rss, err := s.src.rss(ctx); err != nil {
			errs = append(errs, fmt.Errorf("process memory: %w", err))
		} else {
			out.rss = rss
		}
	}
	if len(errs) > 0 {
		out.err = fmt.Errorf("system stats: %w", errors.Join(errs...))
	}
	s.last, s.lastAt, s.have = out, now, true
	return out
}

var (
	cpuDesc = prometheus.NewDesc("system_cpu_utilization_ratio",
		"Host CPU utilisation (0..1) between the previous and this sample (gopsutil).", nil, nil)
	memUsedDesc = prometheus.NewDesc("system_memory_used_bytes",
		"Host memory in use (gopsutil).", nil, nil)
	memAvailDesc = prometheus.NewDesc("system_memory_available_bytes",
		"Host memory available for new work without swapping (gopsutil).", nil, nil)
	memTotalDesc = prometheus.NewDesc("system_memory_total_bytes",
		"Host memory in total (gopsutil).", nil, nil)
	loadDesc = prometheus.NewDesc("system_load_average",
		"Host load average over the window (gopsutil).", []string{"window"}, nil)
)

// systemCollector exports the sampler's reading at scrape time. A part the
// OS cannot report is left out rather than failing the scrape.
type systemCollector struct{ s *systemSampler }

func newSystemCollector(s *systemSampler) prometheus.Collector { return systemCollector{s} }

func (c systemCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cpuDesc
	ch <- memUsedDesc
	ch <- memAvailDesc
	ch <- memTotalDesc
	ch <- loadDesc
}

func (c systemCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s := c.s.sample(ctx)
	if s.cpuOK {
		ch <- prometheus.MustNewConstMetric(cpuDesc, prometheus.GaugeValue, s.cpuRatio)
	}
	if s.memOK {
		ch <- prometheus.MustNewConstMetric(memUsedDesc, prometheus.GaugeValue, float64(s.memUsed))
		ch <- prometheus.MustNewConstMetric(memAvailDesc, prometheus.GaugeValue, float64(s.memAvail))
		ch <- prometheus.MustNewConstMetric(memTotalDesc, prometheus.GaugeValue, float64(s.memTotal))
	}
	if s.loadOK {
		ch <- prometheus.MustNewConstMetric(loadDesc, prometheus.GaugeValue, s.load1, "1m")
		ch <- prometheus.MustNewConstMetric(loadDesc, prometheus.GaugeValue, s.load5, "5m")
		ch <- prometheus.MustNewConstMetric(loadDesc, prometheus.GaugeValue, s.load15, "15m")
	}
}
