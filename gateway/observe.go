package gateway

import (
	"net/netip"
	"time"
)

// What the table shows of itself to its operator (issue 14): the events of
// the lease table, the external address's history, each host's usage of
// its share, and counters. The control socket, the metrics and the status
// page read them; none of them is on a request's path but as a counter
// increment or an entry written into a ring.
//
// SEAM (issue 14): the types are final; the methods are stubs that helper
// M1 fills in.

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
	// Requester is the address the request came from (zero for an
	// expiry or the operator's deletion).
	Requester netip.Addr
	// Reason says why a request was refused ("host at its share", "out of
	// resources", "not allowed", ...) or who deleted ("client",
	// "operator", "rules"); empty otherwise.
	Reason string
}

// Events returns the events after seq after, oldest first (at most the
// last EventBacklog), and the Seq of the newest event (0: none yet). A
// reader that passes the last Seq it saw gets what is new; one that fell
// more than EventBacklog behind gets the latest EventBacklog.
func (t *Table) Events(after uint64) (events []Event, newest uint64) {
	return nil, 0 // SEAM: M1
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
	return nil // SEAM: M1
}

// HostUsage is one internal address's leases against its share.
type HostUsage struct {
	Host   netip.Addr
	Leases int
	// Limit is the policy's MaxPerHost at the time of the call; 0: none.
	Limit int
}

// Usage returns the hosts (internal addresses) that hold leases, by
// address.
func (t *Table) Usage() []HostUsage {
	return nil // SEAM: M1
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

// Counters returns the table's counters.
func (t *Table) Counters() Counters {
	return Counters{} // SEAM: M1
}
