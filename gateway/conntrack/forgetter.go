package conntrack

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Forgetter deletes the conntrack entries of changed mappings in the
// background, so that a firewall backend's transaction does not wait for a
// dump of the conntrack table under its lock. The changes of the
// transactions committed while a round runs are merged and make the next
// round: one dump for all of them. A round starts as soon as changes are
// pending (after forgetGather, for the changes of the moment to gather), so
// the flows of a deleted mapping stop reaching its old host within a round
// or two, tens of milliseconds on a router's conntrack table, far under the
// second issue 9 allows.
//
// Order: the backend calls Add after the transaction whose changes it
// carries is committed, holding its own lock, so that the changes reach the
// Forgetter in the order of the commits; a round then runs after them, so
// every entry that used an ended mapping exists by then and is deleted, and
// a flow that carried on untranslated while the port was free is deleted
// with the port's next grant. A change never undoes a later one: an ended
// mapping whose key is granted again to the same internal endpoint before
// its round is dropped from the round, as its flows are the new holder's
// (the same host), and nothing else is kept.
type Forgetter struct {
	netns int
	log   *slog.Logger

	mu      sync.Mutex
	pending Changes
	running bool           // a worker goroutine runs rounds
	closed  bool           // Close was called: Add does nothing
	wg      sync.WaitGroup // the worker, for Close
}

// NewForgetter returns a Forgetter that works in the network namespace of
// file descriptor netns (0 means the caller's own), which must stay open
// until Close returns. A nil log discards its logs.
func NewForgetter(netns int, log *slog.Logger) *Forgetter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Forgetter{netns: netns, log: log}
}

// Add merges c, the changes of a committed transaction, into the pending
// changes and starts a round unless one runs. After Close it does nothing.
func (w *Forgetter) Add(c Changes) {
	if len(c.Ended)+len(c.Granted)+len(c.Closed)+len(c.Filtered) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
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
func (w *Forgetter) run() {
	var conn *Conn
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	for {
		time.Sleep(forgetGather)
		w.mu.Lock()
		c := w.pending
		w.pending = Changes{}
		if len(c.Ended)+len(c.Granted)+len(c.Closed)+len(c.Filtered) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		if conn == nil {
			var err error
			if conn, err = Dial(w.netns); err != nil {
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
func (w *Forgetter) failed(c Changes, n int, err error) {
	w.log.Warn("conntrack entries of changed mappings not all deleted",
		"ended", len(c.Ended), "granted", len(c.Granted), "closed", len(c.Closed),
		"filtered", len(c.Filtered), "deleted", n, "err", err)
}

// Close returns once the rounds of the changes added before it are done;
// changes added after it are dropped. It is safe to call more than once.
func (w *Forgetter) Close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.wg.Wait()
}
