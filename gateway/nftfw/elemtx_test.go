package nftfw

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// TestAppendElemMsg checks that a message commitElems sends lists its
// elements as a dump lists them: the decoder reads them back.
func TestAppendElemMsg(t *testing.T) {
	elems := []nftables.SetElement{
		{Key: []byte{6, 0, 0, 0, 0x1f, 0x90, 0, 0}, Val: []byte{198, 51, 100, 10, 0, 80, 0, 0}, Timeout: time.Hour},
		{Key: []byte{17, 0, 0, 0, 0x13, 0x88, 0, 0}, Val: []byte{198, 51, 100, 11, 0x13, 0x89, 0, 0}},
	}
	b := appendElemMsg(nil, 7, DefaultTable, inboundName, elems, false)
	if n := binary.NativeEndian.Uint32(b); int(n) != len(b) {
		t.Fatalf("message length %d; have %d bytes", n, len(b))
	}
	if typ := binary.NativeEndian.Uint16(b[4:]); typ != unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM {
		t.Errorf("message type %#x", typ)
	}
	if seq := binary.NativeEndian.Uint32(b[8:]); seq != 7 {
		t.Errorf("sequence %d; want 7", seq)
	}
	got, err := decodeAll(b[nlmsgHeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	want := []elemCopy{
		{key: string(elems[0].Key), val: string(elems[0].Val), timeout: time.Hour},
		{key: string(elems[1].Key), val: string(elems[1].Val)},
	}
	if !slices.Equal(got, want) {
		t.Errorf("decoded %+v; want %+v", got, want)
	}
	del := appendElemMsg(nil, 8, DefaultTable, inboundName, elems[:1], true)
	if typ := binary.NativeEndian.Uint16(del[4:]); typ != unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_DELSETELEM {
		t.Errorf("deletion message type %#x", typ)
	}
}

// TestCommitElems adds elements through commitElems, and checks that a
// deletion of an element the kernel lacks fails the transaction with
// ENOENT and changes nothing.
func TestCommitElems(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{})
	s, err := dialNF(ns.fd, setSendBuffer, capAcks)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	key := []byte{6, 0, 0, 0, 0x1f, 0x90, 0, 0}
	val := []byte{198, 51, 100, 10, 0, 80, 0, 0}
	add := &plan{addIn: []nftables.SetElement{{Key: key, Val: val, Timeout: time.Hour}}}
	if err := s.commitElems(DefaultTable, add); err != nil {
		t.Fatal(err)
	}
	want := []string{"tcp 8080 -> 198.51.100.10:80"}
	if got := inboundElements(t, f); !slices.Equal(got, want) {
		t.Fatalf("after commitElems: inbound %v; want %v", got, want)
	}
	other := []byte{17, 0, 0, 0, 0x13, 0x88, 0, 0}
	bad := &plan{
		delIn: []nftables.SetElement{{Key: other}},
		addIn: []nftables.SetElement{{Key: other, Val: val}},
	}
	if err := s.commitElems(DefaultTable, bad); !errors.Is(err, unix.ENOENT) {
		t.Errorf("deleting an element the kernel lacks: %v; want ENOENT", err)
	}
	if got := inboundElements(t, f); !slices.Equal(got, want) {
		t.Errorf("after a failed transaction: inbound %v; want %v", got, want)
	}
	// Nothing to send: no transaction, no error.
	if err := s.commitElems(DefaultTable, &plan{}); err != nil {
		t.Errorf("commitElems of nothing: %v", err)
	}
}
