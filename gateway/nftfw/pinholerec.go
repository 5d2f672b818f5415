package nftfw

import (
	"fmt"
	"time"

	"github.com/google/nftables"

	"github.com/portlease/portlease/gateway"
)

// peerTxElems bounds the element changes of one transaction of
// reconcilePeers, well inside the send buffer.
const peerTxElems = 16384

// reconcilePeers makes the pinhole and filter sets hold exactly the
// elements of the pinholes and filtered mappings of want, as
// Reconcile does for the maps: it reads each set, adopts what matches
// (setting again an element whose timeout is off by more than
// timeoutSlack), deletes the rest and adds what is missing. The counts
// are of pinholes; the filter elements of IPv4 mappings are not counted.
// The caller holds f.mu and has made f.idx anew (its base is the
// deadlines' origin).
func (f *Firewall) reconcilePeers(start time.Time, want []gateway.Mapping) (gateway.Reconciled, error) {
	now := time.Now()
	x := newPeerIndex()
	wanted := make(map[*nftables.Set]map[string]time.Duration)
	put := func(es peerElems, t time.Duration) {
		for _, s := range es {
			if wanted[s.set] == nil {
				wanted[s.set] = make(map[string]time.Duration)
			}
			for _, k := range s.keys {
				wanted[s.set][string(k)] = t
			}
		}
	}
	for _, m := range want {
		e := peerEntry{
			deadline: f.idx.deadline(now, kernelTimeout(m.Lifetime, f.grace)),
			filters:  effectiveFilters(m.Filters),
		}
		t := f.idx.untilDeadline(now, e.deadline)
		switch {
		case m.Pinhole:
			x.pins[pinKeyOf(m)] = e
			put(f.rs.pinholeElems(pinKeyOf(m), e.filters), t)
		case len(e.filters) > 0:
			x.v4[keyOf(m)] = e
			put(f.rs.filtered4Elems(keyOf(m), e.filters), t)
		}
	}

	var r gateway.Reconciled
	c := &peerChange{}
	sets := []*nftables.Set{f.rs.pinhole6, f.rs.filtered6, f.rs.filtered4}
	for _, sh := range f.rs.peerShapes() {
		sets = append(sets, sh.set)
	}
	for _, s := range sets {
		counted := s == f.rs.pinhole6 || s == f.rs.filtered6
		elems, err := f.conn.GetSetElements(s)
		if err != nil {
			return r, fmt.Errorf("read set %s: %w", s.Name, err)
		}
		w := wanted[s]
		seen := make(map[string]bool, len(elems))
		for _, e := range elems {
			k := string(e.Key)
			t, ok := w[k]
			switch {
			case !ok || seen[k]:
				c.del, c.delSets = append(c.del, nftables.SetElement{Key: e.Key}), append(c.delSets, s)
				if counted && !seen[k] {
					r.Removed++
				}
				continue
			case !timeoutMatches(dumpedElem{timeout: e.Timeout, expires: e.Expires}, t, time.Since(start)):
				c.del, c.delSets = append(c.del, nftables.SetElement{Key: e.Key}), append(c.delSets, s)
				c.add, c.addSets = append(c.add, nftables.SetElement{Key: e.Key, Timeout: t}), append(c.addSets, s)
			}
			seen[k] = true
			if counted {
				r.Adopted++
			}
		}
		for k, t := range w {
			if !seen[k] {
				c.add, c.addSets = append(c.add, nftables.SetElement{Key: []byte(k), Timeout: t}), append(c.addSets, s)
				if counted {
					r.Added++
				}
			}
		}
	}
	f.peers = x
	return r, f.commitPeers(c)
}

// commitPeers sends c's deletions, then its additions, in transactions of
// at most peerTxElems elements. The caller holds f.mu.
func (f *Firewall) commitPeers(c *peerChange) error {
	for _, del := range []bool{true, false} {
		elems, sets := c.add, c.addSets
		if del {
			elems, sets = c.del, c.delSets
		}
		for len(elems) > 0 {
			n := min(len(elems), peerTxElems)
			part := &peerChange{}
			if del {
				part.del, part.delSets = elems[:n], sets[:n]
			} else {
				part.add, part.addSets = elems[:n], sets[:n]
			}
			if err := f.queuePeers(part, del); err != nil {
				return fmt.Errorf("queue pinhole elements: %w", err)
			}
			if err := f.conn.Flush(); err != nil {
				return fmt.Errorf("commit pinhole elements: %w", err)
			}
			elems, sets = elems[n:], sets[n:]
		}
	}
	return nil
}
