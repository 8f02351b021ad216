// Package histogram is a fixed-memory, mergeable, log-bucketed histogram of
// float64 samples (HDR-style): every percentile it reports is within 0.4% of
// the exact value, whatever the number of samples, and its memory is bounded
// (at most 64 KiB per sign) no matter how long a test runs.
//
// Buckets follow the bits of the float64 itself: the exponent selects an
// octave and the top 7 mantissa bits split the octave into 128 equal
// buckets, so a bucket is at most 1/128 of its lower bound wide and its
// midpoint is within 1/256 (0.39%) of any value in it. Octaves are
// allocated on first use, so a latency histogram spanning 0.1 ms..10 s holds
// ~17 octaves (17 KiB). Magnitudes below 2^-20 (~1e-6) are counted as zero;
// magnitudes at or above 2^44 (~1.8e13) share one overflow bucket reported
// as the exact maximum. NaN samples are ignored.
//
// It imports only the standard library. A Histogram is not safe for
// concurrent use; callers serialise access.
package histogram

import (
	"math"
)

const (
	subBits  = 7
	subCount = 1 << subBits
	minExp   = -20 // smallest octave: [2^-20, 2^-19)
	maxExp   = 44  // values >= 2^44 overflow
	nOctaves = maxExp - minExp
)

// RelativeError is the largest relative error of a bucket midpoint against
// any value in that bucket (1/256).
const RelativeError = 1.0 / (2 * subCount)

type octave [subCount]uint64

type side struct {
	octaves [nOctaves]*octave
	over    uint64 // magnitudes >= 2^maxExp
}

// Histogram records float64 samples. The zero value is an empty histogram
// ready to use.
type Histogram struct {
	pos   side
	neg   *side  // allocated on the first negative sample
	zero  uint64 // samples whose magnitude is below 2^minExp
	count uint64
	sum   float64
	min   float64
	max   float64
}

// Add records one sample v.
func (h *Histogram) Add(v float64) {
	if v != v { // NaN
		return
	}
	if h.count == 0 {
		h.min, h.max = v, v
	} else if v < h.min {
		h.min = v
	} else if v > h.max {
		h.max = v
	}
	h.count++
	h.sum += v
	s := &h.pos
	if v < 0 {
		if h.neg == nil {
			h.neg = new(side)
		}
		s = h.neg
		v = -v
	}
	bits := math.Float64bits(v)
	e := int(bits>>52) - 1023
	switch {
	case e < minExp:
		h.zero++
	case e >= maxExp:
		s.over++
	default:
		o := s.octaves[e-minExp]
		if o == nil {
			o = new(octave)
			s.octaves[e-minExp] = o
		}
		o[(bits>>(52-subBits))&(subCount-1)]++
	}
}

// Count is the number of samples recorded.
func (h *Histogram) Count() uint64 { return h.count }

// Sum is the exact sum of the samples.
func (h *Histogram) Sum() float64 { return h.sum }

// Min is the exact smallest sample, 0 when empty.
func (h *Histogram) Min() float64 { return h.min }

// Max is the exact largest sample, 0 when empty.
func (h *Histogram) Max() float64 { return h.max }

// Mean is the exact arithmetic mean, 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.count == 0 {
		return 0
	}
	return h.sum / float64(h.count)
}

// Merge adds every sample of o to h. o is unchanged.
func (h *Histogram) Merge(o *Histogram) {
	if o.count == 0 {
		return
	}
	if h.count == 0 {
		h.min, h.max = o.min, o.max
	} else {
		h.min = math.Min(h.min, o.min)
		h.max = math.Max(h.max, o.max)
	}
	h.count += o.count
	h.sum += o.sum
	h.zero += o.zero
	h.pos.merge(&o.pos)
	if o.neg != nil {
		if h.neg == nil {
			h.neg = new(side)
		}
		h.neg.merge(o.neg)
	}
}

func (s *side) merge(o *side) {
	s.over += o.over
	for i, oo := range o.octaves {
		if oo == nil {
			continue
		}
		d := s.octaves[i]
		if d == nil {
			d = new(octave)
			s.octaves[i] = d
		}
		for j, c := range oo {
			d[j] += c
		}
	}
}

