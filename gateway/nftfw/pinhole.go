package nftfw

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/fwplan"
)

// Pinhole and filter keys (see peerrules.go for the sets):
//
//	pinhole6, filtered6 key: addr (16) | proto 0 0 0 | port port 0 0  (24 bytes)
//	filtered4 key:           proto 0 0 0 | eport eport 0 0             (8 bytes, as inbound4's)
//	peers sets:              that key, then the masked remote address, then the remote port
const endpoint6KeyLen = 24

// pinKey identifies a pinhole: its protocol and internal IPv6 endpoint.
type pinKey struct {
	proto gateway.Protocol
	addr  [16]byte
	port  uint16
}

// pinKeyOf6 returns the key of the pinhole of protocol proto to internal.
func pinKeyOf6(proto gateway.Protocol, internal netip.AddrPort) pinKey {
	return pinKey{proto, internal.Addr().As16(), internal.Port()}
}

// mapping returns the pinhole of k, without lifetime or filters.
func (k pinKey) mapping() gateway.Mapping {
	ep := netip.AddrPortFrom(netip.AddrFrom16(k.addr), k.port)
	return gateway.Mapping{Protocol: k.proto, ExternalPort: k.port, Internal: ep, Pinhole: true}
}

// checkPinhole checks a pinhole to add.
func checkPinhole(m gateway.Mapping) error {
	a := m.Internal.Addr()
	switch {
	case !a.Is6() || a.Is4In6() || a.IsUnspecified() || a.Zone() != "":
		return fmt.Errorf("nftfw: pinhole %v %v: not a global IPv6 endpoint", m.Protocol, m.Internal)
	case m.ExternalPort != 0 && m.ExternalPort != m.Internal.Port():
		return fmt.Errorf("nftfw: pinhole %v %v: external port %d differs", m.Protocol, m.Internal, m.ExternalPort)
	}
	for _, f := range m.Filters {
		if !f.Remote.IsValid() || !f.Remote.Addr().Is6() || f.Remote.Addr().Is4In6() {
			return fmt.Errorf("nftfw: pinhole %v %v: filter %v is not IPv6", m.Protocol, m.Internal, f.Remote)
		}
	}
	return nil
}

// checkFilters4 checks the filters of an IPv4 mapping to add.
func checkFilters4(m gateway.Mapping) error {
	for _, f := range m.Filters {
		if !f.Remote.IsValid() || !filterPrefix4(f.Remote).Addr().Is4() {
			return fmt.Errorf("nftfw: mapping %v %d: filter %v is not IPv4", m.Protocol, m.ExternalPort, f.Remote)
		}
	}
	return nil
}

