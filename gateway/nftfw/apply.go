package nftfw

import (
	"context"
	"errors"
	"fmt"
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

// entry is a mapping the backend holds, but for its key (an inKey). It
// holds no pointers.
type entry struct {
	// deadline is when the kernel timeout of the mapping's elements ends,
	// in nanoseconds after the index's base; zero means they have none.
	deadline int64
	addr     [4]byte // internal address
	iport    uint16  // internal port
}

// endpoint returns the internal endpoint of e, a mapping of protocol proto.
func (e entry) endpoint(proto gateway.Protocol) outKey {
	return outKey{proto, e.addr, e.iport}
}

// index is what the backend installed: what the kernel holds, except for
// elements the kernel has since timed out. Its keys and values hold no
// pointers, which spares the garbage collector from scanning them, but for
// the rare lists in shared; it takes about 50 bytes a mapping
// (BenchmarkIndexAdopt).
//
// Several mappings may share an internal endpoint, but its outbound element
// can hold only one external port: that of the oldest mapping still there.
type index struct {
	// base is the origin of deadlines. It keeps its monotonic clock
	// reading, so that a step of the wall clock moves no deadline.
	base time.Time
	// in holds the mappings.
	in map[inKey]entry
	// out holds, for each endpoint with mappings, the external port in its
	// outbound element.
	out map[outKey]uint16
	// shared holds, for each endpoint with more than one mapping, their
	// external ports, oldest first. An endpoint with one mapping has no
	// entry: its one port is that in out.
	shared map[outKey][]uint16
}

func newIndex(base time.Time) index {
	return index{
		base:   base,
		in:     make(map[inKey]entry),
		out:    make(map[outKey]uint16),
		shared: make(map[outKey][]uint16),
	}
}

// deadline returns the deadline of a kernel timeout t that starts at now,
// or zero for none (t is zero).
func (x *index) deadline(now time.Time, t time.Duration) int64 {
	if t <= 0 {
		return 0
	}
	// At least 1: a now before base (only tests use one) must not read as
	// no deadline.
	return max(int64(now.Sub(x.base)+t), 1)
}

// untilDeadline returns the kernel timeout that ends at deadline, in whole
// milliseconds and at least one, or zero for no deadline.
func (x *index) untilDeadline(now time.Time, deadline int64) time.Duration {
	if deadline == 0 {
		return 0
	}
	d := time.Duration(deadline) - now.Sub(x.base)
	return max((d + time.Millisecond - 1).Truncate(time.Millisecond), time.Millisecond)
}

// gone lists elements that the index holds but the kernel no longer does
// (timed out), found after a transaction failed with ENOENT.
type gone struct {
	in  map[inKey]bool
	out map[outKey]bool
}

// plan is one transaction: the elements to delete and add, and what the
// index becomes once it has been committed.
type plan struct {
	delIn, delOut, addIn, addOut []nftables.SetElement
	peers                        *peerChange // pinholes and filters; nil for none

	keys  positions[inKey]  // touched mappings, in order
	ins   []change          // by position in keys
	eps   positions[outKey] // touched endpoints, in order
	outs  []epChange        // by position in eps
	users []uint16          // backing of the outs' users
}

// change is what a transaction does to a touched mapping.
type change struct {
	e   entry // the mapping after the transaction, if add
	add bool  // it is added, or renewed; else it is removed
	// del: its inbound element is deleted. It is held, and was not found
	// gone from the kernel.
	del bool
	// oldEP and newEP are the positions of the mapping's endpoint before
	// and after the transaction, -1 for none; next is the position of the
	// next mapping added to newEP, -1 for none.
	oldEP, newEP, next int32
}

// epChange is what a transaction does to a touched endpoint.
type epChange struct {
	// users are the external ports of the endpoint's mappings after the
	// transaction, oldest first.
	users []uint16
	// installed is the port its outbound element holds after the
	// transaction; zero means it has none.
	installed uint16
	// del and add: its outbound element is deleted, added; deadline is that
	// of the added element, its owner's.
	del, add bool
	deadline int64
	// first and last are the positions of the mappings added to the
	// endpoint (linked by change.next), -1 for none.
	first, last int32
}

// Apply removes the mappings in remove and then adds those in add, in one
// netlink transaction: either all of it takes effect or none does. A mapping
// is identified by (Protocol, ExternalPort); only those two fields of a
// mapping to remove are used. Removing a mapping the backend does not hold
// is not an error; removing and adding the same key replaces it (a renewal,
// which also restarts its kernel timeout), and so does adding a key that is
// held already.
//
// A pinhole (Mapping.Pinhole: an IPv6 internal endpoint, nothing
// translated) is identified by (Protocol, Internal) instead; every other
// mapping's internal address must be IPv4 (IPv4-mapped IPv6 is accepted),
// and one that would translate to IPv6 returns ErrIPv6. The context is
// checked before the transaction starts; netlink itself cannot be
// cancelled.
func (f *Firewall) Apply(ctx context.Context, add, remove []gateway.Mapping) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkAdd(add); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	add4, remove4 := ipv4Only(add), ipv4Only(remove)
	var absent gone
	now := time.Now()
	peers := f.planPeers(now, add, remove)
	for attempt := 0; ; attempt++ {
		p := f.idx.plan(now, f.grace, add4, remove4, absent)
		p.peers = peers
		err := f.commit(p)
		if err == nil {
			flows := f.flowChanges(p)
			f.peerFlowChanges(peers, add, &flows)
			f.idx.adopt(p)
			f.peers.adopt(peers)
			f.log.Debug("nftables mappings applied", "add", len(add), "remove", len(remove),
				"elements", len(p.delIn)+len(p.delOut)+len(p.addIn)+len(p.addOut)+peers.elements(), "held", len(f.idx.in))
			f.forgetFlows(flows)
			return nil
		}
		// ENOENT: an element to delete is no longer in the kernel, which
		// timed it out. Find which, and try again without deleting them.
		if attempt > 0 || !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("nftfw: apply %d additions and %d removals: %w", len(add), len(remove), err)
		}
		absent, err = f.findGone(p)
		if err == nil {
			err = f.pruneGone(peers)
		}
		if err != nil {
			return fmt.Errorf("nftfw: apply %d additions and %d removals: %w", len(add), len(remove), err)
		}
		f.log.Warn("kernel timed out mappings before the lease table did",
			"inbound", len(absent.in), "outbound", len(absent.out))
	}
}

