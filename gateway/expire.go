package gateway

import (
	"context"
	"time"
)

// DefaultKernelTimeout is the longest kernel timeout a mapping gets when
// Config.KernelTimeout is zero.
const DefaultKernelTimeout = time.Hour

// Resynchronisation after a failed kernel transaction is retried with these
// delays, doubling from the first to the last.
const (
	resyncFirstRetry = time.Second
	resyncLastRetry  = 30 * time.Second
)

// armed returns what the kernel must hold for the lease id from now on, with
// the kernel timeout to give it, and schedules the lease's next turn in the
// expiry loop. A lease without an end, or with one beyond the bound, thus
// never stays in the kernel for longer than the bound after the daemon has
// gone. t.mu must be held.
//
// Such a lease's kernel timeout runs to a fixed point of the wall clock: the
// end of the slot after the current one, where slots are half the bound
// long. The lease is re-armed when its current slot ends, with half the
// bound left in the kernel. A start-up reconciliation after a restart within
// the same slot thus wants exactly the kernel timeout the element already
// has, and keeps it as it is. Every such lease is re-armed at the same
// moment, in one batch and so in one kernel transaction, every half bound:
// re-arms spread over the slot would change the maps many times a second
// with 100,000 leases, and a dump of a map that changes meanwhile (nft list,
// Reconcile) must start over.
func (t *Table) armed(id leaseID, now time.Time) Mapping {
	e := t.store.get(id)
	m := t.mapping(id)
	at := int64(now.Sub(t.base))
	half := max(int64(t.bound/2), 1)
	wall := t.baseWall + at
	slot := wall - (wall%half+half)%half // the current slot's start
	end := slot + 2*half - t.baseWall    // as an entry time
	if e.expires != 0 && e.expires <= end {
		// A zero Lifetime would mean no kernel timeout at all.
		m.Lifetime = max(time.Duration(e.expires-at), time.Millisecond)
		t.schedule(id, e.expires)
		return m
	}
	m.Lifetime = time.Duration(end - at)
	t.schedule(id, end-half)
	return m
}

// Run expires leases as they end and re-arms the kernel timeouts of those
// that outlive them, until ctx is done. The next turn comes from the top of
// the heap; nothing ever scans the table. When a kernel transaction has
// failed, Run also brings the kernel back to agree with the table
// (Resync), retrying with a growing delay until it does.
func (t *Table) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	retry := resyncFirstRetry
	var nextResync time.Time
	for {
		t.mu.Lock()
		now := t.now()
		wait := time.Hour
		if id, ok := t.expiry.first(); ok {
			wait = max(time.Duration(t.store.get(id).due-t.since(now)), 0)
		}
		t.mu.Unlock()
		dirty := t.commit.dirty.Load()
		if dirty {
			if nextResync.IsZero() {
				nextResync = now.Add(retry)
			}
			wait = min(wait, max(nextResync.Sub(now), 0))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-t.wake:
			continue
		case <-timer.C:
		}
		t.expire()
		if !dirty || t.now().Before(nextResync) {
			continue
		}
		counts, err := t.Resync()
		if err != nil {
			t.log.Error("kernel still disagrees with the lease table", "retry_in", retry, "err", err)
			retry = min(2*retry, resyncLastRetry)
			nextResync = t.now().Add(retry)
			continue
		}
		t.log.Info("kernel agrees with the lease table again", "adopted", counts.Adopted, "added", counts.Added, "removed", counts.Removed)
		retry, nextResync = resyncFirstRetry, time.Time{}
	}
}

// expire removes every lease whose time is up and re-arms the kernel
// timeout of every lease due for it.
func (t *Table) expire() {
	t.mu.Lock()
	now := t.now()
	at := t.since(now)
	var victims []leaseID
	var rearms []*change
	for {
		id, ok := t.expiry.first()
		if !ok || t.store.get(id).due > at {
			break
		}
		if e := t.store.get(id); e.expires != 0 && e.expires <= at {
			victims = append(victims, id)
			t.expiry.remove(id)
			continue
		}
		// armed moves the lease on in the heap.
		ch := &change{remove: ptr(t.mapping(id)), add: ptr(t.armed(id, now)), done: make(chan error, 1)}
		t.enqueue(ch, nil, nil)
		rearms = append(rearms, ch)
	}
	if len(victims) > 0 {
		t.remove(victims, removedExpired) // releases t.mu
	} else {
		t.mu.Unlock()
	}
	for _, ch := range rearms {
		if err := t.commit.wait(ch); err != nil {
			t.log.Error("kernel timeout not re-armed", "proto", ch.add.Protocol, "eport", ch.add.ExternalPort, "err", err)
		}
	}
	if len(rearms) > 0 {
		t.log.Debug("kernel timeouts re-armed", "leases", len(rearms))
	}
}
