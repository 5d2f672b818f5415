package gateway

import (
	"net/netip"
	"slices"
	"time"
)

// What the table shows of itself to its operator (issue 14): the events of
// the lease table, the external address's history, each host's usage of
// its share, and counters. The control socket, the metrics and the status
// page read them; none of them is on a request's path but as a counter
// increment or an entry written into a ring.
//
// The events, the address history and the lease counts are written under
// the table's lock where the change is made (events.go, counters.go); the
// kernel transactions and journal writes are counted by the committer, in
// atomics (counters.go). Every method here copies out under the lock.

// EventKind names what happened.
type EventKind uint8

// The kinds of event.
const (
	EventGranted EventKind = iota + 1 // a new lease
	EventRenewed                      // a lease's lifetime extended (or its description changed)
	EventDeleted                      // deleted by its client, the operator or a reload's rules
	EventExpired                      // ended by its lifetime
	EventRefused                      // a request refused (Reason says why)
)

// String returns "granted", "renewed", "deleted", "expired" or "refused".
func (k EventKind) String() string {
	switch k {
	case EventGranted:
		return "granted"
	case EventRenewed:
		return "renewed"
	case EventDeleted:
		return "deleted"
	case EventExpired:
		return "expired"
	case EventRefused:
		return "refused"
	}
	return "unknown"
}

// EventBacklog is how many of the latest events the table keeps.
const EventBacklog = 256

// Event is one change of the lease table, or one refused request.
type Event struct {
	// Seq numbers the events of the table from 1, without gaps.
	Seq  uint64
	Time time.Time
	Kind EventKind
	// Lease is the lease granted, renewed, deleted or expired; for a
	// refusal, what was asked: Protocol, Internal, ExternalPort (the
	// suggested one) and Origin.
	Lease Lease
	// Requester is the address the request came from, for the events of
	// Map (a grant, a renewal, a refusal): MapRequest.Requester, or the
	// internal address when that is zero. Zero where the table does not
	// know it: deletions (a PCP THIRD_PARTY deletion names only the
	// internal address), expiries, UpdatePinhole's renewals.
	Requester netip.Addr
	// Reason says why a request was refused ("host at its share", "out of
	// resources", "not allowed", ...) or who deleted ("client",
	// "operator", "rules", ...): one of the Reason constants (events.go);
	// empty otherwise.
	Reason string
}

// Events returns the events after seq after, oldest first (at most the
// last EventBacklog), and the Seq of the newest event (0: none yet). A
// reader that passes the last Seq it saw gets what is new; one that fell
// more than EventBacklog behind gets the latest EventBacklog.
//
// Reason is one of the Reason constants (events.go): for EventDeleted,
// ReasonClient, ReasonOperator, ReasonRules, ReasonLANGone or
// ReasonNotApplied; for EventRefused, ReasonHostQuota,
// ReasonOutOfResources, ReasonNotAllowed, ReasonConflict,
// ReasonNonceMismatch or ReasonBadRequest; empty for the others.
// Requester is set for the events of Map (grant, renewal, refusal): the
// MapRequest's Requester, or its internal address when that is zero.
func (t *Table) Events(after uint64) (events []Event, newest uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.events.since(after), t.events.seq
}

// AddressHistoryLen is how many external addresses AddressHistory keeps.
const AddressHistoryLen = 16

// AddressChange is one external address the table was given, and when.
type AddressChange struct {
	Time time.Time
	Addr netip.Addr // not valid: the address went away
}

// AddressHistory returns the last AddressHistoryLen external addresses,
// oldest first; the last is the current one.
func (t *Table) AddressHistory() []AddressChange {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addresses.all()
}

// HostUsage is one internal address's leases against its share.
type HostUsage struct {
	Host   netip.Addr
	Leases int
	// Limit is the policy's MaxPerHost at the time of the call; 0: none.
	Limit int
}

// Usage returns the hosts (internal addresses) that hold leases, by
// address. It costs O(h log h) for h hosts.
func (t *Table) Usage() []HostUsage {
	t.mu.Lock()
	out := make([]HostUsage, 0, len(t.byClient))
	for a, c := range t.byClient {
		out = append(out, HostUsage{Host: a, Leases: c.count(), Limit: t.policy.MaxPerHost})
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b HostUsage) int { return a.Host.Compare(b.Host) })
	return out
}

// TransactionSizeBounds returns the upper bounds of the buckets of
// Counters.TransactionSizes: the mappings a kernel transaction carried
// (adds and removes), the last bucket holding the larger ones.
func TransactionSizeBounds() [6]int { return [6]int{1, 4, 16, 64, 256, 1024} }

// Counters are the table's counts since its start.
type Counters struct {
	// Granted, Renewed, Deleted and Expired count leases by Origin (the
	// index is the Origin's value; 0 is unused).
	Granted, Renewed, Deleted, Expired [4]uint64
	// Refused counts refused requests by Event.Reason.
	Refused map[string]uint64
	// Transactions and TransactionFailures count the kernel transactions
	// (Firewall.Apply and Reconcile) and those that failed;
	// TransactionSizes counts the transactions by size, in the buckets of
	// TransactionSizeBounds and one more for the larger ones, and
	// TransactionMappings sums their sizes.
	Transactions, TransactionFailures uint64
	TransactionSizes                  [7]uint64
	TransactionMappings               uint64
	// JournalCommits and JournalFailures count the state file's writes
	// (Journal.Commit and Replace) and those that failed.
	JournalCommits, JournalFailures uint64
}

// Counters returns the table's counters. Refused holds every reason of a
// refusal (ReasonHostQuota ... ReasonBadRequest), zero or not. A grant
// the kernel refused counts as granted and then deleted (ReasonNotApplied);
// the leases Restore brings back count as neither granted nor renewed. A
// Reconcile counts as a transaction of the mappings the kernel must hold.
func (t *Table) Counters() Counters {
	var c Counters
	t.mu.Lock()
	c.Granted, c.Renewed, c.Deleted, c.Expired = t.counts.granted, t.counts.renewed, t.counts.deleted, t.counts.expired
	refused := t.counts.refused
	t.mu.Unlock()
	c.Refused = make(map[string]uint64, len(refused))
	for r, n := range refused {
		c.Refused[refusal(r).String()] = n
	}
	t.commit.counts.fill(&c)
	return c
}

// LeaseCounts returns how many leases the table holds of each protocol,
// by Origin (the index is the Origin's value; 0 is unused): what a metrics
// scrape needs, counted under the lock without copying a lease (Leases
// copies every one, megabytes at 65,536).
func (t *Table) LeaseCounts() map[Protocol][4]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[Protocol][4]int, 2)
	count := func(id leaseID) {
		e := t.store.get(id)
		if int(e.origin) < 4 {
			c := out[e.proto]
			c[e.origin]++
			out[e.proto] = c
		}
	}
	for _, id := range t.byExternal {
		count(id)
	}
	for _, id := range t.pinholes.byID {
		count(id)
	}
	return out
}
