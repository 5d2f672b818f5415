package gateway

import (
	"errors"
	"net/netip"
	"time"
)

// The words of Event.Reason and of Counters.Refused. A deletion says who
// deleted; a refusal says why, in the words of the refusal log
// (refusals.go) and of the errors (errors.go); an expiry, a grant and a
// renewal have none.
const (
	// ReasonClient: the lease's client, or a UPnP control point, deleted it
	// (NAT-PMP lifetime 0, PCP deletion, UPnP DeletePortMapping,
	// DeletePortMappingRange and DeletePinhole).
	ReasonClient = "client"
	// ReasonOperator: the operator deleted it (DeleteByOperator,
	// DeletePinholeByOperator, DeleteHost: the control socket, the status
	// page).
	ReasonOperator = "operator"
	// ReasonRules: a new policy no longer allows it (Reconfigure: a reload
	// of the configuration).
	ReasonRules = "rules"
	// ReasonLANGone: its internal address lies in a LAN the gateway no
	// longer serves (DeleteInside).
	ReasonLANGone = "lan gone"
	// ReasonNotApplied: a grant the kernel or the journal refused, taken
	// back from the table (Map returned ErrFirewall or ErrJournal).
	ReasonNotApplied = "not applied"

	// ReasonHostQuota: ErrHostQuota, the internal address holds
	// Policy.MaxPerHost leases.
	ReasonHostQuota = "host at its share"
	// ReasonOutOfResources: ErrOutOfResources, no allowed port is free, the
	// table holds Policy.MaxLeases, or every pinhole UniqueID is in use.
	ReasonOutOfResources = "out of resources"
	// ReasonNotAllowed: ErrNotAuthorized, the permission rules forbid it.
	ReasonNotAllowed = "not allowed"
	// ReasonConflict: ErrConflict, the exact port asked for is another
	// endpoint's, or a renewal's filters or port differ from the lease's.
	ReasonConflict = "conflict"
	// ReasonNonceMismatch: ErrNonceMismatch, a PCP mapping named without
	// its nonce.
	ReasonNonceMismatch = "nonce mismatch"
	// ReasonBadRequest: ErrBadRequest, a malformed request.
	ReasonBadRequest = "bad request"
)

// refusal numbers the reasons of a refused Map, to count them in an array
// rather than a map on the request path.
type refusal uint8

const (
	refusalHostQuota refusal = iota
	refusalOutOfResources
	refusalNotAllowed
	refusalConflict
	refusalNonceMismatch
	refusalBadRequest
	refusals // how many there are
)

func (r refusal) String() string {
	switch r {
	case refusalHostQuota:
		return ReasonHostQuota
	case refusalOutOfResources:
		return ReasonOutOfResources
	case refusalNotAllowed:
		return ReasonNotAllowed
	case refusalConflict:
		return ReasonConflict
	case refusalNonceMismatch:
		return ReasonNonceMismatch
	}
	return ReasonBadRequest
}

// refusalOf returns the refusal that err of Map is, or false for an error
// that refuses nothing (a closed table, a cancelled context, a kernel
// failure).
func refusalOf(err error) (refusal, bool) {
	switch {
	case errors.Is(err, ErrHostQuota):
		return refusalHostQuota, true
	case errors.Is(err, ErrOutOfResources):
		return refusalOutOfResources, true
	case errors.Is(err, ErrNotAuthorized):
		return refusalNotAllowed, true
	case errors.Is(err, ErrConflict):
		return refusalConflict, true
	case errors.Is(err, ErrNonceMismatch):
		return refusalNonceMismatch, true
	case errors.Is(err, ErrBadRequest):
		return refusalBadRequest, true
	}
	return 0, false
}

// removal says why the table removes leases: the event it records, its
// Reason and the log's message.
type removal uint8

const (
	removedByClient removal = iota
	removedByOperator
	removedByRules
	removedLANGone
	removedNotApplied
	removedExpired
)

func (r removal) kind() EventKind {
	if r == removedExpired {
		return EventExpired
	}
	return EventDeleted
}

func (r removal) reason() string {
	switch r {
	case removedByClient:
		return ReasonClient
	case removedByOperator:
		return ReasonOperator
	case removedByRules:
		return ReasonRules
	case removedLANGone:
		return ReasonLANGone
	case removedNotApplied:
		return ReasonNotApplied
	}
	return ""
}

// message is the log's record of the removal.
func (r removal) message() string {
	switch r {
	case removedByOperator:
		return "deleted by the operator"
	case removedByRules:
		return "removed by the new configuration"
	case removedLANGone:
		return "removed with its LAN"
	case removedNotApplied:
		return "taken back"
	case removedExpired:
		return "expired"
	}
	return "deleted"
}

// eventRing keeps the last EventBacklog events, written in place under the
// table's lock: an event costs a copy into the ring, no allocation.
type eventRing struct {
	seq uint64 // of the newest event; 0: none yet
	buf [EventBacklog]Event
}

// add records an event of kind about lease l. t.mu must be held.
func (r *eventRing) add(now time.Time, kind EventKind, l *Lease, requester netip.Addr, reason string) {
	r.seq++
	// Field by field: one copy of the lease, no temporary Event.
	e := &r.buf[(r.seq-1)%EventBacklog]
	e.Seq, e.Time, e.Kind, e.Requester, e.Reason = r.seq, now, kind, requester, reason
	e.Lease = *l
}

// since copies out the events after seq after, oldest first.
func (r *eventRing) since(after uint64) []Event {
	if after >= r.seq {
		return nil
	}
	first := after + 1
	if r.seq > EventBacklog && first <= r.seq-EventBacklog {
		first = r.seq - EventBacklog + 1
	}
	out := make([]Event, 0, r.seq-first+1)
	for s := first; s <= r.seq; s++ {
		out = append(out, r.buf[(s-1)%EventBacklog])
	}
	return out
}

// addressRing keeps the last AddressHistoryLen external addresses.
type addressRing struct {
	n   uint64 // how many were recorded
	buf [AddressHistoryLen]AddressChange
}

func (r *addressRing) add(now time.Time, a netip.Addr) {
	r.buf[r.n%AddressHistoryLen] = AddressChange{Time: now, Addr: a}
	r.n++
}

// all returns the addresses kept, oldest first.
func (r *addressRing) all() []AddressChange {
	first := uint64(0)
	if r.n > AddressHistoryLen {
		first = r.n - AddressHistoryLen
	}
	out := make([]AddressChange, 0, r.n-first)
	for i := first; i < r.n; i++ {
		out = append(out, r.buf[i%AddressHistoryLen])
	}
	return out
}
