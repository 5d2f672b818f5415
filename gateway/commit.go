package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCommitTimeout bounds one batch's work in the kernel and the
// journal when Config.CommitTimeout is zero.
const DefaultCommitTimeout = 10 * time.Second

// change is one step of the lease table that the kernel and the journal must
// follow: a mapping removed, added, or both (a replacement), and the lease as
// the journal keeps it; or a request to reconcile the kernel with the whole
// table (Table.Resync).
type change struct {
	remove *Mapping
	add    *Mapping
	put    *Lease // the lease the journal must keep (a grant or renewal); nil without a journal
	drop   *Lease // the lease the journal must forget; nil without a journal
	resync bool
	// reconciled is what a resync found; set before done is sent.
	reconciled Reconciled
	done       chan error // buffered, capacity 1
}

// mappingKey identifies a mapping in the kernel: the external side.
type mappingKey struct {
	proto Protocol
	port  uint16
}

func keyOf(m Mapping) mappingKey { return mappingKey{m.Protocol, m.ExternalPort} }

// kernelKey identifies a mapping as the Firewall does: an IPv4 mapping by
// its external key (addr zero), a pinhole by its internal endpoint.
type kernelKey struct {
	proto Protocol
	port  uint16
	addr  netip.Addr
}

func kernelKeyOf(m *Mapping) kernelKey {
	if m.Pinhole {
		return kernelKey{m.Protocol, m.Internal.Port(), m.Internal.Addr()}
	}
	return kernelKey{proto: m.Protocol, port: m.ExternalPort}
}

// journalKey identifies a lease as the Journal does: an IPv4 lease by its
// external key, a pinhole by its UniqueID (n).
type journalKey struct {
	proto   Protocol
	n       uint16
	pinhole bool
}

func journalKeyOf(l *Lease) journalKey {
	if l.Pinhole {
		return journalKey{n: l.PinholeID, pinhole: true}
	}
	return journalKey{proto: l.Protocol, n: l.ExternalPort}
}

// committer applies changes to the firewall and the journal in batches
// (group commit). The table enqueues changes in its own order while it holds
// its lock; whoever then waits first while no batch is running becomes the
// leader and applies everything queued in one transaction and one journal
// write. A lone request is applied at once; requests that arrive meanwhile
// share the next netlink transaction and the next fsync.
//
// A leader applies one batch, the one with its own change, and then hands
// the lead to the waiter whose change is first in the queue: under a
// steady load a request thus waits for at most the transaction in progress
// and its own, never for a leader's run of batches.
//
// A batch runs under a context of its own, bounded by timeout, never the
// leader's: a request that is cancelled (a UPnP client that hangs up) must
// not fail the others of its batch. The kernel's transaction and the
// journal's write of a batch run at the same time (applyBatch), so that a
// batch costs the slower of the two, not their sum; its requests are
// answered once both are done, and by then the journal holds no grant the
// kernel refused.
type committer struct {
	fw      Firewall
	journal Journal
	log     *slog.Logger
	timeout time.Duration
	// snapshot drains the queue and returns what it held with the whole
	// table as the kernel must hold it once those changes are applied
	// (Table.resyncSnapshot).
	snapshot func(withLeases bool) (drained []*change, want []Mapping, leases []Lease)
	// dirty is set when the kernel may disagree with the table (a failed
	// transaction); the table's Run loop then resynchronises. wake, the
	// table's, tells a sleeping Run loop so (markDirty).
	dirty atomic.Bool
	wake  chan<- struct{}
	// journalBehind is set when a journal Commit failed: the journal may
	// lack changes the table made, and the next resync replaces it whole.
	journalBehind atomic.Bool
	// counts are the transactions and journal writes (Table.Counters).
	counts commitCounts

	mu      sync.Mutex
	queue   []*change
	spare   []*change
	leading bool
}

// errLead, received on a change's done channel, hands its waiter the lead.
// wait never returns it.
var errLead = errors.New("gateway: lead the next batch")

func (c *committer) enqueue(ch *change) {
	c.mu.Lock()
	c.queue = append(c.queue, ch)
	c.mu.Unlock()
}

// wait returns once ch has been applied, applying it (and whatever else is
// queued) itself when no other caller is doing so or when handed the lead.
// The result does not depend on ctx: once queued, a change is applied.
func (c *committer) wait(ch *change) error {
	c.mu.Lock()
	if c.leading {
		c.mu.Unlock()
		if err := <-ch.done; err != errLead {
			return err
		}
		c.mu.Lock() // the lead is ours; leading stays true
	}
	c.leading = true
	batch := c.queue
	c.queue = c.spare[:0]
	c.mu.Unlock()
	if len(batch) > 0 {
		batch = c.apply(batch)
	}
	clear(batch)
	c.mu.Lock()
	c.spare = batch
	if len(c.queue) > 0 {
		// Its waiter is blocked on done, or soon will be; done is empty
		// until the change is applied.
		c.queue[0].done <- errLead
	} else {
		c.leading = false
	}
	c.mu.Unlock()
	return <-ch.done
}

