// Package gateway is the lease core of portleased: one table of port mappings
// shared by every protocol front-end (NAT-PMP, PCP, UPnP IGD), with permission
// rules, external port allocation, lifetimes and expiry, and the epoch.
//
// Its mapping model is PCP's (RFC 6887 §11): an internal address, port and
// protocol, a nonce, an external address and port, a lifetime and an optional
// remote peer. NAT-PMP (RFC 6886) and UPnP IGD mappings are special cases.
//
// The core imports no wire package; front-ends translate wire requests into
// core calls. The kernel side is a Firewall, defined here where it is used.
package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// Protocol is an IP protocol number as assigned by IANA, the value that
// NAT-PMP opcodes and PCP's protocol field stand for (RFC 6887 §11.1).
type Protocol uint8

// The transport protocols a mapping can be made for.
const (
	TCP Protocol = 6
	UDP Protocol = 17
)

// String returns "tcp", "udp" or the protocol number.
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// PortRange is an inclusive range of ports, Low <= High.
type PortRange struct {
	Low, High uint16
}

// Contains reports whether port lies within r.
func (r PortRange) Contains(port uint16) bool { return port >= r.Low && port <= r.High }

// Size is the number of ports in r.
func (r PortRange) Size() int { return int(r.High) - int(r.Low) + 1 }

// String formats r as "LOW-HIGH", or "PORT" when it holds one port.
func (r PortRange) String() string {
	if r.Low == r.High {
		return fmt.Sprintf("%d", r.Low)
	}
	return fmt.Sprintf("%d-%d", r.Low, r.High)
}

// Rule is one permission rule in miniupnpd's form
// "allow|deny EXT-PORTS ADDR/MASK INT-PORTS". Rules are checked in order and
// the first one that matches a request decides it.
//
// Requesters, set only on the daemon's default rules, narrows a rule to the
// requests of hosts in that prefix: the default rules of a served LAN apply
// to the hosts of that LAN only, so that a host on one LAN cannot map for
// another LAN's subnet (UPnP with secure mode off, PCP THIRD_PARTY), while
// a rule of the file, without Requesters, keeps its meaning for every host.
// A front-end serves only requests from the subnet they arrived on (the
// source checks), so the requester's prefix is the LAN the request came
// from.
type Rule struct {
	Allow         bool
	ExternalPorts PortRange
	Internal      netip.Prefix
	InternalPorts PortRange
	// Requesters is the prefix the requesting host must be in for the
	// rule to apply to a new request; the zero Prefix: every host.
	Requesters netip.Prefix
}

// appliesTo reports whether the rule applies to a request from requester.
func (r Rule) appliesTo(requester netip.Addr) bool {
	return !r.Requesters.IsValid() || r.Requesters.Contains(requester.Unmap().WithZone(""))
}

// Matches reports whether the rule applies to a mapping of external port
// eport to internal address iaddr and port iport. A rule of one family
// never matches an address of the other (an IPv4-mapped address is
// IPv4); for a pinhole, eport is the internal port.
func (r Rule) Matches(eport uint16, iaddr netip.Addr, iport uint16) bool {
	return r.ExternalPorts.Contains(eport) && r.Internal.Contains(iaddr.Unmap()) && r.InternalPorts.Contains(iport)
}

// String formats the rule as it is written in the configuration file; a
// default rule's Requesters, which the file cannot name, follow in
// parentheses.
func (r Rule) String() string {
	verb := "deny"
	if r.Allow {
		verb = "allow"
	}
	s := fmt.Sprintf("%s %s %s %s", verb, r.ExternalPorts, r.Internal, r.InternalPorts)
	if r.Requesters.IsValid() {
		s += " (requests from " + r.Requesters.String() + ")"
	}
	return s
}

// Filter admits inbound traffic from remote peers (PCP FILTER RFC 6887
// §13.3, PEER §12, UPnP RemoteHost/RemotePort). Remote is a prefix of the
// mapping's family; /0 means any address. Port 0: any port.
type Filter struct {
	Remote netip.Prefix
	Port   uint16
}