// filterPrefix4 returns an IPv4-mapped prefix as the IPv4 prefix it maps.
func filterPrefix4(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// peerElems are the elements of one pinhole or filtered IPv4 mapping, set
// by set, keys only.
type peerElems []setElems

// setElems are elements of one set.
type setElems struct {
	set  *nftables.Set
	keys [][]byte
}

// pinholeElems returns the elements of pinhole k with filters fs (already
// effectiveFilters).
func (rs *ruleset) pinholeElems(k pinKey, fs []gateway.Filter) peerElems {
	key := make([]byte, endpoint6KeyLen)
	copy(key, k.addr[:])
	key[16] = byte(k.proto)
	binary.BigEndian.PutUint16(key[20:], k.port)
	if len(fs) == 0 {
		return peerElems{{rs.pinhole6, [][]byte{key}}}
	}
	return append(peerElems{{rs.filtered6, [][]byte{key}}}, filterElems(rs.peers6, key, fs, false)...)
}

// filtered4Elems returns the elements of IPv4 mapping k with filters fs
// (already effectiveFilters, not empty).
func (rs *ruleset) filtered4Elems(k inKey, fs []gateway.Filter) peerElems {
	key := make([]byte, inboundKeyLen)
	putInKey(key, k)
	return append(peerElems{{rs.filtered4, [][]byte{key}}}, filterElems(rs.peers4, key, fs, true)...)
}

// filterElems returns the elements of filters fs of the mapping whose part
// of the keys is mapping, in the shapes of one family: each filter becomes
// the prefixes of the next longer shape that cover it, in the set of that
// shape with or without the port. Elements are not repeated.
func filterElems(shapes []peerShape, mapping []byte, fs []gateway.Filter, v4 bool) peerElems {
	var out peerElems
	seen := make(map[string]bool)
	for _, f := range fs {
		p := f.Remote.Masked()
		if v4 {
			p = filterPrefix4(f.Remote)
		}
		sl := shapeLen(p.Bits())
		var sh *peerShape
		for i := range shapes {
			if shapes[i].bits == sl && shapes[i].port == (f.Port != 0) {
				sh = &shapes[i]
			}
		}
		if sh == nil {
			continue // checked before: cannot happen
		}
		n := 1 << (sl - p.Bits())
		a := p.Addr()
		for i := 0; i < n; i++ {
			key := make([]byte, sh.keyLen())
			sh.putKey(key, mapping, withBits(a, p.Bits(), sl, uint64(i)), f.Port)
			if seen[sh.set.Name+string(key)] {
				continue
			}
			seen[sh.set.Name+string(key)] = true
			j := len(out) - 1
			if j < 0 || out[j].set != sh.set {
				out = append(out, setElems{set: sh.set})
				j++
			}
			out[j].keys = append(out[j].keys, key)
		}
	}
	return out
}

// withBits returns a with the bits from position from up to (not
// including) to set to v: one of the prefixes of length to inside a's
// prefix of length from.
func withBits(a netip.Addr, from, to int, v uint64) netip.Addr {
	b := a.AsSlice()
	for bit := to - 1; bit >= from; bit-- {
		if v&1 != 0 {
			b[bit/8] |= 0x80 >> (bit % 8)
		}
		v >>= 1
	}
	r, _ := netip.AddrFromSlice(b)
	return r
}

// peerChange is the transaction's part for pinholes and filters: the
// elements to delete and to add, set by set.
type peerChange struct {
	del, add []nftables.SetElement // parallel to delSets, addSets
	delSets  []*nftables.Set
	addSets  []*nftables.Set
}

// encodePeers returns the elements of the pinholes and filters of p; nil
// when it has none. Each pinhole or filtered mapping touched has all its
// old elements deleted (p lists them with the filters the kernel holds)
// and those of what it becomes added.
func (rs *ruleset) encodePeers(p *fwplan.Plan) *peerChange {
	if len(p.DelPin)+len(p.AddPin)+len(p.DelFiltered)+len(p.AddFiltered) == 0 {
		return nil
	}
	c := &peerChange{}
	for _, e := range p.DelPin {
		c.queue(rs.pinholeElems(pinKeyOf6(e.Protocol, e.Internal), e.Filters), true, 0)
	}
	for _, e := range p.DelFiltered {
		c.queue(rs.filtered4Elems(inKey{e.Protocol, e.ExternalPort}, e.Filters), true, 0)
	}
	for _, e := range p.AddPin {
		c.queue(rs.pinholeElems(pinKeyOf6(e.Protocol, e.Internal), e.Filters), false, e.Timeout)
	}
	for _, e := range p.AddFiltered {
		c.queue(rs.filtered4Elems(inKey{e.Protocol, e.ExternalPort}, e.Filters), false, e.Timeout)
	}
	return c
}

// elements counts the elements c deletes and adds; 0 for nil.
func (c *peerChange) elements() int {
	if c == nil {
		return 0
	}
	return len(c.del) + len(c.add)
}

// queue adds the elements es to the deletions, or to the additions with
// timeout t.
func (c *peerChange) queue(es peerElems, del bool, t time.Duration) {
	for _, s := range es {
		for _, k := range s.keys {
			if del {
				c.del = append(c.del, nftables.SetElement{Key: k})
				c.delSets = append(c.delSets, s.set)
			} else {
				c.add = append(c.add, nftables.SetElement{Key: k, Timeout: t})
				c.addSets = append(c.addSets, s.set)
			}
		}
	}
}

// queuePeers queues the deletions, then the additions, of c on the
// Firewall's connection.
func (f *Firewall) queuePeers(c *peerChange, dels bool) error {
	elems, sets := c.add, c.addSets
	if dels {
		elems, sets = c.del, c.delSets
	}
	for i := 0; i < len(elems); {
		j := i + 1
		for j < len(elems) && sets[j] == sets[i] && j-i < maxElemsPerMessage {
			j++
		}
		var err error
		if dels {
			err = f.conn.SetDeleteElements(sets[i], elems[i:j])
		} else {
			err = f.conn.SetAddElements(sets[i], elems[i:j])
		}
		if err != nil {
			return err
		}
		i = j
	}
	return nil
}

// prunePeers drops from c's deletions the elements the kernel no longer
// holds (timed out), after a transaction failed with ENOENT; c may be nil.
func (f *Firewall) prunePeers(c *peerChange) error {
	if c == nil {
		return nil
	}
	held := make(map[*nftables.Set]map[string]bool)
	var del []nftables.SetElement
	var sets []*nftables.Set
	for i, e := range c.del {
		s := c.delSets[i]
		if held[s] == nil {
			elems, err := f.conn.GetSetElements(s)
			if err != nil {
				return fmt.Errorf("read set %s: %w", s.Name, err)
			}
			held[s] = make(map[string]bool, len(elems))
			for _, h := range elems {
				held[s][string(h.Key)] = true
			}
		}
		if held[s][string(e.Key)] {
			del = append(del, e)
			sets = append(sets, s)
		}
	}
	c.del, c.delSets = del, sets
	return nil
}
