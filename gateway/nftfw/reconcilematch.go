package nftfw

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/google/nftables"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/fwplan"
)

// wanted is what Reconcile wants the maps to hold: the elements that the
// planner's Plan of the wanted mappings adds, one for each mapping and
// endpoint. It compares them with the kernel's without making them, and
// makes only those that the kernel lacks or holds otherwise.
type wanted struct {
	p *fwplan.Plan // from State.Wanted: additions only
	// inPos and outPos are the positions of the mappings and endpoints
	// in p.AddIn and p.AddOut.
	inPos  map[inKey]int32
	outPos map[outKey]int32
}

func newWanted(p *fwplan.Plan) *wanted {
	w := &wanted{p: p, inPos: make(map[inKey]int32, len(p.AddIn)), outPos: make(map[outKey]int32, len(p.AddOut))}
	for i, e := range p.AddIn {
		w.inPos[inKey{e.Protocol, e.ExternalPort}] = int32(i)
	}
	for j, e := range p.AddOut {
		w.outPos[outKeyOf(e.Protocol, e.Internal)] = int32(j)
	}
	return w
}

// find returns the position of the mapping of k, or -1.
func (w *wanted) find(k inKey) int {
	if i, ok := w.inPos[k]; ok {
		return int(i)
	}
	return -1
}

// findEP returns the position of endpoint ep, or -1.
func (w *wanted) findEP(ep outKey) int {
	if j, ok := w.outPos[ep]; ok {
		return int(j)
	}
	return -1
}

// inData reports whether val is the data of the inbound element of the
// mapping at position i.
func (w *wanted) inData(i int, val []byte) bool {
	var want [inboundDataLen]byte
	e := w.p.AddIn[i]
	putInData(want[:], e.Internal.Addr().As4(), e.Internal.Port())
	return bytes.Equal(val, want[:])
}

// outData reports whether val is the data of the outbound element of the
// endpoint at position j.
func (w *wanted) outData(j int, val []byte) bool {
	var want [outboundDataLen]byte
	putOutData(want[:], w.p.AddOut[j].ExternalPort)
	return bytes.Equal(val, want[:])
}

func (w *wanted) inTimeout(i int) time.Duration { return w.p.AddIn[i].Timeout }

func (w *wanted) outTimeout(j int) time.Duration { return w.p.AddOut[j].Timeout }

// inElem returns the inbound element of the mapping at position i, its
// bytes taken from buf.
func (w *wanted) inElem(i int, buf *[]byte) nftables.SetElement {
	key, val := takeBytes(buf, inboundKeyLen), takeBytes(buf, inboundDataLen)
	e := w.p.AddIn[i]
	putInKey(key, inKey{e.Protocol, e.ExternalPort})
	putInData(val, e.Internal.Addr().As4(), e.Internal.Port())
	return nftables.SetElement{Key: key, Val: val, Timeout: e.Timeout}
}

// outElem returns the outbound element of the endpoint at position j.
func (w *wanted) outElem(j int, buf *[]byte) nftables.SetElement {
	key, val := takeBytes(buf, outboundKeyLen), takeBytes(buf, outboundDataLen)
	e := w.p.AddOut[j]
	putOutKey(key, outKeyOf(e.Protocol, e.Internal))
	putOutData(val, e.ExternalPort)
	return nftables.SetElement{Key: key, Val: val, Timeout: e.Timeout}
}

// missing returns the additions of the elements whose have is false (by
// position in the plan's mappings, and in its endpoints), in their order.
func (w *wanted) missing(haveIn, haveOut []bool) plan {
	nIn, nOut := count(haveIn, false), count(haveOut, false)
	elems := make([]nftables.SetElement, nIn+nOut)
	buf := make([]byte, 0, nIn*(inboundKeyLen+inboundDataLen)+nOut*(outboundKeyLen+outboundDataLen))
	var p plan
	p.addIn, p.addOut = elems[:0:nIn], elems[nIn:nIn]
	for i, have := range haveIn {
		if !have {
			p.addIn = append(p.addIn, w.inElem(i, &buf))
		}
	}
	for j, have := range haveOut {
		if !have {
			p.addOut = append(p.addOut, w.outElem(j, &buf))
		}
	}
	return p
}

// count returns how many of bs are b.
func count(bs []bool, b bool) int {
	n := 0
	for _, x := range bs {
		if x == b {
			n++
		}
	}
	return n
}