// ipv4Only returns the mappings of ms that are not pinholes: ms itself
// when there are none.
func ipv4Only(ms []gateway.Mapping) []gateway.Mapping {
	if !slices.ContainsFunc(ms, func(m gateway.Mapping) bool { return m.Pinhole }) {
		return ms
	}
	var out []gateway.Mapping
	for _, m := range ms {
		if !m.Pinhole {
			out = append(out, m)
		}
	}
	return out
}

// checkAdd checks the mappings to add. The index and the elements take an
// IPv4-mapped internal address as the IPv4 address it maps.
func checkAdd(add []gateway.Mapping) error {
	for _, m := range add {
		if m.Pinhole {
			if err := checkPinhole(m); err != nil {
				return err
			}
		}
		switch {
		case m.Pinhole:
			if !isPortProtocol(m.Protocol) || m.Internal.Port() == 0 || m.Lifetime < 0 {
				return fmt.Errorf("nftfw: pinhole %v %v: bad protocol, port or lifetime", m.Protocol, m.Internal)
			}
			continue
		case len(m.Filters) > 0:
			if err := checkFilters4(m); err != nil {
				return err
			}
		}
		switch {
		case !isPortProtocol(m.Protocol):
			return fmt.Errorf("nftfw: mapping %v: protocol without ports", m.Protocol)
		case m.ExternalPort == 0 || m.Internal.Port() == 0:
			return fmt.Errorf("nftfw: mapping %v %d -> %v: port 0", m.Protocol, m.ExternalPort, m.Internal)
		case m.Internal.Addr().Is6() && !m.Internal.Addr().Is4In6():
			return fmt.Errorf("%w: %v %d -> %v", ErrIPv6, m.Protocol, m.ExternalPort, m.Internal)
		case !m.Internal.Addr().Unmap().Is4() || m.Internal.Addr().Unmap().IsUnspecified():
			return fmt.Errorf("nftfw: mapping %v %d -> %v: bad internal address", m.Protocol, m.ExternalPort, m.Internal)
		case m.Lifetime < 0:
			return fmt.Errorf("nftfw: mapping %v %d -> %v: negative lifetime", m.Protocol, m.ExternalPort, m.Internal)
		}
	}
	return nil
}

// kernelTimeout returns the kernel timeout for a mapping with lifetime l
// and the given grace, in whole milliseconds, or zero for none.
func kernelTimeout(l, grace time.Duration) time.Duration {
	if l <= 0 {
		return 0
	}
	t := l + grace
	if t > maxKernelTimeout {
		return 0
	}
	return (t + time.Millisecond - 1).Truncate(time.Millisecond)
}

// plan works out the transaction for add and remove from the index, without
// changing it; grace is Config.TimeoutGrace. Elements listed in absent are
// not deleted. The mappings to add have passed checkAdd.
func (x *index) plan(now time.Time, grace time.Duration, add, remove []gateway.Mapping, absent gone) *plan {
	p := x.planChanges(now, grace, add, remove, absent)
	p.elements(now, x)
	return p
}

