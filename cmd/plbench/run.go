package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Error kinds of errors_by_kind that are not protocol codes.
const (
	kindTimeout   = "timeout"   // no answer after every try
	kindHTTP      = "http"      // a transport failure or an HTTP status other than 200 and 500
	kindNetwork   = "network"   // a socket error, such as ICMP port unreachable
	kindMalformed = "malformed" // an answer that cannot be decoded
)

// Request states kept by runner.state.
const (
	stateNotSent    uint8 = iota // claimed by no client, or claimed when the run stopped
	stateOK                      // answered with success
	stateFailed                  // answered with an error
	stateUnanswered              // no answer (timeout, transport error)
)

// client performs requests. One client is used by one goroutine only.
type client interface {
	// do performs request i and returns "" or the error kind, whether an
	// answer came, and the time from the first send to the answer.
	do(i int) (kind string, answered bool, latency time.Duration)
}

// runner shares requests 0 to n-1 among clients and records the outcome of
// each. Request i is written only by the client that claimed it, so the
// per-request slices need no lock.
type runner struct {
	cfg   *config
	next  atomic.Int64 // next request to claim
	sent  atomic.Int64
	ok    atomic.Int64
	fails atomic.Int64
	start time.Time

	state   []uint8
	kind    []string
	latency []time.Duration
}

// newRunner prepares the per-request records of cfg.n requests.
func newRunner(cfg *config) *runner {
	return &runner{
		cfg:     cfg,
		state:   make([]uint8, cfg.n),
		kind:    make([]string, cfg.n),
		latency: make([]time.Duration, cfg.n),
	}
}

// run runs one goroutine per client until every request is done or ctx
// ends (it also ends after cfg.duration), printing progress to progress
// every second when it is not nil. It reports whether the gateway was
// reached: false when every client that sent a request got no answer to
// its first one.
func (r *runner) run(ctx context.Context, clients []client, progress io.Writer) (reached bool) {
	if r.cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.duration)
		defer cancel()
	}
	r.start = time.Now()
	var wg sync.WaitGroup
	firsts := make([]uint8, len(clients)) // 0: sent nothing, 1: first answered, 2: first unanswered
	for k, c := range clients {
		wg.Go(func() { firsts[k] = r.work(ctx, c) })
	}
	done := make(chan struct{})
	var pwg sync.WaitGroup
	if progress != nil {
		pwg.Go(func() { r.progress(progress, done) })
	}
	wg.Wait()
	close(done)
	pwg.Wait()
	sending, answered := 0, 0
	for _, f := range firsts {
		if f != 0 {
			sending++
		}
		if f == 1 {
			answered++
		}
	}
	return sending == 0 || answered > 0
}

// work is the loop of one client: claim the next request, wait for its
// turn under -rate, perform it and record it. It returns 0 when the client
// sent nothing, 1 when its first request was answered and 2 when not.
func (r *runner) work(ctx context.Context, c client) uint8 {
	var first uint8
	var timer *time.Timer
	n := int64(r.cfg.n)
	for ctx.Err() == nil {
		i := r.next.Add(1) - 1
		if i >= n {
			break
		}
		// late is how long after its turn under -rate the request goes out
		// (its client was busy with the one before): it counts in its
		// latency, which otherwise would leave out the very delays a
		// slow gateway causes (coordinated omission).
		var late time.Duration
		if r.cfg.rate > 0 {
			at := r.start.Add(time.Duration(float64(i) / r.cfg.rate * float64(time.Second)))
			late = max(time.Since(at), 0)
			if d := time.Until(at); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-timer.C:
				case <-ctx.Done():
					timer.Stop()
					return first
				}
			}
		}
		r.sent.Add(1)
		kind, answered, lat := c.do(int(i))
		switch {
		case kind == "":
			r.state[i] = stateOK
			r.ok.Add(1)
		case answered:
			r.state[i] = stateFailed
			r.fails.Add(1)
		default:
			r.state[i] = stateUnanswered
			r.fails.Add(1)
		}
		r.kind[i], r.latency[i] = kind, late+lat
		if first == 0 {
			first = 2
			if answered {
				first = 1
			}
		}
	}
	return first
}

// progress prints a line every second until done is closed.
func (r *runner) progress(w io.Writer, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			fmt.Fprintf(w, "plbench: %s %d/%d sent, %d ok, %d errors, %.0f s\n",
				r.cfg.op, r.sent.Load(), r.cfg.n, r.ok.Load(), r.fails.Load(), time.Since(r.start).Seconds())
		}
	}
}

// result is the outcome of a run, in the JSON form the lab reads.
type result struct {
	Protocol     string         `json:"protocol"`
	Op           string         `json:"op"`
	Requests     int            `json:"requests"`
	OK           int            `json:"ok"`
	Errors       int            `json:"errors"`
	ErrorsByKind map[string]int `json:"errors_by_kind"`
	Seconds      float64        `json:"seconds"`
	Rate         float64        `json:"rate"`
	P50          float64        `json:"p50_ms"`
	P90          float64        `json:"p90_ms"`
	P99          float64        `json:"p99_ms"`
	Max          float64        `json:"max_ms"`
	Clients      int            `json:"clients"`
	StoppedEarly bool           `json:"stopped_early"`
}

// result sums up the records once every client has stopped. Latencies are
// those of the answered requests, successful or not.
func (r *runner) result() *result {
	elapsed := time.Since(r.start)
	res := &result{
		Protocol:     r.cfg.protocol,
		Op:           r.cfg.op,
		ErrorsByKind: map[string]int{},
		Seconds:      elapsed.Seconds(),
		Clients:      r.cfg.clients,
	}
	lats := make([]time.Duration, 0, len(r.state))
	for i, s := range r.state {
		switch s {
		case stateNotSent:
			continue
		case stateOK:
			res.OK++
		default:
			res.Errors++
			res.ErrorsByKind[r.kind[i]]++
		}
		res.Requests++
		if s != stateUnanswered {
			lats = append(lats, r.latency[i])
		}
	}
	res.StoppedEarly = res.Requests < r.cfg.n
	if res.Seconds > 0 {
		res.Rate = float64(res.OK) / res.Seconds
	}
	slices.Sort(lats)
	res.P50 = ms(percentile(lats, 50))
	res.P90 = ms(percentile(lats, 90))
	res.P99 = ms(percentile(lats, 99))
	if len(lats) > 0 {
		res.Max = ms(lats[len(lats)-1])
	}
	return res
}

// percentile returns the p-th percentile of the sorted samples by the
// nearest-rank method: the smallest sample with at least p% of the samples
// at or below it. It returns 0 without samples.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// ms converts d to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeText prints the human summary.
func (res *result) writeText(w io.Writer) {
	fmt.Fprintf(w, "%s %s: %d requests, %d ok, %d errors in %.3f s (%.1f ok/s), %d clients",
		res.Protocol, res.Op, res.Requests, res.OK, res.Errors, res.Seconds, res.Rate, res.Clients)
	if res.StoppedEarly {
		fmt.Fprint(w, ", stopped early")
	}
	fmt.Fprintf(w, "\nlatency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", res.P50, res.P90, res.P99, res.Max)
	kinds := make([]string, 0, len(res.ErrorsByKind))
	for k := range res.ErrorsByKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	if len(kinds) > 0 {
		fmt.Fprintln(w, "errors by kind:")
	}
	for _, k := range kinds {
		fmt.Fprintf(w, "  %s: %d\n", k, res.ErrorsByKind[k])
	}
}
