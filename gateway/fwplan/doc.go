// Package fwplan decides what the kernel must hold for the lease table's
// mappings, once, for every firewall backend (nftables, iptables, pf). It is
// pure: no kernel, no root, no goroutines, no logging; a backend owns one
// State, guards it with its own mutex and translates each Plan into its
// kernel's language (netlink set elements, iptables-restore lines, pf
// tables).
//
// # What a State keeps
//
// The installed state: what the backend has put into the kernel, except for
// what the kernel has since timed out.
//
//   - Inbound elements, one per IPv4 mapping, by (protocol, external port):
//     the internal endpoint (DNAT target) and the deadline of its kernel
//     timeout.
//   - Outbound elements, one per internal endpoint (protocol, address,
//     port): the external port its outbound traffic leaves with (SNAT
//     keeping the mapped port, endpoint-independent, RFC 4787 REQ-1).
//     Several mappings may share an endpoint but the element holds one
//     port: that of the oldest mapping of the endpoint still there, its
//     owner. The endpoint's mappings form a list, oldest first, linked
//     through the inbound entries by external port (prev, next), with the
//     endpoint holding the first (the owner) and the last. Adding, moving
//     and removing a mapping is O(1), and no map value holds a pointer, so
//     the garbage collector never scans the State (about 52 bytes a
//     mapping: BenchmarkStateAdopt, see State).
//   - Pinholes (IPv6, nothing translated) by (protocol, internal
//     endpoint), with their deadline; the filters (remote peers) of
//     filtered pinholes and filtered IPv4 mappings in a side map, so that
//     the common, unfiltered entry holds no slice.
//   - The vacated keys: IPv4 mappings that committed batches removed and
//     that nothing held since (for Flows.Granted).
//
// Deadlines are nanoseconds after the State's base time, which keeps its
// monotonic clock reading: a step of the wall clock moves none of them. A
// kernel timeout is the lease's lifetime plus Config.TimeoutGrace, rounded
// up to the millisecond; none when the lifetime is zero or the timeout
// would exceed Config.MaxTimeout. The lease table stays the authority; the
// kernel timeout only backs up its expiry.
//
// # Input and output
//
// State.Plan takes one batch of the group commit: the mappings to remove
// and to add (gateway.Mapping, the lease table's own type). Removing and
// adding one key in a batch, or adding a key already held, renews it: its
// elements are written again with a fresh timeout, and it keeps its place
// among the mappings of its endpoint unless it moved to another endpoint
// (then it is the newest there). The result is a Plan: the inbound elements
// to delete and to add, the outbound elements to delete and to add (an
// owner that changes, or is renewed, is a delete and an add of the
// endpoint's element), and the pinhole elements to delete and to add, each
// addition with its kernel timeout from now. Deletions come first in a
// Plan and a key may be both deleted and added: the backend applies the
// whole of it as one transaction (one netlink batch, one iptables-restore
// --noflush run), so that nothing is lost between the two.
//
// Plan changes the State at once and remembers what it overwrote; the
// backend then calls Commit once the kernel took the transaction, or Abort
// when it did not, which puts the State back as it was. Each change costs
// O(1); a batch of one mapping makes no map of its own.
//
// A Plan also carries the batch's Flows, the connections whose conntrack
// entries must go (the meaning and fields of gateway/conntrack.Changes,
// which converts from it; fwplan does not import conntrack): the mappings
// ended (removed, or moved to another endpoint), those granted again for a
// key that an earlier batch vacated, the pinholes closed, and the pinholes
// and mappings whose filters now restrict otherwise. The vacated keys live
// in the State and change at Commit, so Abort has nothing to undo;
// Config.KeepFlows turns all of it off. The backend hands the Flows of a
// committed batch to a conntrack.Forgetter, under its lock, so that they
// reach it in the order of the commits.
//
// Reconciliation (at start, after a failed transaction, after someone else
// flushed the ruleset) starts from the wanted mappings, oldest first as the
// lease table lists them: State.Wanted builds the State that holds exactly
// them (without a journal) and a Plan that adds every element of it. The
// backend reads what the kernel holds, adopts the elements that match (same
// data, timeout within a second of the wanted one), deletes and adds the
// rest, and replaces its State by the wanted one, which keeps the vacated
// keys. The rule for owners is the one Plan follows, so that Apply after
// Reconcile goes on where it left off.
//
// # Backends
//
// gateway.Firewall keeps its Apply(ctx, add, remove) signature: each backend
// holds one State under its own mutex, plans each batch with it and
// translates the Plan. gateway cannot import fwplan's Plan while fwplan
// imports gateway for Mapping, Protocol and Filter, and a backend needs no
// more. What stays in each backend is its kernel's:
//
//   - nftfw (nftables): the element encoding (elements.go, the arena),
//     the checks of what its sets can hold (checkAdd), commit, the retry
//     after ENOENT (an element timed out in the kernel: it drops from the
//     transaction the deletions of elements the kernel no longer holds and
//     sends the rest again), the set layouts of pinholes and filters
//     (pinholeElems, filterElems), and for Reconcile the dumps, the matching
//     of the kernel's elements against Wanted's Plan, commitDiff's batching
//     by send buffer and repairTable.
//   - iptfw (iptables): the rules of its own chains, written as
//     iptables-restore --noflush input from each Plan; iptables has no
//     timeouts, so it ignores the Plan's.
package fwplan
