package nftfw

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/portlease/portlease/gateway"
)

// maxElemsPerMessage bounds the elements of one netlink message: a message
// carries its elements in one attribute, whose length is 16 bits. An element
// takes at most 48 bytes.
const maxElemsPerMessage = 1024

// portProtocols returns the transport protocols whose header starts with
// the source and destination ports, the only ones a mapping can be made for:
// TCP, UDP, DCCP, SCTP and UDP-Lite.
func portProtocols() []gateway.Protocol {
	return []gateway.Protocol{gateway.TCP, gateway.UDP, 33, 132, 136}
}

func isPortProtocol(p gateway.Protocol) bool {
	return slices.Contains(portProtocols(), p)
}

// entry is a mapping the backend holds.
type entry struct {
	m gateway.Mapping
	// deadline is when the kernel timeout of its elements ends; zero means
	// they have none.
	deadline time.Time
}

// endpoint is an internal endpoint (protocol, address, port) with mappings.
// Several mappings may share one, but its outbound element can hold only one
// external port: that of the oldest mapping still there.
type endpoint struct {
	// users are the external ports of the endpoint's mappings, oldest first.
	users []uint16
	// installed is the external port in the endpoint's outbound element;
	// zero means there is none.
	installed uint16
}

// index is what the backend installed: what the kernel holds, except for
// elements the kernel has since timed out.
type index struct {
	in  map[inKey]entry
	out map[outKey]endpoint
}

func newIndex() index {
	return index{in: make(map[inKey]entry), out: make(map[outKey]endpoint)}
}

// gone lists elements that the index holds but the kernel no longer does
// (timed out), found after a transaction failed with ENOENT.
type gone struct {
	in  map[inKey]bool
	out map[outKey]bool
}

// plan is one transaction: the elements to delete and add, and the index
// entries to update once it has been committed.
type plan struct {
	delIn, delOut, addIn, addOut []nftables.SetElement

	keys    []inKey          // touched mappings, in order
	final   map[inKey]*entry // their entries after the transaction; nil: removed
	eps     []outKey         // touched endpoints, in order
	finalEP map[outKey]endpoint
}

// Apply removes the mappings in remove and then adds those in add, in one
// netlink transaction: either all of it takes effect or none does. A mapping
// is identified by (Protocol, ExternalPort); only those two fields of a
// mapping to remove are used. Removing a mapping the backend does not hold
// is not an error; removing and adding the same key replaces it (a renewal,
// which also restarts its kernel timeout), and so does adding a key that is
// held already.
//
// An internal address must be IPv4 (IPv4-mapped IPv6 is accepted); IPv6
// returns ErrIPv6. The context is checked before the transaction starts;
// netlink itself cannot be cancelled.
func (f *Firewall) Apply(ctx context.Context, add, remove []gateway.Mapping) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	add, err := normalize(add)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	var absent gone
	for attempt := 0; ; attempt++ {
		p := f.plan(time.Now(), add, remove, absent)
		err := f.commit(p)
		if err == nil {
			f.adopt(p)
			f.log.Debug("nftables mappings applied", "add", len(add), "remove", len(remove),
				"elements", len(p.delIn)+len(p.delOut)+len(p.addIn)+len(p.addOut), "held", len(f.idx.in))
			return nil
		}
		// ENOENT: an element to delete is no longer in the kernel, which
		// timed it out. Find which, and try again without deleting them.
		if attempt > 0 || !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("nftfw: apply %d additions and %d removals: %w", len(add), len(remove), err)
		}
		absent, err = f.findGone(p)
		if err != nil {
			return fmt.Errorf("nftfw: apply %d additions and %d removals: %w", len(add), len(remove), err)
		}
		f.log.Warn("kernel timed out mappings before the lease table did",
			"inbound", len(absent.in), "outbound", len(absent.out))
	}
}

