package nftfw

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// dumpTries bounds the reads of a set whose dump the kernel reports as
// interrupted by a change of the ruleset.
const dumpTries = 3

// errDumpInterrupted is returned when the kernel flagged a dump
// NLM_F_DUMP_INTR: the ruleset changed while it was read, so elements may
// be missing from it or be in it twice.
var errDumpInterrupted = errors.New("nftfw: dump interrupted by a ruleset change")

// elements calls fn for each element of the set name of the inet table
// table, as one dump reads them. When the kernel reports the dump
// interrupted, it calls restart and reads the set again, up to dumpTries
// times in all. An error of fn stops the dump and is returned.
func (d *nfSocket) elements(table, name string, restart func(), fn func(dumpedElem) error) error {
	for try := 1; ; try++ {
		err := d.dumpOnce(table, name, fn)
		if !errors.Is(err, errDumpInterrupted) || try == dumpTries {
			return err
		}
		restart()
	}
}

// dumpOnce sends one NFT_MSG_GETSETELEM dump request and reads its answer
// to the end, even past an interruption, which it then returns.
func (d *nfSocket) dumpOnce(table, name string, fn func(dumpedElem) error) error {
	seq := d.nextSeq()
	b, start := appendMsgHeader(nil, unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETSETELEM,
		unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
	b = appendNfgen(b, unix.NFPROTO_INET, 0)
	b = appendStringAttr(b, unix.NFTA_SET_ELEM_LIST_TABLE, table)
	b = appendStringAttr(b, unix.NFTA_SET_ELEM_LIST_SET, name)
	endMsg(b, start)
	if err := d.send(b); err != nil {
		return err
	}
	var interrupted, failed error
	for {
		b, err := d.recv()
		if err != nil {
			return err
		}
		for {
			m, rest, ok, err := nextMsg(b)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			b = rest
			if m.seq != seq {
				continue // not ours
			}
			if m.flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = errDumpInterrupted
			}
			switch m.typ {
			case unix.NLMSG_NOOP:
			case unix.NLMSG_ERROR, unix.NLMSG_DONE:
				if err := errnoOf(m); err != nil {
					return err
				}
				return errors.Join(failed, interrupted)
			case unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWSETELEM:
				// After an error of fn, read on to the end, so
				// that the socket can dump again.
				if failed == nil {
					failed = decodeSetElemMsg(m.payload, fn)
				}
			default:
				return fmt.Errorf("unexpected netlink message type %#x in a set element dump", m.typ)
			}
		}
	}
}