// apply commits a batch: one kernel transaction and one journal write
// (applyBatch). If the transaction fails, each change is retried alone so
// that one bad change fails only its own request. A batch with a resync
// reconciles the kernel with the whole table instead, and then records the
// batch. apply returns the batch, which a resync may have grown.
func (c *committer) apply(batch []*change) []*change {
	ctx := context.Background()
	if c.fw != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	errs := make([]error, len(batch))
	var journalErr error
	if hasResync(batch) {
		behind := c.journal != nil && c.journalBehind.Load()
		drained, want, leases := c.snapshot(behind)
		batch = append(batch, drained...)
		errs = make([]error, len(batch))
		counts, err := c.reconcile(ctx, want)
		for i, ch := range batch {
			errs[i] = err
			ch.reconciled = counts
		}
		if behind {
			c.replaceJournal(leases)
		}
		if c.journal != nil {
			journalErr = c.record(batch, errs)
		}
	} else {
		journalErr = c.applyBatch(ctx, batch, errs)
	}
	if journalErr != nil {
		// What the table changed and the journal lacks is written by
		// the next resync, which Run does soon.
		c.journalBehind.Store(true)
		c.markDirty()
		err := fmt.Errorf("%w: %w", ErrJournal, journalErr)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	for i, ch := range batch {
		ch.done <- errs[i]
	}
	return batch
}

// applyBatch applies the batch to the kernel (applyKernel, setting errs)
// and records it in the journal at the same time, and returns the
// journal's error. The journal cannot wait to learn which grants the
// kernel refuses, so it records them all; once both are done, the grants
// the kernel refused and the journal took are forgotten by a second write
// (forgetRefused), before any request of the batch is answered.
//
// Each failure has its path: a change the kernel refused fails its request
// (a grant is then taken back, a renewal or removal stands and the kernel
// is dirty, for Run to resynchronise); a failed journal write fails every
// request the kernel took and leaves the journal behind, for the next
// resync to replace (nothing of a failed write is in the journal, whether
// the kernel took the batch or not); a failed forgetRefused leaves the
// journal behind in the same way, with every request already answered
// as the kernel decided.
func (c *committer) applyBatch(ctx context.Context, batch []*change, errs []error) error {
	if c.journal == nil {
		c.applyKernel(ctx, batch, errs)
		return nil
	}
	if c.fw == nil {
		return c.record(batch, errs)
	}
	recorded := make(chan error, 1)
	go func() { recorded <- c.record(batch, nil) }()
	c.applyKernel(ctx, batch, errs)
	if err := <-recorded; err != nil {
		return err
	}
	if err := c.forgetRefused(batch, errs); err != nil {
		c.log.Error("journal keeps grants the firewall refused; rewriting it at the next resync", "err", err)
		c.journalBehind.Store(true)
		c.markDirty()
	}
	return nil
}

// forgetRefused has the journal forget the grants of batch that the kernel
// refused (errs) but the journal recorded as the last state of their key.
// A grant adds a key the table did not hold, so the journal did not hold
// it before the batch either: forgetting it restores the journal's state.
func (c *committer) forgetRefused(batch []*change, errs []error) error {
	refused := func(i int) bool {
		ch := batch[i]
		return errs[i] != nil && ch.remove == nil && ch.add != nil && ch.put != nil
	}
	some := false
	for i := range batch {
		some = some || refused(i)
	}
	if !some {
		return nil
	}
	last := make(map[journalKey]int, len(batch))
	for i, ch := range batch {
		for _, l := range [...]*Lease{ch.drop, ch.put} {
			if l != nil {
				last[journalKeyOf(l)] = i
			}
		}
	}
	var drop []Lease
	for i, ch := range batch {
		if refused(i) && last[journalKeyOf(ch.put)] == i {
			drop = append(drop, *ch.put)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	return c.journalCommit(nil, drop)
}

// replaceJournal rewrites the journal with leases, the whole table, after
// a Commit failed; should that fail too, Run tries again.
func (c *committer) replaceJournal(leases []Lease) {
	if err := c.journalReplace(leases); err != nil {
		c.log.Error("journal not rewritten after a failed write; retrying", "err", err)
		c.markDirty()
		return
	}
	c.journalBehind.Store(false)
	c.log.Warn("journal rewritten from the lease table after a failed write", "leases", len(leases))
}

// markDirty notes that the kernel may disagree with the table and wakes the
// table's Run loop, which may be asleep until a lease's turn an hour away.
func (c *committer) markDirty() {
	c.dirty.Store(true)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func hasResync(batch []*change) bool {
	for _, ch := range batch {
		if ch.resync {
			return true
		}
	}
	return false
}

// reconcile makes the kernel hold want, marking the kernel dirty when it
// cannot.
func (c *committer) reconcile(ctx context.Context, want []Mapping) (Reconciled, error) {
	if c.fw == nil {
		return Reconciled{}, nil
	}
	counts, err := c.fwReconcile(ctx, want)
	if err != nil {
		c.markDirty()
		return counts, fmt.Errorf("%w: %w", ErrFirewall, err)
	}
	c.dirty.Store(false)
	return counts, nil
}

// applyKernel applies the batch's mappings in one transaction, or change by
// change when that fails, and sets errs[i] for each change that failed.
func (c *committer) applyKernel(ctx context.Context, batch []*change, errs []error) {
	if c.fw == nil {
		return
	}
	add, remove := fold(batch)
	err := c.fwApply(ctx, add, remove)
	if err == nil {
		return
	}
	// The kernel's transaction is all or nothing, but a backend may have
	// lost track of what it holds: let the run loop check.
	c.markDirty()
	if len(batch) == 1 {
		errs[0] = fmt.Errorf("%w: %w", ErrFirewall, err)
		return
	}
	for i := range batch {
		add, remove := fold(batch[i : i+1])
		if err := c.fwApply(ctx, add, remove); err != nil {
			errs[i] = fmt.Errorf("%w: %w", ErrFirewall, err)
		}
	}
}

// record writes the batch to the journal in one write. The journal follows
// the table, which is the authority: it records every change but the grants
// that the kernel refused (errs, nil when not yet known), which the table
// takes back (a renewal or a removal that the kernel refused stands in the
// table, and the run loop brings the kernel to agree).
func (c *committer) record(batch []*change, errs []error) error {
	put, drop := foldJournal(batch, errs)
	if len(put) == 0 && len(drop) == 0 {
		return nil
	}
	return c.journalCommit(put, drop)
}

// foldJournal reduces the journal records of a batch to each lease's last
// state, kept (put) or forgotten (drop), leaving out the grants that failed.
func foldJournal(batch []*change, errs []error) (put, drop []Lease) {
	last := make(map[journalKey]*change, len(batch))
	var order []journalKey
	for i, ch := range batch {
		if errs != nil && errs[i] != nil && ch.remove == nil && ch.add != nil {
			continue // a grant the table takes back
		}
		for _, l := range [...]*Lease{ch.drop, ch.put} {
			if l == nil {
				continue
			}
			k := journalKeyOf(l)
			if _, seen := last[k]; !seen {
				order = append(order, k)
			}
			last[k] = ch
		}
	}
	for _, k := range order {
		ch := last[k]
		if ch.put != nil && journalKeyOf(ch.put) == k {
			put = append(put, *ch.put)
		} else {
			drop = append(drop, *ch.drop)
		}
	}
	return put, drop
}

// fold reduces a sequence of changes to what the kernel must do: for each
// kernel key touched, remove what the kernel held before the batch (the
// first change of a key says so: the table only adds a key the kernel does
// not hold, or replaces one it does) and add the key's final mapping, if any.
func fold(batch []*change) (add, remove []Mapping) {
	type state struct {
		before *Mapping // held by the kernel before the batch
		after  *Mapping // held once the batch is applied
	}
	if len(batch) == 1 {
		ch := batch[0]
		if ch.remove != nil {
			remove = append(remove, *ch.remove)
		}
		if ch.add != nil {
			add = append(add, *ch.add)
		}
		return add, remove
	}
	states := make(map[kernelKey]*state, len(batch))
	order := make([]kernelKey, 0, len(batch))
	for _, ch := range batch {
		if ch.remove != nil {
			k := kernelKeyOf(ch.remove)
			st, seen := states[k]
			if !seen {
				st = &state{before: ch.remove}
				states[k] = st
				order = append(order, k)
			}
			st.after = nil
		}
		if ch.add != nil {
			k := kernelKeyOf(ch.add)
			st, seen := states[k]
			if !seen {
				st = &state{}
				states[k] = st
				order = append(order, k)
			}
			st.after = ch.add
		}
	}
	for _, k := range order {
		st := states[k]
		if st.before != nil {
			remove = append(remove, *st.before)
		}
		if st.after != nil {
			add = append(add, *st.after)
		}
	}
	return add, remove
}