// normalize checks the mappings to add and returns them with IPv4-mapped
// internal addresses unmapped.
func normalize(add []gateway.Mapping) ([]gateway.Mapping, error) {
	out := make([]gateway.Mapping, len(add))
	for i, m := range add {
		switch {
		case !isPortProtocol(m.Protocol):
			return nil, fmt.Errorf("nftfw: mapping %v: protocol without ports", m.Protocol)
		case m.ExternalPort == 0 || m.Internal.Port() == 0:
			return nil, fmt.Errorf("nftfw: mapping %v %d -> %v: port 0", m.Protocol, m.ExternalPort, m.Internal)
		case m.Internal.Addr().Is6() && !m.Internal.Addr().Is4In6():
			return nil, fmt.Errorf("%w: %v %d -> %v", ErrIPv6, m.Protocol, m.ExternalPort, m.Internal)
		case !m.Internal.Addr().Unmap().Is4() || m.Internal.Addr().Unmap().IsUnspecified():
			return nil, fmt.Errorf("nftfw: mapping %v %d -> %v: bad internal address", m.Protocol, m.ExternalPort, m.Internal)
		case m.Lifetime < 0:
			return nil, fmt.Errorf("nftfw: mapping %v %d -> %v: negative lifetime", m.Protocol, m.ExternalPort, m.Internal)
		}
		m.Internal = netip.AddrPortFrom(m.Internal.Addr().Unmap(), m.Internal.Port())
		out[i] = m
	}
	return out, nil
}

// timeout returns the kernel timeout for a mapping with lifetime l, in whole
// milliseconds, or zero for none.
func (f *Firewall) timeout(l time.Duration) time.Duration {
	if l <= 0 {
		return 0
	}
	t := l + f.grace
	if t > maxKernelTimeout {
		return 0
	}
	return (t + time.Millisecond - 1).Truncate(time.Millisecond)
}

// plan works out the transaction for add and remove from the index, without
// changing it. Elements listed in absent are not deleted.
func (f *Firewall) plan(now time.Time, add, remove []gateway.Mapping, absent gone) *plan {
	p := &plan{
		final:   make(map[inKey]*entry, len(add)+len(remove)),
		finalEP: make(map[outKey]endpoint),
	}
	renewed := make(map[inKey]bool, len(add))
	touch := func(k inKey) {
		if _, ok := p.final[k]; !ok {
			p.final[k] = nil
			p.keys = append(p.keys, k)
		}
	}
	for _, m := range remove {
		k := keyOf(m)
		touch(k)
		p.final[k] = nil
	}
	for _, m := range add {
		k := keyOf(m)
		touch(k)
		e := &entry{m: m}
		if t := f.timeout(m.Lifetime); t > 0 {
			e.deadline = now.Add(t)
		}
		p.final[k] = e
		renewed[k] = true
	}

	// The inbound map: delete what is held and changes, add what is new.
	epSeen := make(map[outKey]bool)
	touchEP := func(ep outKey) {
		if !epSeen[ep] {
			epSeen[ep] = true
			p.eps = append(p.eps, ep)
		}
	}
	for _, k := range p.keys {
		old, held := f.idx.in[k]
		e := p.final[k]
		if held {
			touchEP(endpointOf(old.m))
			if !absent.in[k] {
				p.delIn = append(p.delIn, nftables.SetElement{Key: k.bytes()})
			}
		}
		if e != nil {
			touchEP(endpointOf(e.m))
			p.addIn = append(p.addIn, nftables.SetElement{
				Key:     k.bytes(),
				Val:     inboundData(e.m.Internal),
				Timeout: untilDeadline(now, e.deadline),
			})
		}
	}

	// The outbound map: one element per endpoint, for its oldest mapping.
	added := make(map[outKey][]uint16) // touched mappings by final endpoint, in order
	for _, k := range p.keys {
		if e := p.final[k]; e != nil {
			ep := endpointOf(e.m)
			added[ep] = append(added[ep], k.eport)
		}
	}
	for _, ep := range p.eps {
		old := f.idx.out[ep]
		var st endpoint
		for _, u := range old.users {
			k := inKey{ep.proto, u}
			if e, touched := p.final[k]; !touched || (e != nil && endpointOf(e.m) == ep) {
				st.users = append(st.users, u)
			}
		}
		for _, u := range added[ep] {
			if !slices.Contains(st.users, u) {
				st.users = append(st.users, u)
			}
		}
		switch {
		case old.installed != 0 && slices.Contains(st.users, old.installed):
			st.installed = old.installed
		case len(st.users) > 0:
			st.installed = st.users[0]
		}
		ownerRenewed := st.installed != 0 && renewed[inKey{ep.proto, st.installed}]
		inKernel := old.installed != 0 && !absent.out[ep]
		if inKernel && (st.installed != old.installed || ownerRenewed) {
			p.delOut = append(p.delOut, nftables.SetElement{Key: ep.bytes()})
			inKernel = false
		}
		if st.installed != 0 && !inKernel {
			owner, ok := p.final[inKey{ep.proto, st.installed}]
			if !ok {
				o := f.idx.in[inKey{ep.proto, st.installed}]
				owner = &o
			}
			p.addOut = append(p.addOut, nftables.SetElement{
				Key:     ep.bytes(),
				Val:     outboundData(st.installed),
				Timeout: untilDeadline(now, owner.deadline),
			})
		}
		p.finalEP[ep] = st
	}
	return p
}

