package nftfw

import (
	"fmt"
	"time"

	"github.com/google/nftables"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/fwplan"
)

// maxPeerKeyLen is the longest key of a pinhole or filter set: an IPv6
// endpoint, a remote address and a remote port.
const maxPeerKeyLen = endpoint6KeyLen + 16 + 4

// peerElemKey is an element of a pinhole or filter set: the set's position
// in ruleset.peerSets and the key, as a value that holds no pointers.
type peerElemKey struct {
	set uint8
	n   uint8 // bytes of key used
	key [maxPeerKeyLen]byte
}

func newPeerElemKey(set int, key []byte) (peerElemKey, bool) {
	k := peerElemKey{set: uint8(set), n: uint8(len(key))}
	return k, copy(k.key[:], key) == len(key)
}

// peerWant is an element Reconcile wants: its kernel timeout, and whether
// the dump found it.
type peerWant struct {
	timeout time.Duration
	seen    bool
}

// peerWanted is what Reconcile wants the pinhole and filter sets to hold.
type peerWanted struct {
	pos   map[peerElemKey]int32 // position in wants
	wants []peerWant
}

func (w *peerWanted) put(k peerElemKey, t time.Duration) {
	if i, ok := w.pos[k]; ok {
		w.wants[i].timeout = t // repeated: cannot happen, the last wins
		return
	}
	w.pos[k] = int32(len(w.wants))
	w.wants = append(w.wants, peerWant{timeout: t})
}

// peerSets returns the pinhole and filter sets, in the order Reconcile reads
// them: pinhole6, filtered6, filtered4, then the peers sets.
func (rs *ruleset) peerSets() []*nftables.Set {
	sets := []*nftables.Set{rs.pinhole6, rs.filtered6, rs.filtered4}
	for _, sh := range rs.peerShapes() {
		sets = append(sets, sh.set)
	}
	return sets
}

// peerTxElems bounds the element changes of one transaction of
// reconcilePeers, well inside the send buffer.
const peerTxElems = 16384

// reconcilePeers makes the pinhole and filter sets hold exactly the
// elements of the pinholes and filtered mappings that p, the planner's Plan
// of the wanted mappings, adds, as Reconcile does for the maps: it reads
// each set with the dump decoder (one dump each, an empty set costs a round
// trip), adopts what matches (setting again an element whose timeout is
// off by more than timeoutSlack), deletes the rest and adds what is
// missing, with the transaction encoder of the maps. The counts are of
// pinholes; the filter elements of IPv4 mappings are not counted. Ended
// are the pinholes the kernel held that are not wanted. The caller holds
// f.mu.
func (f *Firewall) reconcilePeers(start time.Time, p *fwplan.Plan) (r gateway.Reconciled, ended []gateway.Mapping, err error) {
	sets := f.rs.peerSets()
	setPos := make(map[*nftables.Set]int, len(sets))
	for i, s := range sets {
		setPos[s] = i
	}
	w := &peerWanted{pos: make(map[peerElemKey]int32, len(p.AddPin)+len(p.AddFiltered))}
	put := func(es peerElems, t time.Duration) error {
		for _, s := range es {
			for _, k := range s.keys {
				ek, ok := newPeerElemKey(setPos[s.set], k)
				if !ok {
					return fmt.Errorf("element of set %s of %d bytes", s.set.Name, len(k))
				}
				w.put(ek, t)
			}
		}
		return nil
	}
	var key [endpoint6KeyLen]byte
	for _, pin := range p.AddPin {
		k := pinKeyOf6(pin.Protocol, pin.Internal)
		if len(pin.Filters) == 0 {
			// The common case, without the allocations of pinholeElems.
			putEndpoint6Key(key[:], k)
			ek, _ := newPeerElemKey(0, key[:])
			w.put(ek, pin.Timeout)
			continue
		}
		if err := put(f.rs.pinholeElems(k, pin.Filters), pin.Timeout); err != nil {
			return r, nil, err
		}
	}
	for _, fl := range p.AddFiltered {
		if err := put(f.rs.filtered4Elems(inKey{fl.Protocol, fl.ExternalPort}, fl.Filters), fl.Timeout); err != nil {
			return r, nil, err
		}
	}

	d, err := dialNF(f.netns)
	if err != nil {
		return r, nil, err
	}
	tx := &peerTx{}
	var buf []byte
	for i, s := range sets {
		sm := &peerSetMatch{w: w, set: i, counted: s == f.rs.pinhole6 || s == f.rs.filtered6, start: start}
		if err := d.elements(f.rs.table.Name, s.Name, sm.reset, sm.match); err != nil {
			return r, nil, fmt.Errorf("read set %s: %w", s.Name, errJoinClose(err, d))
		}
		for _, k := range sm.orphans {
			tx.put(s.Name, nftables.SetElement{Key: keepBytes(&buf, k.key[:k.n])}, true)
			if sm.counted {
				ended = append(ended, pinholeOfKey(k.key[:k.n]))
			}
		}
		for _, j := range sm.replaced {
			k := sm.replacedKeys[j]
			b := keepBytes(&buf, k.key[:k.n])
			tx.replace(s.Name, b, w.wants[w.pos[k]].timeout)
		}
		r.Adopted += sm.adopted
		r.Removed += len(sm.orphans) * boolInt(sm.counted)
	}
	if err := d.close(); err != nil {
		return r, nil, err
	}
	for k, i := range w.pos {
		if w.wants[i].seen {
			continue
		}
		s := sets[k.set]
		tx.put(s.Name, nftables.SetElement{Key: keepBytes(&buf, k.key[:k.n]), Timeout: w.wants[i].timeout}, false)
		if s == f.rs.pinhole6 || s == f.rs.filtered6 {
			r.Added++
		}
	}
	return r, ended, f.commitPeerTx(tx)
}