// planChanges is plan without the elements: the changes of the mappings
// and endpoints alone.
func (x *index) planChanges(now time.Time, grace time.Duration, add, remove []gateway.Mapping, absent gone) *plan {
	n := len(add) + len(remove)
	p := &plan{keys: newPositions[inKey](n), ins: make([]change, 0, n)}
	for _, m := range remove {
		p.touch(keyOf(m))
	}
	for _, m := range add {
		*p.touch(keyOf(m)) = change{add: true, e: entry{
			deadline: x.deadline(now, kernelTimeout(m.Lifetime, grace)),
			addr:     m.Internal.Addr().As4(),
			iport:    m.Internal.Port(),
		}}
	}

	// The inbound map: delete what is held and changes, add what is new.
	p.eps = newPositions[outKey](len(p.ins))
	p.outs = make([]epChange, 0, len(p.ins))
	for i, k := range p.keys.keys {
		c := &p.ins[i]
		c.oldEP, c.newEP, c.next = -1, -1, -1
		if old, held := x.in[k]; held {
			c.oldEP = p.touchEP(old.endpoint(k.proto))
			c.del = !absent.in[k]
		}
		if c.add {
			c.newEP = p.touchEP(c.e.endpoint(k.proto))
			o := &p.outs[c.newEP]
			if o.last < 0 {
				o.first = int32(i)
			} else {
				p.ins[o.last].next = int32(i)
			}
			o.last = int32(i)
		}
	}

	// The outbound map: one element per endpoint, for its oldest mapping.
	// Its users are those it had that stay, then the mappings added to it,
	// in the order they were touched; the installed port stays while it is
	// a user.
	p.users = make([]uint16, 0, len(p.ins)+len(p.outs))
	for j, ep := range p.eps.keys {
		o := &p.outs[j]
		installed, held := x.out[ep]
		old := x.shared[ep]
		var one [1]uint16
		if old == nil && held {
			one[0] = installed
			old = one[:]
		}
		start := len(p.users)
		for _, u := range old {
			if p.stays(ep.proto, j, u) {
				p.users = append(p.users, u)
			}
		}
		for i := o.first; i >= 0; i = p.ins[i].next {
			if p.ins[i].oldEP != int32(j) { // else a user already, kept above
				p.users = append(p.users, p.keys.keys[i].eport)
			}
		}
		o.users = p.users[start:len(p.users):len(p.users)]
		switch {
		case held && p.stays(ep.proto, j, installed):
			o.installed = installed
		case len(o.users) > 0:
			o.installed = o.users[0]
		}
		owner := -1 // the position of the installed mapping if touched (renewed)
		if o.installed != 0 {
			owner = p.keys.find(inKey{ep.proto, o.installed})
		}
		// The element is replaced when its port changes or its owner is
		// renewed (which restarts its timeout), and added when the kernel
		// lacks it.
		inKernel := held && !absent.out[ep]
		o.del = inKernel && (o.installed != installed || owner >= 0)
		o.add = o.installed != 0 && (!inKernel || o.del)
		switch {
		case !o.add:
		case owner >= 0:
			o.deadline = p.ins[owner].e.deadline
		default:
			o.deadline = x.in[inKey{ep.proto, o.installed}].deadline
		}
	}
	return p
}

// touch returns the change of mapping k, a removal until told otherwise.
func (p *plan) touch(k inKey) *change {
	i, isNew := p.keys.add(k)
	if isNew {
		p.ins = append(p.ins, change{})
	}
	return &p.ins[i]
}

// touchEP returns the position of endpoint ep.
func (p *plan) touchEP(ep outKey) int32 {
	j, isNew := p.eps.add(ep)
	if isNew {
		p.outs = append(p.outs, epChange{first: -1, last: -1})
	}
	return int32(j)
}

// stays reports whether external port u, a mapping of the endpoint of
// protocol proto at position j before the transaction, still is one after
// it.
func (p *plan) stays(proto gateway.Protocol, j int, u uint16) bool {
	i := p.keys.find(inKey{proto, u})
	return i < 0 || p.ins[i].newEP == int32(j)
}