// Clone returns a deep copy of h.
func (h *Histogram) Clone() *Histogram {
	c := new(Histogram)
	c.Merge(h)
	return c
}

// Reset empties h, keeping its allocated octaves.
func (h *Histogram) Reset() {
	h.pos.reset()
	if h.neg != nil {
		h.neg.reset()
	}
	h.zero, h.count, h.sum, h.min, h.max = 0, 0, 0, 0, 0
}

func (s *side) reset() {
	s.over = 0
	for _, o := range s.octaves {
		if o != nil {
			*o = octave{}
		}
	}
}

// bucketMid is the midpoint of bucket (octave index i, sub-bucket j) of the
// positive side.
func bucketMid(i, j int) float64 {
	lo := math.Float64frombits(uint64(i+minExp+1023)<<52 | uint64(j)<<(52-subBits))
	return lo * (1 + 0.5/float64(subCount+j))
}

// Each calls f for every non-empty bucket in ascending order of value with
// the bucket's representative value (its midpoint clamped to [Min, Max];
// overflow buckets report the extreme) and its count. It stops early when f
// returns false.
func (h *Histogram) Each(f func(v float64, n uint64) bool) {
	if h.count == 0 {
		return
	}
	clamp := func(v float64) float64 { return math.Max(h.min, math.Min(h.max, v)) }
	if n := h.neg; n != nil {
		if n.over > 0 && !f(h.min, n.over) {
			return
		}
		for i := nOctaves - 1; i >= 0; i-- {
			o := n.octaves[i]
			if o == nil {
				continue
			}
			for j := subCount - 1; j >= 0; j-- {
				if c := o[j]; c > 0 && !f(clamp(-bucketMid(i, j)), c) {
					return
				}
			}
		}
	}
	if h.zero > 0 && !f(clamp(0), h.zero) {
		return
	}
	for i, o := range h.pos.octaves {
		if o == nil {
			continue
		}
		for j, c := range o {
			if c > 0 && !f(clamp(bucketMid(i, j)), c) {
				return
			}
		}
	}
	if h.pos.over > 0 {
		f(h.max, h.pos.over)
	}
}

// valueAt returns the estimated value of the sample at 0-based rank k of
// the sorted samples. The first and last ranks are the exact min and max.
func (h *Histogram) valueAt(k uint64) float64 {
	if k == 0 {
		return h.min
	}
	if k >= h.count-1 {
		return h.max
	}
	var seen uint64
	v := h.max
	h.Each(func(b float64, n uint64) bool {
		seen += n
		if seen > k {
			v = b
			return false
		}
		return true
	})
	return v
}

// Quantile returns the q-quantile (0 <= q <= 1) the way k6 computes
// p(N): linear interpolation between the samples at ranks floor and ceil of
// q*(n-1). It returns 0 when the histogram is empty.
func (h *Histogram) Quantile(q float64) float64 {
	switch {
	case h.count == 0:
		return 0
	case q <= 0 || q != q:
		return h.min
	case q >= 1:
		return h.max
	}
	r := q * float64(h.count-1)
	lo := math.Floor(r)
	a := h.valueAt(uint64(lo))
	f := r - lo
	if f == 0 {
		return a
	}
	b := h.valueAt(uint64(lo) + 1)
	return a + (b-a)*f
}

// CountAtOrBelow estimates how many samples are <= x (for cumulative
// Prometheus buckets): every bucket whose representative is <= x counts
// whole.
func (h *Histogram) CountAtOrBelow(x float64) uint64 {
	var n uint64
	h.Each(func(v float64, c uint64) bool {
		if v > x {
			return false
		}
		n += c
		return true
	})
	return n
}

// Octaves reports how many octaves are allocated (a measure of memory use:
// each holds 1 KiB of counts).
func (h *Histogram) Octaves() int {
	n := 0
	for _, o := range h.pos.octaves {
		if o != nil {
			n++
		}
	}
	if h.neg != nil {
		for _, o := range h.neg.octaves {
			if o != nil {
				n++
			}
		}
	}
	return n
}
