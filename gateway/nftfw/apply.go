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
	"github.com/portlease/portlease/gateway/conntrack"
	"github.com/portlease/portlease/gateway/fwplan"
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

// plan is one transaction in netlink's terms: the elements of the maps to
// delete and to add, and those of the pinhole and filter sets.
type plan struct {
	delIn, delOut, addIn, addOut []nftables.SetElement
	peers                        *peerChange // pinholes and filters; nil for none
}

// elements counts the elements p deletes and adds.
func (p *plan) elements() int {
	return len(p.delIn) + len(p.delOut) + len(p.addIn) + len(p.addOut) + p.peers.elements()
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
//
// What the kernel must hold is the planner's (gateway/fwplan: which mapping
// owns an endpoint's outbound element, the pinholes' and filters'
// elements, the connections to forget); Apply encodes its Plan as set
// elements and commits them.
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
	p, err := f.st.Plan(time.Now(), add, remove)
	if err != nil {
		return fmt.Errorf("nftfw: %w", err)
	}
	tx := f.rs.encode(p)
	if err := f.commitRetry(tx); err != nil {
		f.st.Abort()
		return fmt.Errorf("nftfw: apply %d additions and %d removals: %w", len(add), len(remove), err)
	}
	f.st.Commit()
	f.log.Debug("nftables mappings applied", "add", len(add), "remove", len(remove),
		"elements", tx.elements(), "held", f.st.Len())
	// Under f.mu: the changes reach the forgetter in the order of the
	// commits.
	f.flows.Add(conntrack.Changes(p.Flows))
	return nil
}

// commitRetry commits tx. On ENOENT (an element to delete is no longer in
// the kernel, which timed it out) it drops from tx the deletions of the
// elements the kernel lacks and commits the rest once more. The caller
// holds f.mu.
func (f *Firewall) commitRetry(tx *plan) error {
	err := f.commit(tx)
	if !errors.Is(err, unix.ENOENT) {
		return err
	}
	in, out, err := f.pruneGone(tx)
	if err != nil {
		return err
	}
	f.log.Warn("kernel timed out mappings before the lease table did", "inbound", in, "outbound", out)
	return f.commit(tx)
}

// checkAdd checks the mappings to add. The planner and the elements take an
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

// encode makes the set elements of p, those of the maps in one allocation
// for the elements and one for their keys and data.
func (rs *ruleset) encode(p *fwplan.Plan) *plan {
	size := len(p.DelIn)*inboundKeyLen + len(p.AddIn)*(inboundKeyLen+inboundDataLen) +
		len(p.DelOut)*outboundKeyLen + len(p.AddOut)*(outboundKeyLen+outboundDataLen)
	elems := make([]nftables.SetElement, len(p.DelIn)+len(p.DelOut)+len(p.AddIn)+len(p.AddOut))
	buf := make(arena, size)
	tx := &plan{peers: rs.encodePeers(p)}
	tx.delIn, elems = elems[:len(p.DelIn)], elems[len(p.DelIn):]
	tx.delOut, elems = elems[:len(p.DelOut)], elems[len(p.DelOut):]
	tx.addIn, elems = elems[:len(p.AddIn)], elems[len(p.AddIn):]
	tx.addOut = elems
	for i, e := range p.DelIn {
		tx.delIn[i].Key = buf.take(inboundKeyLen)
		putInKey(tx.delIn[i].Key, inKey{e.Protocol, e.ExternalPort})
	}
	for i, e := range p.DelOut {
		tx.delOut[i].Key = buf.take(outboundKeyLen)
		putOutKey(tx.delOut[i].Key, outKeyOf(e.Protocol, e.Internal))
	}
	for i, e := range p.AddIn {
		key, val := buf.take(inboundKeyLen), buf.take(inboundDataLen)
		putInKey(key, inKey{e.Protocol, e.ExternalPort})
		putInData(val, e.Internal.Addr().Unmap().As4(), e.Internal.Port())
		tx.addIn[i] = nftables.SetElement{Key: key, Val: val, Timeout: e.Timeout}
	}
	for i, e := range p.AddOut {
		key, val := buf.take(outboundKeyLen), buf.take(outboundDataLen)
		putOutKey(key, outKeyOf(e.Protocol, e.Internal))
		putOutData(val, e.ExternalPort)
		tx.addOut[i] = nftables.SetElement{Key: key, Val: val, Timeout: e.Timeout}
	}
	return tx
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

// pruneGone drops from p's deletions the elements the kernel no longer
// holds (timed out), after a transaction failed with ENOENT, and returns
// how many deletions of the inbound and the outbound map it dropped.
func (f *Firewall) pruneGone(p *plan) (in, out int, err error) {
	n := len(p.delIn)
	if p.delIn, err = f.keepHeld(f.rs.inbound, p.delIn); err != nil {
		return 0, 0, err
	}
	in = n - len(p.delIn)
	n = len(p.delOut)
	if p.delOut, err = f.keepHeld(f.rs.outbound, p.delOut); err != nil {
		return 0, 0, err
	}
	return in, n - len(p.delOut), f.prunePeers(p.peers)
}

// keepHeld returns the deletions of dels whose elements the kernel's set
// s holds, in dels' backing array.
func (f *Firewall) keepHeld(s *nftables.Set, dels []nftables.SetElement) ([]nftables.SetElement, error) {
	if len(dels) == 0 {
		return dels, nil
	}
	elems, err := f.conn.GetSetElements(s)
	if err != nil {
		return nil, fmt.Errorf("read map %s: %w", s.Name, err)
	}
	held := make(map[string]bool, len(elems))
	for _, e := range elems {
		held[string(e.Key)] = true
	}
	return slices.DeleteFunc(dels, func(e nftables.SetElement) bool { return !held[string(e.Key)] }), nil
}

// arena hands out zeroed byte slices from one allocation.
type arena []byte

// take returns the next n bytes of a, which has them.
func (a *arena) take(n int) []byte {
	b := (*a)[:n:n]
	*a = (*a)[n:]
	return b
}
