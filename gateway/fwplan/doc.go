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
//     the garbage collector never scans the index (about 52 bytes a
//     mapping, nftfw's index 51: BenchmarkStateAdopt, see State).
//   - Pinholes (IPv6, nothing translated) by (protocol, internal
//     endpoint), with their deadline; the filters (remote peers) of
//     filtered pinholes and filtered IPv4 mappings in a side map, so that
//     the common, unfiltered entry holds no slice.
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
// Reconciliation (at start, after a failed transaction, after someone else
// flushed the ruleset) starts from the wanted mappings, oldest first as the
// lease table lists them: Wanted plans them into a fresh State, whose Plan
// lists every element the kernel must hold. The backend lists what the
// kernel holds (Firewall.List), adopts the elements that match (same data,
// timeout within a second of the wanted one), deletes and adds the rest,
// and keeps the fresh State. The rule for owners is the one Plan follows,
// so that Apply after Reconcile goes on where it left off.
//
// # The backend seam
//
// gateway.Firewall widens to what every backend must do and what
// cmd/portleased now reaches *nftfw.Firewall for directly:
//
//	type Firewall interface {
//		// Apply commits one planned batch atomically: all of it or nothing.
//		Apply(ctx context.Context, p *fwplan.Plan) error
//		// SetExternalAddress follows the WAN address (hairpin, SNAT).
//		SetExternalAddress(ctx context.Context, addr netip.Addr) error
//		// List returns the elements the kernel holds, for reconciliation.
//		List(ctx context.Context) (fwplan.Elements, error)
//		// Close removes everything the backend installed; safe twice.
//		Close() error
//	}
//
// with the State and the reconciliation diff living above it, in a small
// driver in gateway (or here) shared by the backends, so that the rules of
// what the kernel must hold (owner of an endpoint's outbound element,
// hairpin, companion ports) exist once. The gateway package cannot import
// fwplan's Plan if fwplan imports gateway for Mapping and Protocol; the
// next step therefore either moves Mapping, Protocol and Filter into a leaf
// package both import, or keeps today's Apply(ctx, add, remove) signature
// on gateway.Firewall and has each backend hold a fwplan.State (nftfw's
// index replaced by it). The second is the smaller step and keeps the
// reasons (one rule, no copy of the lease table per backend); the first
// gives the narrower interface. Either way Reconcile's diff against List
// moves out of nftfw into a shared function.
//
// # What moves out of nftfw
//
//   - apply.go: index, entry, plan, change, epChange, positions and the
//     owner decision (planChanges) become State and Plan here; nftfw keeps
//     checkAdd's kernel-specific checks, the element encoding (elements.go,
//     the arena) and commit.
//   - pinhole.go: peerIndex and planPeers become the pinhole part of State
//     and Plan; nftfw keeps the set layouts (pinholeElems, filterElems).
//   - reconcile.go: the plan of the wanted state (x.planChanges from an
//     empty index, wanted) and the counts become Wanted here; nftfw keeps
//     the dumps, repairTable and commitDiff's batching by send buffer.
//   - The retry after ENOENT (an element timed out in the kernel) stays in
//     the backend: it drops from the Plan the deletions of elements the
//     kernel no longer holds and sends the rest again.
package fwplan
