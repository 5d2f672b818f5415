// Package conntrack deletes the connection tracking entries of port mappings
// that stopped holding: removed, expired, or moved to another internal
// endpoint.
//
// Linux NAT decides the translation of a connection on its first packet and
// keeps it in the connection's conntrack entry until the entry ends. Deleting
// a mapping's rules therefore stops new connections only: a UDP flow whose
// sender keeps sending never goes idle, so it keeps reaching the old internal
// host, and the port's next holder never receives it. Deleting the entry
// makes the flow's next packet start a new one, which the rules of that
// moment translate.
//
// An entry used the mapping (protocol P, external port E, internal endpoint
// I) when it is of protocol P and
//   - inbound or hairpinned (RFC 6887 §11.4): a destination NAT translated
//     it, its original destination port is E and its reply comes from I;
//   - outbound (RFC 4787 REQ-1, RFC 6887 §11.1): a source NAT translated it,
//     it came from I and its reply goes to port E.
//
// A flow that keeps sending to an external port while no mapping holds it
// (between a deletion and the port's next grant) gets an entry without
// translation, which would keep it from the port's next holder. When a
// mapping is granted, the entries of its protocol and external port that no
// NAT translated and that got no answer are deleted too.
//
// Nothing else is deleted: not the flows of other mappings, nor traffic that
// no mapping translated and that was answered. The package talks to the kernel over netlink
// (github.com/ti-mo/conntrack), never through a conntrack process.
package conntrack

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	nfct "github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"

	"github.com/portlease/portlease/gateway"
)

// Changes are the mappings a transaction changed whose connections must
// follow the new rules.
type Changes struct {
	// Ended are the mappings removed, or moved to another internal
	// endpoint, as they were: the entries that used them are deleted. Their
	// Protocol, ExternalPort and Internal fields are used.
	Ended []gateway.Mapping
	// Granted are the mappings added for an external port that may have
	// been reached while nothing held it: the entries of its protocol that
	// reached that port untranslated and got no answer are deleted, so that
	// their next packets take the mapping. Their Protocol and ExternalPort
	// fields are used, and the family of Internal when it is valid.
	Granted []gateway.Mapping
	// Closed are the pinholes removed (RFC 6887 §11: inbound traffic to an
	// IPv6 endpoint, untranslated): the entries of connections that came
	// in to them are deleted, those the endpoint opened itself are kept.
	// Their Protocol and Internal fields are used.
	Closed []gateway.Mapping
	// Filtered are pinholes and IPv4 mappings whose filters changed
	// (RFC 6887 §13.3), with the filters they have now, not empty: the
	// entries of connections that came in to them from a peer none of the
	// filters admits are deleted. Their Protocol, Internal, Filters and,
	// for a mapping (not Pinhole), ExternalPort fields are used.
	Filtered []gateway.Mapping
}

// Forget deletes the conntrack entries of the changes c, in the network
// namespace of file descriptor netns (0 means the caller's own), and returns
// how many it deleted, over a netlink connection of its own (see
// Conn.Forget). It does nothing when c is empty.
func Forget(netns int, c Changes) (int, error) {
	if newMatcher(c).empty() {
		return 0, nil
	}
	conn, err := Dial(netns)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.Forget(c)
}

// Conn is a netlink connection to the conntrack table of a network
// namespace, for callers that forget flows often. It is not safe for
// concurrent use.
type Conn struct {
	c *nfct.Conn
}

