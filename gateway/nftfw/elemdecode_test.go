package nftfw

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Golden datagrams: the first answer of the kernel to a NFT_MSG_GETSETELEM
// dump of each map (struct nlmsghdr included), captured on Linux 6.18.44
// (x86_64) on 2026-12-06 in a test namespace holding the table New makes,
// after Apply of tcp 8080 -> 198.51.100.10:80 with a one-hour lifetime
// (kernel timeout 1h30s, read at once) and udp 5000 -> 198.51.100.11:5001
// without one. In the same dump, the kernel then sent a NEWSETELEM message
// with an empty element list and NLMSG_DONE (goldenInboundEnd).
const (
	goldenInbound = "980000000c0a02006ce9700c9e09a2ca010000030f000100706f72746c65617365640000" +
		"0d000200696e626f756e6434000000006400030024000100100001000c0001001100000013880000" +
		"100002000c000100c633640b138900003c000100100001000c000100060000001f900000100002000c000100" +
		"c633640a005000000c00040000000000003763b00c00050000000000003763b0"
	goldenOutbound = "980000000c0a02006de9700c9e09a2ca010000030f000100706f72746c65617365640000" +
		"0e0002006f7574626f756e6434000000640003003c000100140001001000010006000000c633640a00500000" +
		"0c000200060001001f9000000c00040000000000003763b00c00050000000000003763b0240001001400010010000100" +
		"11000000c633640b138900000c0002000600010013880000"
	goldenInboundEnd = "380000000c0a02006ce9700c9e09a2ca010000030f000100706f72746c65617365640000" +
		"0d000200696e626f756e6434000000000400030014000000030002006ce9700c9e09a2ca00000000"
)

// goldenPayload returns the payload of the first message of a golden
// datagram.
func goldenPayload(t testing.TB, datagram string) []byte {
	t.Helper()
	b, err := hex.DecodeString(datagram)
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.NativeEndian.Uint32(b))
	if n > len(b) || n < nlmsgHeaderLen {
		t.Fatalf("golden message length %d of %d bytes", n, len(b))
	}
	if typ := binary.NativeEndian.Uint16(b[4:]); typ != unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM {
		t.Fatalf("golden message type %#x", typ)
	}
	return b[nlmsgHeaderLen:n]
}

// elemCopy is a dumpedElem that owns its bytes.
type elemCopy struct {
	key, val         string
	flags            uint32
	timeout, expires time.Duration
}

// decodeAll decodes b into copies of its elements.
func decodeAll(b []byte) ([]elemCopy, error) {
	var out []elemCopy
	err := decodeSetElemMsg(b, func(e dumpedElem) error {
		out = append(out, elemCopy{string(e.key), string(e.val), e.flags, e.timeout, e.expires})
		return nil
	})
	return out, err
}

func mustHex(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestDecodeSetElemMsgGolden(t *testing.T) {
	timeout := time.Hour + 30*time.Second
	for _, tc := range []struct {
		name, datagram string
		want           []elemCopy
	}{
		{"inbound", goldenInbound, []elemCopy{
			{key: mustHex("1100000013880000"), val: mustHex("c633640b13890000")},
			{key: mustHex("060000001f900000"), val: mustHex("c633640a00500000"), timeout: timeout, expires: timeout},
		}},
		{"outbound", goldenOutbound, []elemCopy{
			{key: mustHex("06000000c633640a00500000"), val: mustHex("1f90"), timeout: timeout, expires: timeout},
			{key: mustHex("11000000c633640b13890000"), val: mustHex("1388")},
		}},
		{"end of dump", goldenInboundEnd, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeAll(goldenPayload(t, tc.datagram))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("decoded %+v; want %+v", got, tc.want)
			}
		})
	}
	// The elements decode to what they were made from.
	got, err := decodeAll(goldenPayload(t, goldenInbound))
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeInbound([]byte(got[1].key), []byte(got[1].val))
	if err != nil || !reflect.DeepEqual(m, tcpMapping(8080, "198.51.100.10:80")) {
		t.Errorf("decodeInbound of the golden tcp element = %v, %v", m, err)
	}
}