// Mapping is what the kernel enforces for one lease: inbound traffic for
// Protocol to ExternalPort on the external address is translated to Internal,
// and outbound traffic from Internal leaves with source port ExternalPort.
type Mapping struct {
	Protocol     Protocol
	ExternalPort uint16 // for a pinhole: equal to Internal.Port()
	Internal     netip.AddrPort
	// Lifetime is how long the lease has left when the change is applied. A
	// backend may use it as a kernel-side timeout that backs up the core's own
	// expiry (the lease table stays the authority); zero means none.
	Lifetime time.Duration
	// Pinhole: Internal is a global IPv6 endpoint; nothing is translated;
	// inbound traffic to it is accepted (forward). A Firewall identifies a
	// pinhole by (Protocol, Internal), an IPv4 mapping by (Protocol,
	// ExternalPort).
	Pinhole bool
	// Filters, when not empty, admit only inbound traffic from the listed
	// peers. The core normalises them: sorted, no duplicates, none covered
	// by another. Empty: any peer. The slice is shared: do not modify it.
	Filters []Filter
}

// Reconciled counts what a reconciliation of the kernel with the lease table
// found and did: mappings the kernel already held as the table says
// (adopted), mappings it lacked (added), and mappings it held that the table
// does not (removed, or replaced when they led elsewhere).
type Reconciled struct {
	Adopted, Added, Removed int
}

// Journal keeps the leases across restarts (a state file). The table writes
// it through the same group commit as the kernel: one Commit per batch.
type Journal interface {
	// Commit records leases granted or changed (put, the whole lease) and
	// leases removed (drop, named by Protocol and ExternalPort, a pinhole
	// by its PinholeID), and returns once they are durable.
	Commit(put, drop []Lease) error
	// Replace rewrites the journal to hold exactly leases, after a Commit
	// failed: the table's next resync brings the journal back to agree
	// with it.
	Replace(leases []Lease) error
}

// Firewall is the kernel side of the lease table: a backend (nftables,
// iptables, pf) that makes the kernel hold what the table says. Backends
// know nothing of protocols; what the kernel must hold for a batch of
// mappings (which mapping owns an endpoint's outbound translation, the
// kernel timeouts) is decided once for every backend by gateway/fwplan.
type Firewall interface {
	// Apply removes the mappings in remove and then adds those in add, as one
	// transaction: either all of it takes effect or none does. A mapping is
	// identified by (Protocol, ExternalPort); removing and adding the same key
	// in one call replaces it (a renewal); a pinhole is identified by
	// (Protocol, Internal). Removing a mapping the kernel does not hold is
	// not an error.
	Apply(ctx context.Context, add, remove []Mapping) error
	// Reconcile makes the kernel hold exactly want, whatever it held
	// before: it adopts what is already right (without interrupting the
	// traffic it carries), adds what is missing, removes the rest, and
	// installs again whatever of its own someone else deleted. The table
	// calls it at start, after a failed transaction and when the kernel
	// was changed behind its back.
	Reconcile(ctx context.Context, want []Mapping) (Reconciled, error)
	// List returns the mappings and pinholes the kernel holds, in no
	// particular order, each Lifetime what is left of its kernel timeout
	// (zero: none).
	List(ctx context.Context) ([]Mapping, error)
	// SetExternalAddress follows the WAN link's address: hairpinned
	// traffic to it is translated, and outbound traffic of mapped
	// endpoints leaves from it. The zero Addr: none (nothing is
	// translated until one is set).
	SetExternalAddress(ctx context.Context, addr netip.Addr) error
	// SetInterfaces names the WAN link and the LAN links (hairpinning)
	// anew, moving the mappings with them in one transaction.
	SetInterfaces(ctx context.Context, external string, internal []string) error
	// Watch calls changed whenever another program changed or deleted
	// what the backend installed (a flushed ruleset or chain, a deleted
	// element), and opened once it watches; a change made between Watch's
	// call and opened is reported too. changed runs one call at a time.
	// Watch returns ctx's error when ctx is done.
	Watch(ctx context.Context, changed, opened func()) error
	// Release lets go of the kernel at exit but leaves the mappings
	// forwarding for the next start to adopt, where the kernel ends each
	// with its own timeout; a backend whose kernel has no timeouts
	// removes everything, as Close does.
	Release() error
	// Close removes everything the backend installed in the kernel. It is
	// safe to call more than once.
	Close() error
}
