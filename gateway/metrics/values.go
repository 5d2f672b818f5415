package metrics

import (
	"math"
	"sync/atomic"
	"time"
)

// Counter is a count that only goes up. Its zero value is 0; its methods
// are safe for concurrent use and do not allocate.
type Counter struct {
	v atomic.Uint64
}

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Load returns the count.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Gauge is a value that goes up and down. Its zero value is 0; its methods
// are safe for concurrent use and do not allocate.
type Gauge struct {
	bits atomic.Uint64
}

// Set sets the value to v.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Add adds d to the value.
func (g *Gauge) Add(d float64) { addFloat(&g.bits, d) }

// Load returns the value.
func (g *Gauge) Load() float64 { return math.Float64frombits(g.bits.Load()) }

// addFloat adds d to the float64 whose bits are held in bits.
func addFloat(bits *atomic.Uint64, d float64) {
	for {
		old := bits.Load()
		if bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// Histogram counts observations in buckets of fixed upper bounds, and sums
// them. Its methods are safe for concurrent use and do not allocate.
type Histogram struct {
	bounds []float64       // strictly increasing upper bounds, without +Inf
	counts []atomic.Uint64 // per bucket (not cumulative), len(bounds)+1
	sum    atomic.Uint64   // float64 bits
}

// NewHistogram returns a histogram with buckets of the upper bounds given,
// which must be finite and strictly increasing (it panics otherwise: the
// bounds are the program's constants); the +Inf bucket is implied.
func NewHistogram(bounds ...float64) *Histogram {
	for i, b := range bounds {
		if math.IsInf(b, 0) || math.IsNaN(b) || i > 0 && b <= bounds[i-1] {
			panic("metrics: histogram bounds must be finite and strictly increasing")
		}
	}
	return &Histogram{bounds: append([]float64(nil), bounds...), counts: make([]atomic.Uint64, len(bounds)+1)}
}

// LatencyBounds are the upper bounds, in seconds, of the buckets of a
// request's duration: from half a millisecond, a NAT-PMP answer from the
// table, to 2.5 s, a UPnP action waiting for a slow kernel transaction.
func LatencyBounds() []float64 {
	return []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
}

// Observe counts v in its bucket (the first whose bound is at least v) and
// adds it to the sum.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	addFloat(&h.sum, v)
}

// ObserveDuration observes d in seconds: the front-ends' request latency
// observers (natpmpsrv.Latency, upnpsrv.Latency) take a *Histogram.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Sum returns the sum of the observations.
func (h *Histogram) Sum() float64 { return math.Float64frombits(h.sum.Load()) }