// inMatch compares the elements of the inbound map, as a dump reads them,
// with those wanted: it records what Reconcile changes, and copies only
// the keys of the elements that differ.
type inMatch struct {
	w *wanted
	// start is when Reconcile was called: the lifetimes wanted are from
	// then.
	start time.Time
	have  []bool // by position in the plan's mappings: the kernel holds an element
	// orphans are the deletions of elements not wanted; delRep and addRep
	// the replacements, in step.
	orphans, delRep, addRep []nftables.SetElement
	r                       gateway.Reconciled // Added does not count the missing
	ended                   []gateway.Mapping  // held by the kernel, to be removed or moved
	buf                     []byte             // backing of the keys and data made
}

func newInMatch(w *wanted, start time.Time) *inMatch {
	return &inMatch{w: w, start: start, have: make([]bool, len(w.p.AddIn))}
}

// reset forgets what was matched, for a dump read again.
func (m *inMatch) reset() { *m = *newInMatch(m.w, m.start) }

// match records what becomes of the kernel's element e.
func (m *inMatch) match(e dumpedElem) error {
	i := -1
	if k, ok := inKeyOf(e.key); ok {
		i = m.w.find(k)
	}
	switch {
	case i < 0:
		m.orphans = append(m.orphans, nftables.SetElement{Key: keepBytes(&m.buf, e.key)})
		m.r.Removed++
		m.end(e)
		return nil
	case m.have[i]:
		// Twice in one dump: the ruleset changed while it was read.
		return errDumpInterrupted
	case !m.w.inData(i, e.val):
		m.r.Removed++
		m.r.Added++
		m.end(e)
		replace(&m.delRep, &m.addRep, keepBytes(&m.buf, e.key), m.w.inElem(i, &m.buf))
	case !timeoutMatches(e, m.w.inTimeout(i), time.Since(m.start)):
		m.r.Adopted++
		replace(&m.delRep, &m.addRep, keepBytes(&m.buf, e.key), m.w.inElem(i, &m.buf))
	default:
		m.r.Adopted++
	}
	m.have[i] = true
	return nil
}

// end records the mapping of the kernel's element e as ended, when it
// decodes.
func (m *inMatch) end(e dumpedElem) {
	if mp, err := decodeInbound(e.key, e.val); err == nil {
		m.ended = append(m.ended, mp)
	}
}

// outMatch compares the elements of the outbound map, as a dump reads them,
// with those wanted (see inMatch).
type outMatch struct {
	w                       *wanted
	start                   time.Time // as in inMatch
	have                    []bool    // by position in the plan's endpoints
	orphans, delRep, addRep []nftables.SetElement
	buf                     []byte
}

func newOutMatch(w *wanted, start time.Time) *outMatch {
	return &outMatch{w: w, start: start, have: make([]bool, len(w.p.AddOut))}
}

// reset forgets what was matched, for a dump read again.
func (m *outMatch) reset() { *m = *newOutMatch(m.w, m.start) }

// match records what becomes of the kernel's element e.
func (m *outMatch) match(e dumpedElem) error {
	j := -1
	if ep, err := decodeOutboundKey(e.key); err == nil {
		j = m.w.findEP(ep)
	}
	switch {
	case j < 0:
		m.orphans = append(m.orphans, nftables.SetElement{Key: keepBytes(&m.buf, e.key)})
		return nil
	case m.have[j]:
		return errDumpInterrupted
	case !m.w.outData(j, e.val) || !timeoutMatches(e, m.w.outTimeout(j), time.Since(m.start)):
		replace(&m.delRep, &m.addRep, keepBytes(&m.buf, e.key), m.w.outElem(j, &m.buf))
	}
	m.have[j] = true
	return nil
}

// takeBytes returns n zeroed bytes appended to *buf. Bytes handed out stay
// valid when buf grows: they keep the old backing array.
func takeBytes(buf *[]byte, n int) []byte {
	if cap(*buf)-len(*buf) < n {
		*buf = make([]byte, 0, max(4096, 2*cap(*buf), n))
	}
	start := len(*buf)
	*buf = append(*buf, make([]byte, n)...)
	return (*buf)[start:len(*buf):len(*buf)]
}

// keepBytes returns a copy of b, taken from *buf, that outlives the dump.
func keepBytes(buf *[]byte, b []byte) []byte {
	c := takeBytes(buf, len(b))
	copy(c, b)
	return c
}

// inKeyOf turns the key of an element of the inbound map back into a
// mapping's key; ok is false when it has the wrong length.
func inKeyOf(key []byte) (k inKey, ok bool) {
	if len(key) != inboundKeyLen {
		return inKey{}, false
	}
	return inKey{gateway.Protocol(key[0]), binary.BigEndian.Uint16(key[4:])}, true
}
