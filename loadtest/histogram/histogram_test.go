package histogram

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// exactQuantile is k6's percentile over sorted samples.
func exactQuantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	r := q * float64(len(sorted)-1)
	lo, hi := math.Floor(r), math.Ceil(r)
	a, b := sorted[int(lo)], sorted[int(hi)]
	return a + (b-a)*(r-lo)
}

func TestQuantileAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() float64{
		"lognormal latency ms": func() float64 { return math.Exp(rng.NormFloat64()*1.2 + 1.5) },
		"uniform 0..1000":      func() float64 { return rng.Float64() * 1000 },
		"exponential":          func() float64 { return rng.ExpFloat64() * 40 },
		"bimodal with stall": func() float64 {
			if rng.IntN(100) == 0 {
				return 800 + rng.Float64()*200
			}
			return 0.2 + rng.Float64()*0.3
		},
		"nanoseconds": func() float64 { return float64(50_000 + rng.IntN(5_000_000)) },
		"mixed sign":  func() float64 { return rng.NormFloat64() * 100 },
	}
	qs := []float64{0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			const n = 200_000
			var h Histogram
			samples := make([]float64, n)
			for i := range samples {
				samples[i] = gen()
				h.Add(samples[i])
			}
			slices.Sort(samples)
			for _, q := range qs {
				got, want := h.Quantile(q), exactQuantile(samples, q)
				if rel := math.Abs(got-want) / math.Abs(want); rel > 0.01 {
					t.Errorf("p(%v) = %v, exact %v: relative error %.4f > 1%%", q*100, got, want, rel)
				}
			}
			if h.Min() != samples[0] || h.Max() != samples[n-1] {
				t.Errorf("min/max = %v/%v, want %v/%v", h.Min(), h.Max(), samples[0], samples[n-1])
			}
			var sum float64
			for _, v := range samples {
				sum += v
			}
			if rel := math.Abs(h.Mean()-sum/n) / math.Abs(sum/n); rel > 1e-9 {
				t.Errorf("mean = %v, want %v", h.Mean(), sum/n)
			}
			if h.Count() != n {
				t.Errorf("count = %d, want %d", h.Count(), n)
			}
		})
	}
}

func TestSmallCountsAreExactAtExtremes(t *testing.T) {
	var h Histogram
	if got := h.Quantile(0.95); got != 0 {
		t.Errorf("empty p95 = %v, want 0", got)
	}
	h.Add(42)
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if got := h.Quantile(q); got != 42 {
			t.Errorf("one sample: Quantile(%v) = %v, want 42", q, got)
		}
	}
	h.Add(10)
	// k6: p(50) of {10, 42} interpolates to 26.
	if got := h.Quantile(0.5); got != 26 {
		t.Errorf("p(50) of {10,42} = %v, want 26", got)
	}
}

func TestZerosAndTinyValues(t *testing.T) {
	var h Histogram
	for range 90 {
		h.Add(0)
	}
	for range 10 {
		h.Add(5)
	}
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("p50 = %v, want 0", got)
	}
	if got := h.Quantile(0.95); math.Abs(got-5) > 5*RelativeError {
		t.Errorf("p95 = %v, want ~5", got)
	}
	h.Add(1e-9) // below the smallest octave: counted as zero
	if got := h.CountAtOrBelow(0); got != 91 {
		t.Errorf("CountAtOrBelow(0) = %d, want 91", got)
	}
	h.Add(math.NaN())
	if h.Count() != 101 {
		t.Errorf("NaN was counted: count %d", h.Count())
	}
	h.Add(1e20) // overflow
	if got := h.Quantile(1); got != 1e20 {
		t.Errorf("max = %v, want 1e20", got)
	}
}

func TestMergeEqualsCombined(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b, all Histogram
	for i := range 50_000 {
		v := rng.ExpFloat64() * 100
		if i%3 == 0 {
			v = -v
		}
		all.Add(v)
		if i%2 == 0 {
			a.Add(v)
		} else {
			b.Add(v)
		}
	}
	m := a.Clone()
	m.Merge(&b)
	if m.Count() != all.Count() || m.Min() != all.Min() || m.Max() != all.Max() {
		t.Fatalf("merged count/min/max = %d/%v/%v, want %d/%v/%v", m.Count(), m.Min(), m.Max(), all.Count(), all.Min(), all.Max())
	}
	if math.Abs(m.Sum()-all.Sum()) > 1e-6*math.Abs(all.Sum()) {
		t.Errorf("merged sum = %v, want %v", m.Sum(), all.Sum())
	}
	for _, q := range []float64{0.01, 0.25, 0.5, 0.9, 0.99} {
		if got, want := m.Quantile(q), all.Quantile(q); got != want {
			t.Errorf("merged Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	// a is unchanged by Clone+Merge.
	if a.Count() != 25_000 {
		t.Errorf("a.Count() = %d after merging its clone, want 25000", a.Count())
	}
}

func TestMemoryIsBounded(t *testing.T) {
	var h Histogram
	rng := rand.New(rand.NewPCG(5, 6))
	for range 1_000_000 {
		h.Add(math.Exp(rng.Float64()*60 - 20))
	}
	if got := h.Octaves(); got > nOctaves {
		t.Errorf("octaves = %d, want <= %d", got, nOctaves)
	}
	var lat Histogram
	for range 100_000 {
		lat.Add(0.1 + rng.Float64()*10_000) // 0.1 ms .. 10 s in ms
	}
	if got := lat.Octaves(); got > 18 {
		t.Errorf("latency histogram uses %d octaves, want <= 18", got)
	}
}

func TestCountAtOrBelow(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Add(float64(i))
	}
	for _, x := range []float64{10, 100, 250, 999} {
		got := float64(h.CountAtOrBelow(x))
		if math.Abs(got-x) > x*0.01+1 {
			t.Errorf("CountAtOrBelow(%v) = %v, want ~%v", x, got, x)
		}
	}
	h.Reset()
	if h.Count() != 0 || h.CountAtOrBelow(1e9) != 0 {
		t.Errorf("Reset left %d samples", h.Count())
	}
}

func BenchmarkAdd(b *testing.B) {
	var h Histogram
	rng := rand.New(rand.NewPCG(7, 8))
	vals := make([]float64, 1024)
	for i := range vals {
		vals[i] = rng.ExpFloat64() * 50
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Add(vals[i&1023])
	}
}