// TestDecodeSetElemMsgAllocates checks that decoding allocates nothing.
func TestDecodeSetElemMsgAllocates(t *testing.T) {
	b := goldenPayload(t, goldenOutbound)
	n := 0
	count := func(dumpedElem) error { n++; return nil }
	if a := testing.AllocsPerRun(100, func() {
		if err := decodeSetElemMsg(b, count); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("decodeSetElemMsg allocates %v times a message; want 0", a)
	}
}

func TestDecodeSetElemMsgErrors(t *testing.T) {
	in := goldenPayload(t, goldenInbound)
	// Every truncation of the golden message either fails or decodes a
	// prefix of its elements (a cut at an attribute boundary).
	whole, err := decodeAll(in)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(in) {
		got, err := decodeAll(in[:n])
		if err == nil && !slices.Equal(got, whole[:len(got)]) {
			t.Errorf("cut at %d: decoded %+v, not a prefix of %+v", n, got, whole)
		}
	}
	if _, err := decodeAll(in[:60]); err == nil {
		t.Error("a message cut inside the element list decoded without error")
	}

	// An element without a key.
	noKey := encodeSetElemMsg([]elemCopy{{val: "\x01\x02"}})
	if _, err := decodeAll(noKey); err == nil {
		t.Error("an element without a key decoded without error")
	}
	// A timeout of 4 bytes.
	bad := encodeSetElemMsg([]elemCopy{{key: "k"}})
	bad = appendListElemAttr(bad, func(b []byte) []byte {
		b = appendAttr(b, unix.NFTA_SET_ELEM_KEY, appendAttr(nil, unix.NFTA_DATA_VALUE, []byte("k")))
		return appendAttr(b, unix.NFTA_SET_ELEM_TIMEOUT, []byte{0, 0, 0, 1})
	})
	if _, err := decodeAll(bad); err == nil {
		t.Error("a 4-byte timeout decoded without error")
	}
	// An error of the callback stops the walk and is returned.
	stop := errors.New("stop")
	calls := 0
	err = decodeSetElemMsg(in, func(dumpedElem) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("decodeSetElemMsg with a failing callback = %v after %d calls; want stop after 1", err, calls)
	}
}

// FuzzDecodeSetElemMsg checks that the decoder never panics, and that what
// it decodes encodes to a message that decodes to the same elements.
func FuzzDecodeSetElemMsg(f *testing.F) {
	for _, d := range []string{goldenInbound, goldenOutbound, goldenInboundEnd} {
		f.Add(goldenPayload(f, d))
	}
	f.Add(encodeSetElemMsg([]elemCopy{{key: "k", val: "v", flags: 1, timeout: time.Second, expires: time.Millisecond}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeAll(b)
		if err != nil {
			return
		}
		for _, e := range got {
			if e.key == "" {
				t.Fatalf("decoded an element without a key: %+v", e)
			}
			if !bytes.Contains(b, []byte(e.key)) || !bytes.Contains(b, []byte(e.val)) {
				t.Fatalf("decoded bytes that are not in the message: %+v", e)
			}
		}
		again, err := decodeAll(encodeSetElemMsg(got))
		if err != nil {
			t.Fatalf("decoding %+v encoded again: %v", got, err)
		}
		if !slices.Equal(again, got) {
			t.Fatalf("decoded %+v, encoded again %+v", got, again)
		}
	})
}

// encodeSetElemMsg makes the payload of a NFT_MSG_NEWSETELEM message (as
// the kernel would) that lists elems: data, flags and timeouts only when
// not zero.
func encodeSetElemMsg(elems []elemCopy) []byte {
	b := []byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}
	b = appendAttr(b, unix.NFTA_SET_ELEM_LIST_TABLE, []byte("portleased\x00"))
	b = appendAttr(b, unix.NFTA_SET_ELEM_LIST_SET, []byte("inbound4\x00"))
	return appendListElems(b, elems)
}

// appendListElems appends the NFTA_SET_ELEM_LIST_ELEMENTS attribute of elems.
func appendListElems(b []byte, elems []elemCopy) []byte {
	var list []byte
	for _, e := range elems {
		var el []byte
		if e.key != "" {
			el = appendAttr(el, unix.NFTA_SET_ELEM_KEY, appendAttr(nil, unix.NFTA_DATA_VALUE, []byte(e.key)))
		}
		if e.val != "" {
			el = appendAttr(el, unix.NFTA_SET_ELEM_DATA, appendAttr(nil, unix.NFTA_DATA_VALUE, []byte(e.val)))
		}
		if e.flags != 0 {
			el = appendAttr(el, unix.NFTA_SET_ELEM_FLAGS, binary.BigEndian.AppendUint32(nil, e.flags))
		}
		if e.timeout != 0 {
			el = appendAttr(el, unix.NFTA_SET_ELEM_TIMEOUT, binary.BigEndian.AppendUint64(nil, uint64(e.timeout/time.Millisecond)))
		}
		if e.expires != 0 {
			el = appendAttr(el, unix.NFTA_SET_ELEM_EXPIRATION, binary.BigEndian.AppendUint64(nil, uint64(e.expires/time.Millisecond)))
		}
		list = appendAttr(list, unix.NFTA_LIST_ELEM, el)
	}
	return appendAttr(b, unix.NFTA_SET_ELEM_LIST_ELEMENTS, list)
}

// appendListElemAttr appends an element list of one element, whose
// attributes fill makes, to the message b.
func appendListElemAttr(b []byte, fill func([]byte) []byte) []byte {
	return appendAttr(b, unix.NFTA_SET_ELEM_LIST_ELEMENTS, appendAttr(nil, unix.NFTA_LIST_ELEM, fill(nil)))
}

// appendAttr appends a netlink attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, payload []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(nlaHeaderLen+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