// untilDeadline returns the kernel timeout that ends at deadline, in whole
// milliseconds and at least one, or zero for no deadline.
func untilDeadline(now, deadline time.Time) time.Duration {
	if deadline.IsZero() {
		return 0
	}
	d := deadline.Sub(now)
	return max((d + time.Millisecond - 1).Truncate(time.Millisecond), time.Millisecond)
}

// commit sends the plan as one transaction: deletions first, then additions.
func (f *Firewall) commit(p *plan) error {
	steps := []struct {
		set   *nftables.Set
		elems []nftables.SetElement
		del   bool
	}{
		{f.rs.inbound, p.delIn, true},
		{f.rs.outbound, p.delOut, true},
		{f.rs.inbound, p.addIn, false},
		{f.rs.outbound, p.addOut, false},
	}
	for _, s := range steps {
		for chunk := range slices.Chunk(s.elems, maxElemsPerMessage) {
			var err error
			if s.del {
				err = f.conn.SetDeleteElements(s.set, chunk)
			} else {
				err = f.conn.SetAddElements(s.set, chunk)
			}
			if err != nil {
				// Part of the batch is queued: drop it with the
				// connection.
				return errors.Join(err, f.resetConn())
			}
		}
	}
	return f.conn.Flush()
}

// adopt records a committed plan in the index.
func (f *Firewall) adopt(p *plan) {
	for _, k := range p.keys {
		if e := p.final[k]; e != nil {
			f.idx.in[k] = *e
		} else {
			delete(f.idx.in, k)
		}
	}
	for _, ep := range p.eps {
		if st := p.finalEP[ep]; len(st.users) > 0 {
			f.idx.out[ep] = st
		} else {
			delete(f.idx.out, ep)
		}
	}
}

// findGone reads both maps from the kernel and returns the elements that p
// deletes but the kernel does not hold.
func (f *Firewall) findGone(p *plan) (gone, error) {
	g := gone{in: make(map[inKey]bool), out: make(map[outKey]bool)}
	ins, err := f.conn.GetSetElements(f.rs.inbound)
	if err != nil {
		return g, fmt.Errorf("read map %s: %w", inboundName, err)
	}
	held := make(map[inKey]bool, len(ins))
	for _, e := range ins {
		m, err := decodeInbound(e.Key, e.Val)
		if err != nil {
			return g, err
		}
		held[keyOf(m)] = true
	}
	outs, err := f.conn.GetSetElements(f.rs.outbound)
	if err != nil {
		return g, fmt.Errorf("read map %s: %w", outboundName, err)
	}
	heldOut := make(map[outKey]bool, len(outs))
	for _, e := range outs {
		ep, err := decodeOutboundKey(e.Key)
		if err != nil {
			return g, err
		}
		heldOut[ep] = true
	}
	for _, k := range p.keys {
		if _, ok := f.idx.in[k]; ok && !held[k] {
			g.in[k] = true
		}
	}
	for _, ep := range p.eps {
		if f.idx.out[ep].installed != 0 && !heldOut[ep] {
			g.out[ep] = true
		}
	}
	return g, nil
}
