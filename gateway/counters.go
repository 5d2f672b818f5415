package gateway

import (
	"context"
	"sync/atomic"
)

// The table counts in two places, each where its path already is:
//
//   - leaseCounts, plain integers under the table's lock, which every
//     grant, renewal, deletion, expiry and refusal holds already (an
//     increment costs nothing more there);
//   - commitCounts, atomics in the committer, whose leader talks to the
//     kernel and the journal outside the table's lock (taking it there
//     would make every request wait on a batch's bookkeeping). They change
//     once per transaction or journal write, not per request.

// leaseCounts are the counts of the lease table's own changes. t.mu must be
// held to read or write them.
type leaseCounts struct {
	granted, renewed, deleted, expired [4]uint64 // by Origin
	refused                            [refusals]uint64
}

// countOrigin adds one to c[o], for an Origin that has a place.
func countOrigin(c *[4]uint64, o Origin) {
	if int(o) < len(c) {
		c[o]++
	}
}

// commitCounts are the counts of the committer's kernel transactions and
// journal writes.
type commitCounts struct {
	transactions, transactionFailures atomic.Uint64
	transactionSizes                  [7]atomic.Uint64 // by TransactionSizeBounds, then larger
	transactionMappings               atomic.Uint64
	journalCommits, journalFailures   atomic.Uint64
}

// transaction counts a kernel transaction of size mappings and whether it
// failed.
func (c *commitCounts) transaction(size int, err error) {
	c.transactions.Add(1)
	if err != nil {
		c.transactionFailures.Add(1)
	}
	c.transactionMappings.Add(uint64(size))
	bucket := len(c.transactionSizes) - 1
	for i, bound := range TransactionSizeBounds() {
		if size <= bound {
			bucket = i
			break
		}
	}
	c.transactionSizes[bucket].Add(1)
}

// journal counts a journal write and whether it failed.
func (c *commitCounts) journal(err error) {
	c.journalCommits.Add(1)
	if err != nil {
		c.journalFailures.Add(1)
	}
}

// fill copies the counts into out.
func (c *commitCounts) fill(out *Counters) {
	out.Transactions = c.transactions.Load()
	out.TransactionFailures = c.transactionFailures.Load()
	for i := range c.transactionSizes {
		out.TransactionSizes[i] = c.transactionSizes[i].Load()
	}
	out.TransactionMappings = c.transactionMappings.Load()
	out.JournalCommits = c.journalCommits.Load()
	out.JournalFailures = c.journalFailures.Load()
}

// fwApply is Firewall.Apply, counted.
func (c *committer) fwApply(ctx context.Context, add, remove []Mapping) error {
	err := c.fw.Apply(ctx, add, remove)
	c.counts.transaction(len(add)+len(remove), err)
	return err
}

// fwReconcile is Firewall.Reconcile, counted: its size is the mappings the
// kernel must hold.
func (c *committer) fwReconcile(ctx context.Context, want []Mapping) (Reconciled, error) {
	counts, err := c.fw.Reconcile(ctx, want)
	c.counts.transaction(len(want), err)
	return counts, err
}

// journalCommit is Journal.Commit, counted.
func (c *committer) journalCommit(put, drop []Lease) error {
	err := c.journal.Commit(put, drop)
	c.counts.journal(err)
	return err
}

// journalReplace is Journal.Replace, counted.
func (c *committer) journalReplace(leases []Lease) error {
	err := c.journal.Replace(leases)
	c.counts.journal(err)
	return err
}
