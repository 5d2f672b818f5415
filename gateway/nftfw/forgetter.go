package nftfw

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/conntrack"
)

// flowForgetter deletes the conntrack entries of changed mappings in the
// background, so that a transaction does not wait for a dump of the
// conntrack table under the Firewall's lock. The changes of the
// transactions committed while a round runs are merged and make the next
// round: one dump for all of them. A round starts as soon as changes are
// pending (after forgetGather, for the changes of the moment to gather), so
// the flows of a deleted mapping stop reaching its old host within a round
// or two, tens of milliseconds on a router's conntrack table, far under the
// second issue 9 allows.
//
// Order: a round runs after the transactions whose changes it carries are
// committed, so every entry that used an ended mapping exists by then and
// is deleted, and a flow that carried on untranslated while the port was
// free is deleted with the port's next grant. A change never undoes a
// later one: an ended mapping whose key is granted again to the same
// internal endpoint before its round is dropped from the round, as its
// flows are the new holder's (the same host), and nothing else is kept.
type flowForgetter struct {
	netns int
	log   *slog.Logger

	mu      sync.Mutex
	pending conntrack.Changes
	running bool           // a worker goroutine runs rounds
	wg      sync.WaitGroup // the worker, for wait
}

// add merges c into the pending changes and starts a worker unless one runs.
func (w *flowForgetter) add(c conntrack.Changes) {
	if len(c.Ended)+len(c.Granted)+len(c.Closed)+len(c.Filtered) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	p := &w.pending
	for _, g := range c.Granted {
		p.Ended = slices.DeleteFunc(p.Ended, func(e gateway.Mapping) bool {
			return e.Protocol == g.Protocol && e.ExternalPort == g.ExternalPort &&
				e.Internal.Addr().Unmap() == g.Internal.Addr().Unmap() && e.Internal.Port() == g.Internal.Port()
		})
	}
	p.Ended = append(p.Ended, c.Ended...)
	p.Granted = append(p.Granted, c.Granted...)
	p.Closed = append(p.Closed, c.Closed...)
	p.Filtered = append(p.Filtered, c.Filtered...)
	if !w.running {
		w.running = true
		w.wg.Go(w.run)
	}
}

// forgetGather is how long a round waits for the changes of the
// transactions of the moment to gather before it dumps the conntrack table.
const forgetGather = 10 * time.Millisecond

// run does rounds until no change is pending, over one netlink connection.
func (w *flowForgetter) run() {
	var conn *conntrack.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	for {
		time.Sleep(forgetGather)
		w.mu.Lock()
		c := w.pending
		w.pending = conntrack.Changes{}
		if len(c.Ended)+len(c.Granted)+len(c.Closed)+len(c.Filtered) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		if conn == nil {
			var err error
			if conn, err = conntrack.Dial(w.netns); err != nil {
				w.failed(c, 0, err)
				continue
			}
		}
		n, err := conn.Forget(c)
		if err != nil {
			w.failed(c, n, err)
			_ = conn.Close() // the next round dials again
			conn = nil
			continue
		}
		w.log.Debug("conntrack entries of changed mappings deleted",
			"ended", len(c.Ended), "granted", len(c.Granted), "closed", len(c.Closed),
			"filtered", len(c.Filtered), "deleted", n)
	}
}

// failed logs a round that did not delete every entry of the changes c,
// n deleted. It is not retried: the kernel's rules are right, and the flows
// that keep their old translation end on their own.
func (w *flowForgetter) failed(c conntrack.Changes, n int, err error) {
	w.log.Warn("conntrack entries of changed mappings not all deleted",
		"ended", len(c.Ended), "granted", len(c.Granted), "closed", len(c.Closed),
		"filtered", len(c.Filtered), "deleted", n, "err", err)
}

// wait returns once no round runs or is pending.
func (w *flowForgetter) wait() { w.wg.Wait() }
