package pcpsrv

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/pcp"
)

// TestMalformed: each kind of bad packet of RFC 6887 §7 and §8.3 gets the
// result code the RFC names, or no answer where it says to drop.
func TestMalformed(t *testing.T) {
	s, table := newServer(t, gateway.Policy{})
	valid := func() []byte { return encode(t, mapReq(host, nonceA, pcp.ProtocolTCP, 8080, 0, 600)) }
	withOption := func(code byte, body []byte) []byte {
		b := valid()
		b = append(b, code, 0, byte(len(body)>>8), byte(len(body)))
		b = append(b, body...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	set := func(b []byte, i int, v byte) []byte { b[i] = v; return b }
	tests := []struct {
		name string
		pkt  []byte
		code pcp.ResultCode
		drop bool
	}{
		{name: "one byte", pkt: []byte{2}, drop: true},
		{name: "R bit set", pkt: set(valid(), 1, byte(pcp.OpMap|pcp.ResponseBit)), drop: true},
		{name: "version 1", pkt: set(valid(), 0, 1), code: pcp.UnsuppVersion},
		{name: "version 3", pkt: set(valid(), 0, 3), code: pcp.UnsuppVersion},
		{name: "header cut short", pkt: valid()[:20], drop: true},
		{name: "not a multiple of 4", pkt: append(valid(), 0), code: pcp.MalformedRequest},
		{name: "longer than 1100 bytes", pkt: append(valid(), make([]byte, pcp.MaxMessageLen)...), code: pcp.MalformedRequest},
		{name: "MAP data cut short", pkt: valid()[:pcp.HeaderLen+pcp.MapDataLen-4], code: pcp.MalformedRequest},
		{name: "unknown opcode", pkt: set(valid(), 1, 99), code: pcp.UnsuppOpcode},
		{name: "unknown mandatory option", pkt: withOption(99, nil), code: pcp.UnsuppOption},
		{name: "PREFER_FAILURE with a body", pkt: withOption(byte(pcp.OptPreferFailure), []byte{1, 2, 3, 4}), code: pcp.MalformedOption},
		{name: "THIRD_PARTY too short", pkt: withOption(byte(pcp.OptThirdParty), make([]byte, 4)), code: pcp.MalformedOption},
		{name: "unknown optional option", pkt: withOption(200, []byte{1, 2, 3, 4}), code: pcp.Success},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := s.Handle(context.Background(), tc.pkt, netip.AddrPortFrom(host, 5350), gw4, nil)
			if tc.drop {
				if raw != nil {
					t.Fatalf("answered %x; want the packet dropped", raw)
				}
				return
			}
			if raw == nil {
				t.Fatal("no answer")
			}
			if raw[0] != pcp.Version || raw[1]&pcp.ResponseBit == 0 || pcp.ResultCode(raw[3]) != tc.code {
				t.Fatalf("answer %x: want version 2, R bit, result %v", raw[:4], tc.code)
			}
			if tc.code != pcp.Success {
				if got := beUint32(raw[4:]); got != tc.code.ErrorLifetime() {
					t.Errorf("lifetime %d; want %d", got, tc.code.ErrorLifetime())
				}
				if got := beUint32(raw[8:]); got != table.Epoch() {
					t.Errorf("epoch %d; want %d", got, table.Epoch())
				}
			}
		})
	}
}

// TestAddressMismatch: a client address field other than the packet's
// source is ADDRESS_MISMATCH (§8.3), before opcode and option errors.
func TestAddressMismatch(t *testing.T) {
	s, table := newServer(t, gateway.Policy{})
	pkt := encode(t, mapReq(other, nonceA, pcp.ProtocolTCP, 8080, 0, 600))
	r, raw := send(t, s, pkt, host)
	wantResult(t, "client field of another host", r, pcp.AddressMismatch)
	if !bytes.Equal(raw[pcp.HeaderLen:], pkt[pcp.HeaderLen:]) {
		t.Errorf("error response does not copy the request's MAP data")
	}
	if table.Len() != 0 {
		t.Fatal("a mismatched request made a lease")
	}
	pkt[1] = 99
	raw = s.Handle(context.Background(), pkt, netip.AddrPortFrom(host, 5350), gw4, nil)
	if len(raw) < pcp.HeaderLen || pcp.ResultCode(raw[3]) != pcp.AddressMismatch {
		t.Fatalf("unknown opcode from another address: answer %x; want ADDRESS_MISMATCH", raw)
	}

	// The IPv4-mapped form of the source is the same address.
	r, _ = send(t, s, encode(t, mapReq(host, nonceA, pcp.ProtocolTCP, 8080, 0, 600)), netip.AddrFrom16(host.As16()))
	wantResult(t, "IPv4-mapped source", r, pcp.Success)
}

// TestAnnounce: an ANNOUNCE request is answered with SUCCESS and the
// epoch (§14.1.1); the unsolicited one decodes alike (§14.1.3).
func TestAnnounce(t *testing.T) {
	s, table := newServer(t, gateway.Policy{})
	r := ask(t, s, pcp.Request{Opcode: pcp.OpAnnounce, Client: host})
	wantResult(t, "ANNOUNCE", r, pcp.Success)
	if r.Opcode != pcp.OpAnnounce || r.Lifetime != 0 || r.Epoch != table.Epoch() {
		t.Fatalf("ANNOUNCE answered %+v; want ANNOUNCE, lifetime 0, epoch %d", r, table.Epoch())
	}
	var u pcp.Response
	if err := u.UnmarshalBinary(s.Announcement(nil)); err != nil {
		t.Fatal(err)
	}
	if u.Opcode != pcp.OpAnnounce || u.Result != pcp.Success || u.Epoch != table.Epoch() {
		t.Fatalf("unsolicited ANNOUNCE %+v; want ANNOUNCE, SUCCESS, the epoch", u)
	}
}

func beUint32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
