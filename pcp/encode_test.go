package pcp

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// TestAppendBinaryRefuses checks that what cannot go on the wire is refused
// and leaves b unchanged.
func TestAppendBinaryRefuses(t *testing.T) {
	base := Request{Opcode: OpMap, Lifetime: 7200, Client: lanHost, Map: MapData{Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80}}
	with := func(f func(*Request)) Request { r := base; f(&r); return r }
	tests := []struct {
		name string
		req  Request
		want error
	}{
		{"opcode 3", with(func(r *Request) { r.Opcode = 3 }), ErrOpcode},
		{"R bit in the opcode", with(func(r *Request) { r.Opcode = OpMap | ResponseBit }), ErrOpcode},
		{"PREFER_FAILURE with PEER", with(func(r *Request) { r.Opcode = OpPeer; r.Options.PreferFailure = true }), ErrOption},
		{"FILTER with PEER", with(func(r *Request) {
			r.Opcode = OpPeer
			r.Options.Filters = []Filter{{Remote: netip.MustParsePrefix("203.0.113.0/24")}}
		}), ErrOption},
		{"THIRD_PARTY with ANNOUNCE", with(func(r *Request) { r.Opcode = OpAnnounce; r.Options.ThirdParty = lanOther }), ErrOption},
		{"FILTER without prefix", with(func(r *Request) { r.Options.Filters = []Filter{{Port: 80}} }), ErrOption},
		{"FILTER of an IPv4-mapped prefix", with(func(r *Request) {
			r.Options.Filters = []Filter{{Remote: netip.MustParsePrefix("::ffff:203.0.113.0/120")}}
		}), ErrOption},
		{"DESCRIPTION not UTF-8", with(func(r *Request) { r.Options.Description = "\xff" }), ErrOption},
		{"DESCRIPTION too long", with(func(r *Request) { r.Options.Description = strings.Repeat("a", MaxDescriptionLen+1) }), ErrOption},
		{"longer than 1100 bytes", with(func(r *Request) {
			r.Options.Filters = make([]Filter, (MaxMessageLen-HeaderLen-MapDataLen)/(OptionHeaderLen+FilterLen)+1)
			for i := range r.Options.Filters {
				r.Options.Filters[i].Remote = netip.MustParsePrefix("203.0.113.0/24")
			}
		}), ErrLongPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte("prefix")
			got, err := tt.req.AppendBinary(b)
			if !errors.Is(err, tt.want) || string(got) != "prefix" {
				t.Errorf("Request.AppendBinary = %x, %v; want b unchanged, %v", got, err, tt.want)
			}
			resp := Response{Opcode: tt.req.Opcode, Map: tt.req.Map, Options: tt.req.Options}
			got, err = resp.AppendBinary(b)
			if !errors.Is(err, tt.want) || string(got) != "prefix" {
				t.Errorf("Response.AppendBinary = %x, %v; want b unchanged, %v", got, err, tt.want)
			}
		})
	}
}

// TestLongestDescription checks RFC 7220's bound: a PEER request with a
// MaxDescriptionLen description is exactly MaxMessageLen bytes.
func TestLongestDescription(t *testing.T) {
	r := Request{Opcode: OpPeer, Client: lanHost, Options: Options{Description: strings.Repeat("é", MaxDescriptionLen/2), HasDescription: true}}
	b, err := r.MarshalBinary()
	if err != nil || len(b) != MaxMessageLen {
		t.Fatalf("MarshalBinary = %d bytes, %v; want %d", len(b), err, MaxMessageLen)
	}
	got, err := ParseRequest(b)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("ParseRequest = %+v, %v; want %+v", got, err, r)
	}
}

// TestUnspecifiedExternalAddr checks §11.1's all-zeros addresses: the
// IPv4 one for a client that wants an IPv4 mapping, :: otherwise.
func TestUnspecifiedExternalAddr(t *testing.T) {
	for _, tt := range []struct {
		addr netip.Addr
		hex  string
	}{
		{netip.IPv4Unspecified(), hexV4Any},
		{netip.Addr{}, hexV6Any},
		{netip.IPv6Unspecified(), hexV6Any},
	} {
		r := Request{Opcode: OpMap, Lifetime: 7200, Client: lanHost, Map: MapData{
			Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80, ExternalPort: 80, ExternalAddr: tt.addr}}
		b, err := r.MarshalBinary()
		want := unhex(t, hexMapHeader+hexNonce+" 06 000000 0050 0050 "+tt.hex)
		if err != nil || string(b) != string(want) {
			t.Errorf("ExternalAddr %v: MarshalBinary = %x, %v; want %x", tt.addr, b, err, want)
		}
		got, err := ParseRequest(b)
		if err != nil || got.Map.ExternalAddr.IsValid() {
			t.Errorf("ParseRequest(%x).Map.ExternalAddr = %v, %v; want the zero Addr", b, got.Map.ExternalAddr, err)
		}
	}
}

func TestEffectiveFilters(t *testing.T) {
	a := Filter{Remote: netip.MustParsePrefix("203.0.113.7/32"), Port: 443}
	b := Filter{Remote: netip.MustParsePrefix("203.0.113.0/24")}
	none := Filter{Remote: netip.MustParsePrefix("0.0.0.0/0"), Port: 80}
	for _, tt := range []struct {
		in, want []Filter
	}{
		{nil, nil},
		{[]Filter{a, b}, []Filter{a, b}},
		{[]Filter{a, none}, nil},
		{[]Filter{a, none, b}, []Filter{b}},
	} {
		if got := (Options{Filters: tt.in}).EffectiveFilters(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("EffectiveFilters(%v) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

// TestResponseRefusals checks what a client does not accept (§7, §8.2).
func TestResponseRefusals(t *testing.T) {
	ok := hexRespHeader("81", "00", "00001c20") + hexMapTCP80
	for _, tt := range []struct {
		name, hex string
		want      error
	}{
		{"short header", "02 81 0000", ErrShortPacket},
		{"a request", "02 01" + ok[5:], ErrNotResponse},
		{"NAT-PMP's version 0", "00 81" + ok[5:], ErrVersion},
		{"version 1", "01 81" + ok[5:], ErrVersion},
		{"not a multiple of 4", ok + "00", ErrNotMultipleOf4},
		{"unknown opcode", "02 83" + ok[5:], ErrOpcode},
		{"SUCCESS without the MAP data", hexRespHeader("81", "00", "00001c20"), ErrShortPacket},
		{"SUCCESS with a malformed option", ok + "02 00 0004 00000000", ErrOption},
	} {
		var r Response
		if err := r.UnmarshalBinary(unhex(t, tt.hex)); !errors.Is(err, tt.want) {
			t.Errorf("%s: UnmarshalBinary = %v; want %v", tt.name, err, tt.want)
		}
	}
}