// Dial opens a Conn in the network namespace of file descriptor netns (0
// means the caller's own).
func Dial(netns int) (*Conn, error) {
	c, err := nfct.Dial(&netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("conntrack: open netlink: %w", err)
	}
	return &Conn{c: c}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Forget deletes the conntrack entries of the changes c and returns how
// many it deleted. It does nothing when c is empty.
//
// It reads the table in one dump, filtered by the kernel to the address
// family of the mappings, and deletes the entries that match. An entry that
// ends on its own meanwhile is not an error. When some deletions fail, the
// others still happen: the count says how many did.
func (c *Conn) Forget(ch Changes) (int, error) {
	m := newMatcher(ch)
	if m.empty() {
		return 0, nil
	}
	conn := c.c
	flows, err := conn.DumpFilter(nfct.NewFilter().Family(m.family), nil)
	if err != nil {
		return 0, fmt.Errorf("conntrack: dump: %w", err)
	}
	n := 0
	var errs []error
	for _, f := range flows {
		if !m.matches(f) {
			continue
		}
		// The original tuple and the zone identify an entry; the reply
		// tuple goes along only because the library takes the message's
		// family from both tuples (IPv4 unless both are IPv6).
		err := conn.Delete(nfct.Flow{TupleOrig: f.TupleOrig, TupleReply: f.TupleReply, Zone: f.Zone})
		switch {
		case err == nil:
			n++
		case errors.Is(err, unix.ENOENT):
			// It ended between the dump and the deletion.
		default:
			errs = append(errs, fmt.Errorf("delete %v: %w", f.TupleOrig, err))
		}
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("conntrack: %d of %d deletions failed: %w", len(errs), n+len(errs), errors.Join(errs...))
	}
	return n, nil
}

// flowKey is a mapping as an entry shows it: protocol, external port and
// internal endpoint, with an IPv4 address in its 4-byte form.
type flowKey struct {
	proto    uint8
	eport    uint16
	internal netip.AddrPort
}

// portKey is an external port of a protocol.
type portKey struct {
	proto uint8
	eport uint16
}

// pinKey is a pinhole as an entry shows it: protocol and internal
// endpoint.
type pinKey struct {
	proto    uint8
	internal netip.AddrPort
}

// matcher recognises the entries of a set of changes.
type matcher struct {
	ended   map[flowKey]struct{}
	granted map[portKey]struct{}
	closed  map[pinKey]struct{}
	// filteredPins and filteredMaps hold the filters of the pinholes and
	// mappings whose filters changed.
	filteredPins map[pinKey][]gateway.Filter
	filteredMaps map[flowKey][]gateway.Filter
	// family is that of the mappings' internal addresses, or unspecified
	// when they mix IPv4 and IPv6.
	family netfilter.ProtoFamily
}

// newMatcher returns the matcher of the changes c. Ended mappings without
// an internal address are skipped; granted ones without one make the family
// unspecified.
func newMatcher(c Changes) matcher {
	m := matcher{
		ended:        make(map[flowKey]struct{}, len(c.Ended)),
		granted:      make(map[portKey]struct{}, len(c.Granted)),
		closed:       make(map[pinKey]struct{}, len(c.Closed)),
		filteredPins: make(map[pinKey][]gateway.Filter),
		filteredMaps: make(map[flowKey][]gateway.Filter),
	}
	var v4, v6 bool
	note := func(addr netip.Addr) {
		v4 = v4 || addr.Is4()
		v6 = v6 || addr.Is6()
	}
	for _, mp := range c.Ended {
		addr := mp.Internal.Addr().Unmap()
		if !addr.IsValid() {
			continue
		}
		note(addr)
		k := flowKey{uint8(mp.Protocol), mp.ExternalPort, netip.AddrPortFrom(addr, mp.Internal.Port())}
		m.ended[k] = struct{}{}
	}
	for _, mp := range c.Granted {
		if addr := mp.Internal.Addr().Unmap(); addr.IsValid() {
			note(addr)
		} else {
			v4, v6 = true, true
		}
		m.granted[portKey{uint8(mp.Protocol), mp.ExternalPort}] = struct{}{}
	}
	for _, mp := range c.Closed {
		if addr := mp.Internal.Addr(); addr.IsValid() {
			note(addr.Unmap())
			m.closed[pinKey{uint8(mp.Protocol), netip.AddrPortFrom(addr.Unmap(), mp.Internal.Port())}] = struct{}{}
		}
	}
	for _, mp := range c.Filtered {
		addr := mp.Internal.Addr().Unmap()
		if !addr.IsValid() || len(mp.Filters) == 0 {
			continue
		}
		note(addr)
		ep := netip.AddrPortFrom(addr, mp.Internal.Port())
		if mp.Pinhole {
			m.filteredPins[pinKey{uint8(mp.Protocol), ep}] = mp.Filters
		} else {
			m.filteredMaps[flowKey{uint8(mp.Protocol), mp.ExternalPort, ep}] = mp.Filters
		}
	}
	switch {
	case v4 && !v6:
		m.family = netfilter.ProtoIPv4
	case v6 && !v4:
		m.family = netfilter.ProtoIPv6
	default:
		m.family = netfilter.ProtoUnspec
	}
	return m
}

// empty reports whether m matches nothing.
func (m matcher) empty() bool {
	return len(m.ended)+len(m.granted)+len(m.closed)+len(m.filteredPins)+len(m.filteredMaps) == 0
}

// matches reports whether entry f is one of the matcher's.
func (m matcher) matches(f nfct.Flow) bool {
	orig, reply := f.TupleOrig, f.TupleReply
	proto := orig.Proto.Protocol
	remote := netip.AddrPortFrom(orig.IP.SourceAddress.Unmap(), orig.Proto.SourcePort)
	if f.Status.DstNAT() {
		from := netip.AddrPortFrom(reply.IP.SourceAddress.Unmap(), reply.Proto.SourcePort)
		if _, ok := m.ended[flowKey{proto, orig.Proto.DestinationPort, from}]; ok {
			return true
		}
		if fs, ok := m.filteredMaps[flowKey{proto, orig.Proto.DestinationPort, from}]; ok && !admits(fs, remote) {
			return true
		}
	}
	if f.Status&(nfct.StatusDstNAT|nfct.StatusSrcNAT) == 0 {
		to := pinKey{proto, netip.AddrPortFrom(orig.IP.DestinationAddress.Unmap(), orig.Proto.DestinationPort)}
		if _, ok := m.closed[to]; ok {
			return true
		}
		if fs, ok := m.filteredPins[to]; ok && !admits(fs, remote) {
			return true
		}
	}
	if f.Status.SrcNAT() {
		from := netip.AddrPortFrom(orig.IP.SourceAddress.Unmap(), orig.Proto.SourcePort)
		if _, ok := m.ended[flowKey{proto, reply.Proto.DestinationPort, from}]; ok {
			return true
		}
	}
	if f.Status&(nfct.StatusDstNAT|nfct.StatusSrcNAT|nfct.StatusSeenReply) == 0 {
		if _, ok := m.granted[portKey{proto, orig.Proto.DestinationPort}]; ok {
			return true
		}
	}
	return false
}

// admits reports whether one of the filters fs admits the remote peer.
func admits(fs []gateway.Filter, remote netip.AddrPort) bool {
	for _, f := range fs {
		p := f.Remote
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Contains(remote.Addr()) && (f.Port == 0 || f.Port == remote.Port()) {
			return true
		}
	}
	return false
}