// errJoinClose closes d after err.
func errJoinClose(err error, d *nfSocket) error {
	_ = d.close()
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// putEndpoint6Key writes the pinhole6 and filtered6 key of k to b,
// endpoint6KeyLen zeroed bytes.
func putEndpoint6Key(b []byte, k pinKey) {
	copy(b, k.addr[:])
	b[16] = byte(k.proto)
	b[20], b[21] = byte(k.port>>8), byte(k.port)
}

// peerSetMatch compares the elements of one pinhole or filter set, as a
// dump reads them, with those wanted.
type peerSetMatch struct {
	w       *peerWanted
	set     int
	counted bool      // the set's elements are pinholes
	start   time.Time // when Reconcile was called
	// orphans are the elements not wanted; replaced those whose timeout
	// is off (indexes into replacedKeys); seen the positions in w.wants
	// this dump marked.
	orphans      []peerElemKey
	replaced     []int
	replacedKeys []peerElemKey
	seen         []int32
	adopted      int
}

// reset forgets what was matched, for a dump read again.
func (m *peerSetMatch) reset() {
	for _, i := range m.seen {
		m.w.wants[i].seen = false
	}
	*m = peerSetMatch{w: m.w, set: m.set, counted: m.counted, start: m.start}
}

// match records what becomes of the kernel's element e.
func (m *peerSetMatch) match(e dumpedElem) error {
	k, ok := newPeerElemKey(m.set, e.key)
	i, wanted := m.w.pos[k]
	switch {
	case !ok || !wanted:
		m.orphans = append(m.orphans, k)
		return nil
	case m.w.wants[i].seen:
		// Twice in one dump: the ruleset changed while it was read.
		return errDumpInterrupted
	case !timeoutMatches(e, m.w.wants[i].timeout, time.Since(m.start)):
		m.replaced = append(m.replaced, len(m.replacedKeys))
		m.replacedKeys = append(m.replacedKeys, k)
	}
	m.w.wants[i].seen = true
	m.seen = append(m.seen, i)
	if m.counted {
		m.adopted++
	}
	return nil
}

// pinholeOfKey returns the pinhole whose pinhole6 or filtered6 key is key
// (endpoint6KeyLen bytes; another length gives the zero Mapping).
func pinholeOfKey(key []byte) gateway.Mapping {
	if len(key) != endpoint6KeyLen {
		return gateway.Mapping{}
	}
	k := pinKey{proto: gateway.Protocol(key[16]), addr: [16]byte(key[:16]), port: uint16(key[20])<<8 | uint16(key[21])}
	return k.mapping()
}

// peerTx is the element changes of reconcilePeers, set by set in the order
// they were put.
type peerTx struct {
	ops []setOps
	n   int // elements
}

// setOps are deletions (del), additions (add) or replacements (rep: both,
// in step, the deletion and the addition of the same keys) of elements of
// one set.
type setOps struct {
	set      string
	kind     opKind
	del, add []nftables.SetElement
}

type opKind int

const (
	opDel opKind = iota
	opAdd
	opRep
)

// last returns the last ops, made anew unless they are of set and kind.
func (tx *peerTx) last(set string, kind opKind) *setOps {
	if n := len(tx.ops); n == 0 || tx.ops[n-1].set != set || tx.ops[n-1].kind != kind {
		tx.ops = append(tx.ops, setOps{set: set, kind: kind})
	}
	return &tx.ops[len(tx.ops)-1]
}

// put queues the deletion (by key) or the addition of e.
func (tx *peerTx) put(set string, e nftables.SetElement, del bool) {
	if del {
		o := tx.last(set, opDel)
		o.del = append(o.del, e)
	} else {
		o := tx.last(set, opAdd)
		o.add = append(o.add, e)
	}
	tx.n++
}

// replace queues the deletion and the addition, with timeout t, of the
// element of key.
func (tx *peerTx) replace(set string, key []byte, t time.Duration) {
	o := tx.last(set, opRep)
	o.del = append(o.del, nftables.SetElement{Key: key})
	o.add = append(o.add, nftables.SetElement{Key: key, Timeout: t})
	tx.n += 2
}

// commitPeerTx sends tx in transactions of at most peerTxElems elements
// (each of deletions, then additions), over a socket of its own known to
// Watch. A replacement never straddles two transactions. The caller holds
// f.mu.
func (f *Firewall) commitPeerTx(tx *peerTx) error {
	if tx.n == 0 {
		return nil
	}
	s, err := dialNF(f.netns, setSendBuffer, f.own.record, capAcks)
	if err != nil {
		return err
	}
	defer s.close()
	var dels, adds []elemStep
	size := 0
	flush := func() error {
		if size == 0 {
			return nil
		}
		err := s.commitSteps(f.rs.table.Name, append(dels, adds...))
		dels, adds, size = dels[:0], adds[:0], 0
		if err != nil {
			return fmt.Errorf("commit pinhole elements: %w", err)
		}
		return nil
	}
	for _, o := range tx.ops {
		per := 1
		if o.kind == opRep {
			per = 2
		}
		del, add := o.del, o.add
		for len(del)+len(add) > 0 {
			if size+per > peerTxElems {
				if err := flush(); err != nil {
					return err
				}
			}
			n := (peerTxElems - size) / per
			nd, na := min(len(del), n), min(len(add), n)
			if nd > 0 {
				dels = append(dels, elemStep{set: o.set, elems: del[:nd], del: true})
			}
			if na > 0 {
				adds = append(adds, elemStep{set: o.set, elems: add[:na]})
			}
			size += nd + na
			del, add = del[nd:], add[na:]
		}
	}
	return flush()
}
