package nftfw

import (
	"errors"
	"slices"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// commitElems sends the element deletions and additions of p to the maps
// of table as one transaction (deletions first, then additions, as commit
// does), encoded as google/nftables encodes them but straight into one
// buffer, and waits for the kernel's answer to each message. The errors it
// reports are the kernel's errnos (ENOENT for an element to delete that is
// not there).
func (s *nfSocket) commitElems(table string, p *plan) error {
	return s.commitSteps(table, []elemStep{
		{inboundName, p.delIn, true},
		{outboundName, p.delOut, true},
		{inboundName, p.addIn, false},
		{outboundName, p.addOut, false},
	})
}

// elemStep is a part of a transaction of commitSteps: elements of one set
// to add, or to delete (by key) when del.
type elemStep struct {
	set   string
	elems []nftables.SetElement
	del   bool
}

// commitSteps sends the steps to the sets of table as one transaction, in
// their order, as commitElems does.
func (s *nfSocket) commitSteps(table string, steps []elemStep) error {
	b := s.out[:0]
	batch := s.nextSeq()
	b = appendBatchMsg(b, unix.NFNL_MSG_BATCH_BEGIN, batch)
	first := s.seq + 1
	for _, st := range steps {
		for chunk := range slices.Chunk(st.elems, maxElemsPerMessage) {
			b = appendElemMsg(b, s.nextSeq(), table, st.set, chunk, st.del)
		}
	}
	last := s.seq
	if last < first {
		return nil
	}
	b = appendBatchMsg(b, unix.NFNL_MSG_BATCH_END, s.nextSeq())
	err := s.send(b)
	s.out = b[:0] // the buffer serves the next transaction
	if err != nil {
		return err
	}
	return s.readAcks(batch, first, last)
}

// readAcks reads the kernel's answers to the messages first to last of a
// batch that batch began, and returns the errors they report. The kernel
// answers each message it processed; an answer to the batch itself is an
// error that ends it.
func (s *nfSocket) readAcks(batch, first, last uint32) error {
	var errs error
	for left := last - first + 1; left > 0; {
		b, err := s.recv()
		if err != nil {
			return errors.Join(errs, err)
		}
		for {
			m, rest, ok, err := nextMsg(b)
			if err != nil {
				return errors.Join(errs, err)
			}
			if !ok {
				break
			}
			b = rest
			if m.typ != unix.NLMSG_ERROR {
				continue
			}
			switch {
			case m.seq == batch:
				return errors.Join(errs, errnoOf(m))
			case first <= m.seq && m.seq <= last:
				errs = errors.Join(errs, errnoOf(m))
				left--
			}
		}
	}
	return errs
}

// appendBatchMsg appends a NFNL_MSG_BATCH_BEGIN or _END message for the
// nftables subsystem.
func appendBatchMsg(b []byte, typ uint16, seq uint32) []byte {
	b, start := appendMsgHeader(b, typ, unix.NLM_F_REQUEST, seq)
	b = appendNfgen(b, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	endMsg(b, start)
	return b
}

// appendElemMsg appends a NFT_MSG_NEWSETELEM message that adds elems to
// the map set of the inet table table, or a NFT_MSG_DELSETELEM one that
// deletes them (by key) when del; the flags are those of google/nftables.
// An element takes its key, its data and its timeout (truncated to
// milliseconds; zero for none).
func appendElemMsg(b []byte, seq uint32, table, set string, elems []nftables.SetElement, del bool) []byte {
	typ := uint16(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWSETELEM)
	if del {
		typ = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_DELSETELEM
	}
	b, start := appendMsgHeader(b, typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE, seq)
	b = appendNfgen(b, unix.NFPROTO_INET, 0)
	b = appendStringAttr(b, unix.NFTA_SET_ELEM_LIST_SET, set)
	b = appendStringAttr(b, unix.NFTA_SET_ELEM_LIST_TABLE, table)
	b, list := startNested(b, unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	for _, e := range elems {
		var elem, key int
		b, elem = startNested(b, unix.NFTA_LIST_ELEM)
		b, key = startNested(b, unix.NFTA_SET_ELEM_KEY)
		b = appendNLAttr(b, unix.NFTA_DATA_VALUE, e.Key)
		endNested(b, key)
		if e.Timeout != 0 {
			b = appendU64Attr(b, unix.NFTA_SET_ELEM_TIMEOUT, uint64(e.Timeout.Milliseconds()))
		}
		if len(e.Val) > 0 {
			var data int
			b, data = startNested(b, unix.NFTA_SET_ELEM_DATA)
			b = appendNLAttr(b, unix.NFTA_DATA_VALUE, e.Val)
			endNested(b, data)
		}
		endNested(b, elem)
	}
	endNested(b, list)
	endMsg(b, start)
	return b
}
