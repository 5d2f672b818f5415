package nftfw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// dumpedElem is one element of a set as the kernel reports it in a
// NFT_MSG_NEWSETELEM message. key and val are slices of that message, valid
// only while the callback that is given them runs.
type dumpedElem struct {
	key []byte
	// val is the element's data (NFTA_DATA_VALUE, or the nested verdict),
	// nil for an element of a set that is not a map.
	val   []byte
	flags uint32 // NFTA_SET_ELEM_FLAGS
	// timeout is the element's kernel timeout and expires what is left of
	// it (NFTA_SET_ELEM_TIMEOUT and _EXPIRATION, in milliseconds); zero
	// when the kernel reports none.
	timeout, expires time.Duration
}

// nlaHeaderLen is the size of a struct nlattr; nlaTypeMask strips its
// NLA_F_NESTED and NLA_F_NET_BYTEORDER flags from the type.
const (
	nlaHeaderLen = 4
	nlaTypeMask  = 0x3fff
)

// nfgenmsgLen is the size of the struct nfgenmsg that starts every
// nfnetlink message.
const nfgenmsgLen = 4

// errBadAttr is returned for attribute bytes that do not parse.
var errBadAttr = errors.New("nftfw: malformed netlink attribute")

// nextAttr splits the first netlink attribute off b. It returns its type
// (flags stripped), its payload and the bytes after it (from the next
// 4-byte boundary). ok is false when b is empty; err when it does not start
// with a whole attribute.
func nextAttr(b []byte) (typ uint16, payload, rest []byte, ok bool, err error) {
	if len(b) == 0 {
		return 0, nil, nil, false, nil
	}
	if len(b) < nlaHeaderLen {
		return 0, nil, nil, false, errBadAttr
	}
	n := int(binary.NativeEndian.Uint16(b))
	if n < nlaHeaderLen || n > len(b) {
		return 0, nil, nil, false, errBadAttr
	}
	typ = binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
	payload = b[nlaHeaderLen:n:n]
	next := min((n+3)&^3, len(b))
	return typ, payload, b[next:], true, nil
}

// decodeSetElemMsg calls fn for each element that the payload of a
// NFT_MSG_NEWSETELEM message (struct nfgenmsg, then attributes) lists in
// NFTA_SET_ELEM_LIST_ELEMENTS. It reads the key, the data, the flags, the
// timeout and the expiration of each, straight from b, and allocates
// nothing. Other attributes are skipped. An element without a key, or
// attributes that do not parse, are an error; so is an error fn returns,
// which stops the walk.
func decodeSetElemMsg(b []byte, fn func(dumpedElem) error) error {
	if len(b) < nfgenmsgLen {
		return fmt.Errorf("nftfw: set element message of %d bytes", len(b))
	}
	var e dumpedElem
	rest := b[nfgenmsgLen:]
	for {
		typ, list, next, ok, err := nextAttr(rest)
		if err != nil {
			return fmt.Errorf("%w: in set element message", err)
		}
		if !ok {
			return nil
		}
		rest = next
		if typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			continue
		}
		for {
			typ, elem, next, ok, err := nextAttr(list)
			if err != nil {
				return fmt.Errorf("%w: in element list", err)
			}
			if !ok {
				break
			}
			list = next
			if typ != unix.NFTA_LIST_ELEM {
				continue
			}
			if err := decodeElem(elem, &e); err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}

// decodeElem reads the attributes of one NFTA_LIST_ELEM into e.
func decodeElem(b []byte, e *dumpedElem) error {
	*e = dumpedElem{}
	for {
		typ, v, next, ok, err := nextAttr(b)
		if err != nil {
			return fmt.Errorf("%w: in element", err)
		}
		if !ok {
			break
		}
		b = next
		switch typ {
		case unix.NFTA_SET_ELEM_KEY:
			if e.key, err = dataValue(v); err != nil {
				return fmt.Errorf("%w: in element key", err)
			}
		case unix.NFTA_SET_ELEM_DATA:
			if e.val, err = dataValue(v); err != nil {
				return fmt.Errorf("%w: in element data", err)
			}
		case unix.NFTA_SET_ELEM_FLAGS:
			if len(v) != 4 {
				return fmt.Errorf("%w: element flags of %d bytes", errBadAttr, len(v))
			}
			e.flags = binary.BigEndian.Uint32(v)
		case unix.NFTA_SET_ELEM_TIMEOUT, unix.NFTA_SET_ELEM_EXPIRATION:
			if len(v) != 8 {
				return fmt.Errorf("%w: element timeout of %d bytes", errBadAttr, len(v))
			}
			d := millis(binary.BigEndian.Uint64(v))
			if typ == unix.NFTA_SET_ELEM_TIMEOUT {
				e.timeout = d
			} else {
				e.expires = d
			}
		}
	}
	if len(e.key) == 0 {
		return errors.New("nftfw: set element without a key")
	}
	return nil
}

// dataValue returns the payload of the NFTA_DATA_VALUE or NFTA_DATA_VERDICT
// attribute in b, the nested attributes of a struct nft_data (the last one
// when there are several, as google/nftables reads them), or nil.
func dataValue(b []byte) ([]byte, error) {
	var val []byte
	for {
		typ, v, next, ok, err := nextAttr(b)
		if err != nil {
			return nil, err
		}
		if !ok {
			return val, nil
		}
		b = next
		if typ == unix.NFTA_DATA_VALUE || typ == unix.NFTA_DATA_VERDICT {
			val = v
		}
	}
}

// maxMillis is the most whole milliseconds a time.Duration holds.
const maxMillis = uint64(1<<63-1) / uint64(time.Millisecond)

// millis returns ms milliseconds as a Duration, at most maxMillis of them.
func millis(ms uint64) time.Duration {
	return time.Duration(min(ms, maxMillis)) * time.Millisecond
}