// elements makes the elements of the changes worked out, in one allocation
// for the elements and one for their keys and data. The deletion and the
// addition of an element share its key.
func (p *plan) elements(now time.Time, x *index) {
	var nDelIn, nAddIn, nDelOut, nAddOut, size int
	for _, c := range p.ins {
		if c.del || c.add {
			size += inboundKeyLen
		}
		if c.del {
			nDelIn++
		}
		if c.add {
			nAddIn++
			size += inboundDataLen
		}
	}
	for _, o := range p.outs {
		if o.del || o.add {
			size += outboundKeyLen
		}
		if o.del {
			nDelOut++
		}
		if o.add {
			nAddOut++
			size += outboundDataLen
		}
	}
	elems := make([]nftables.SetElement, nDelIn+nDelOut+nAddIn+nAddOut)
	p.delIn, elems = elems[:0:nDelIn], elems[nDelIn:]
	p.delOut, elems = elems[:0:nDelOut], elems[nDelOut:]
	p.addIn, elems = elems[:0:nAddIn], elems[nAddIn:]
	p.addOut = elems[:0:nAddOut]
	buf := make(arena, size)

	for i, k := range p.keys.keys {
		c := &p.ins[i]
		if !c.del && !c.add {
			continue
		}
		key := buf.take(inboundKeyLen)
		putInKey(key, k)
		if c.del {
			p.delIn = append(p.delIn, nftables.SetElement{Key: key})
		}
		if c.add {
			val := buf.take(inboundDataLen)
			putInData(val, c.e.addr, c.e.iport)
			p.addIn = append(p.addIn, nftables.SetElement{
				Key:     key,
				Val:     val,
				Timeout: x.untilDeadline(now, c.e.deadline),
			})
		}
	}
	for j, ep := range p.eps.keys {
		o := &p.outs[j]
		if !o.del && !o.add {
			continue
		}
		key := buf.take(outboundKeyLen)
		putOutKey(key, ep)
		if o.del {
			p.delOut = append(p.delOut, nftables.SetElement{Key: key})
		}
		if o.add {
			val := buf.take(outboundDataLen)
			putOutData(val, o.installed)
			p.addOut = append(p.addOut, nftables.SetElement{
				Key:     key,
				Val:     val,
				Timeout: x.untilDeadline(now, o.deadline),
			})
		}
	}
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
	for i, s := range steps {
		if i == 2 && p.peers != nil { // deletions of pinholes and filters, after the others
			if err := f.queuePeers(p.peers, true); err != nil {
				return errors.Join(err, f.resetConn())
			}
		}
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
	if p.peers != nil {
		if err := f.queuePeers(p.peers, false); err != nil {
			return errors.Join(err, f.resetConn())
		}
	}
	return f.conn.Flush()
}

// adopt records a committed plan in the index.
func (x *index) adopt(p *plan) {
	for i, k := range p.keys.keys {
		if c := &p.ins[i]; c.add {
			x.in[k] = c.e
		} else {
			delete(x.in, k)
		}
	}
	for j, ep := range p.eps.keys {
		o := &p.outs[j]
		if o.installed != 0 {
			x.out[ep] = o.installed
		} else {
			delete(x.out, ep)
		}
		if len(o.users) > 1 {
			x.shared[ep] = append(x.shared[ep][:0], o.users...)
		} else {
			delete(x.shared, ep)
		}
	}
}

// findGone reads both maps from the kernel and returns the elements of p's
// mappings and endpoints that the index holds but the kernel does not.
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
	for _, k := range p.keys.keys {
		if _, ok := f.idx.in[k]; ok && !held[k] {
			g.in[k] = true
		}
	}
	for _, ep := range p.eps.keys {
		if _, ok := f.idx.out[ep]; ok && !heldOut[ep] {
			g.out[ep] = true
		}
	}
	return g, nil
}

// linearMax is the number of keys up to which positions searches them
// linearly.
const linearMax = 16

// positions numbers distinct keys in the order they are first given. It
// searches them linearly while they are few, as in the transaction of one
// mapping, and through a map once they are many.
type positions[K comparable] struct {
	keys []K
	pos  map[K]int32 // nil while len(keys) <= linearMax
}

// newPositions returns positions with room for hint keys.
func newPositions[K comparable](hint int) positions[K] {
	s := positions[K]{keys: make([]K, 0, hint)}
	if hint > linearMax {
		s.pos = make(map[K]int32, hint)
	}
	return s
}

// find returns the position of k, or -1 if it has none.
func (s *positions[K]) find(k K) int {
	if s.pos == nil {
		return slices.Index(s.keys, k)
	}
	if i, ok := s.pos[k]; ok {
		return int(i)
	}
	return -1
}

// add returns the position of k, which gets the next one if it has none,
// and whether it is new.
func (s *positions[K]) add(k K) (int, bool) {
	if i := s.find(k); i >= 0 {
		return i, false
	}
	i := len(s.keys)
	s.keys = append(s.keys, k)
	switch {
	case s.pos != nil:
		s.pos[k] = int32(i)
	case len(s.keys) > linearMax:
		s.pos = make(map[K]int32, 2*len(s.keys))
		for j, k := range s.keys {
			s.pos[k] = int32(j)
		}
	}
	return i, true
}

// arena hands out zeroed byte slices from one allocation.
type arena []byte

// take returns the next n bytes of a, which has them.
func (a *arena) take(n int) []byte {
	b := (*a)[:n:n]
	*a = (*a)[n:]
	return b
}
