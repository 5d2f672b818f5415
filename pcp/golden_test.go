package pcp

import (
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// unhex decodes a hex string with spaces.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// The addresses of the golden packets: the lab's LAN and WAN (RFC 5737,
// RFC 3849 documentation ranges).
var (
	lanHost  = netip.MustParseAddr("198.51.100.10")
	lanOther = netip.MustParseAddr("198.51.100.11")
	wanAddr  = netip.MustParseAddr("203.0.113.1")
	lanHost6 = netip.MustParseAddr("2001:db8:1::10")
	nonce    = [NonceLen]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
)

// Hex of the fields the golden packets share.
const (
	hexLanHost    = "00000000000000000000ffff c633640a" // ::ffff:198.51.100.10
	hexLanOther   = "00000000000000000000ffff c633640b" // ::ffff:198.51.100.11
	hexWanAddr    = "00000000000000000000ffff cb007101" // ::ffff:203.0.113.1
	hexLanHost6   = "20010db8000100000000000000000010"  // 2001:db8:1::10
	hexV4Any      = "00000000000000000000ffff 00000000" // ::ffff:0.0.0.0
	hexV6Any      = "00000000000000000000000000000000"  // ::
	hexNonce      = "0102030405060708090a0b0c"
	hexMapHeader  = "02 01 0000 00001c20 " + hexLanHost // MAP, 7200 s
	hexMapTCP80   = hexNonce + " 06 000000 0050 0050 " + hexV4Any
	hexMapRequest = hexMapHeader + hexMapTCP80
)

// requestGolden is a request packet and its decoded form.
type requestGolden struct {
	name string // source: the RFC figure it was built from by hand, or a published test
	hex  string
	want Request
	// decodeOnly: the packet has bytes the encoder writes otherwise
	// (reserved fields, ::ffff:0.0.0.0, host bits, ignored options).
	decodeOnly bool
}

func requestGoldens() []requestGolden {
	mapTCP80 := MapData{Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80, ExternalPort: 80}
	return []requestGolden{
		{
			name: "by hand from §7.1 Figure 2 and §14.1: ANNOUNCE",
			hex:  "02 00 0000 00000000 " + hexLanHost,
			want: Request{Opcode: OpAnnounce, Client: lanHost},
		},
		{
			name: "by hand from §11.1 Figure 9: MAP TCP 80, suggest 80, IPv4 any address (decodes to the zero Addr)",
			hex:  hexMapRequest,
			want: Request{Opcode: OpMap, Lifetime: 7200, Client: lanHost, Map: mapTCP80},
			// ::ffff:0.0.0.0 decodes to the zero Addr, which encodes as ::.
			decodeOnly: true,
		},
		{
			name: "by hand from §11.1 Figure 9: MAP TCP 80 for 203.0.113.1:8080, suggested",
			hex:  hexMapHeader + hexNonce + " 06 000000 0050 1f90 " + hexWanAddr,
			want: Request{Opcode: OpMap, Lifetime: 7200, Client: lanHost, Map: MapData{
				Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80, ExternalPort: 8080, ExternalAddr: wanAddr}},
		},
		{
			name: "by hand from §11.1, §13.3 Figure 13, RFC 7220: IPv6 pinhole UDP 51413 with FILTER 2001:db8:2::/48 and DESCRIPTION",
			hex: "02 01 0000 00000e10 " + hexLanHost6 +
				hexNonce + " 11 000000 c8d5 0000 " + hexV6Any +
				"03 00 0014 00 30 0000 20010db8000200000000000000000000" +
				"80 00 0004 6564326b",
			want: Request{Opcode: OpMap, Lifetime: 3600, Client: lanHost6,
				Map: MapData{Nonce: nonce, Protocol: ProtocolUDP, InternalPort: 51413},
				Options: Options{
					Filters:     []Filter{{Remote: netip.MustParsePrefix("2001:db8:2::/48")}},
					Description: "ed2k", HasDescription: true,
				}},
		},
		{
			name: "by hand from §11.1, §13.1 Figure 12, §13.2: MAP delete for a third party, PREFER_FAILURE",
			hex: "02 01 0000 00000000 " + hexLanHost +
				hexNonce + " 06 000000 0050 1f90 " + hexWanAddr +
				"01 00 0010 " + hexLanOther +
				"02 00 0000",
			want: Request{Opcode: OpMap, Client: lanHost,
				Map:     MapData{Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80, ExternalPort: 8080, ExternalAddr: wanAddr},
				Options: Options{ThirdParty: lanOther, PreferFailure: true}},
		},
		{
			name: "by hand from §13.3 Figure 13: FILTER 203.0.113.7/32 port 443 (prefix length 96+32), then 0 (no filter)",
			hex: hexMapHeader + hexMapTCP80[:len(hexMapTCP80)-len(hexV4Any)] + hexWanAddr +
				"03 00 0014 00 80 01bb 00000000000000000000ffff cb007107" +
				"03 00 0014 00 00 0000 " + hexV6Any,
			want: Request{Opcode: OpMap, Lifetime: 7200, Client: lanHost,
				Map: MapData{Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80, ExternalPort: 80, ExternalAddr: wanAddr},
				Options: Options{Filters: []Filter{
					{Remote: netip.MustParsePrefix("203.0.113.7/32"), Port: 443},
					{Remote: netip.MustParsePrefix("::/0")},
				}}},
		},
		{
			name: "by hand from RFC 7220: DESCRIPTION of 6 bytes (UTF-8) padded with 2 zeros",
			hex:  hexMapHeader + hexMapTCP80[:len(hexMapTCP80)-len(hexV4Any)] + hexWanAddr + "80 00 0006 68c3a96c6c6f 0000",
			want: Request{Opcode: OpMap, Lifetime: 7200, Client: lanHost,
				Map:     MapData{Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80, ExternalPort: 80, ExternalAddr: wanAddr},
				Options: Options{Description: "héllo", HasDescription: true}},
		},
		{
			name: "by hand from §7.1, §7.3: reserved fields set, an unknown optional option (ignored), FILTER host bits set",
			hex: "02 01 abcd 00001c20 " + hexLanHost +
				hexNonce + " 06 ffffff 0050 0050 " + hexV4Any +
				"99 ff 0003 aabbcc 00" +
				"03 ff 0014 ff 78 0000 00000000000000000000ffff cb00714d",
			want: Request{Opcode: OpMap, Lifetime: 7200, Client: lanHost, Map: mapTCP80,
				Options: Options{Ignored: 1, Filters: []Filter{{Remote: netip.MustParsePrefix("203.0.113.0/24")}}}},
			decodeOnly: true,
		},
		{
			// baresip/re test/pcp.c, peer_request[]: a PEER request with
			// THIRD_PARTY, encoded by libre's pcp_msg_req_encode.
			name: "published: baresip/re test/pcp.c peer_request (PEER UDP 5004, THIRD_PARTY)",
			hex: "02 02 0000 00000258 2a001450400f08030000000000001000" +
				"a95fc9b7123ba96633cde2b9 11 000000 138c 138d 2a001450400f08030000000000002000" +
				"138e 0000 2a001450400f08030000000000003000" +
				"01 00 0010 2a001450400f08030000000000004000",
			want: Request{Opcode: OpPeer, Lifetime: 600, Client: netip.MustParseAddr("2a00:1450:400f:803::1000"),
				Peer: PeerData{
					MapData: MapData{
						Nonce:    [NonceLen]byte{0xa9, 0x5f, 0xc9, 0xb7, 0x12, 0x3b, 0xa9, 0x66, 0x33, 0xcd, 0xe2, 0xb9},
						Protocol: ProtocolUDP, InternalPort: 5004, ExternalPort: 5005,
						ExternalAddr: netip.MustParseAddr("2a00:1450:400f:803::2000"),
					},
					RemotePort: 5006,
					RemoteAddr: netip.MustParseAddr("2a00:1450:400f:803::3000"),
				},
				Options: Options{ThirdParty: netip.MustParseAddr("2a00:1450:400f:803::4000")}},
		},
	}
}

func TestRequestGoldens(t *testing.T) {
	for _, g := range requestGoldens() {
		t.Run(g.name, func(t *testing.T) {
			pkt := unhex(t, g.hex)
			got, err := ParseRequest(pkt)
			if err != nil || !reflect.DeepEqual(got, g.want) {
				t.Fatalf("ParseRequest(%x) =\n%+v, %v; want\n%+v", pkt, got, err, g.want)
			}
			var r Request
			if err := r.UnmarshalBinary(pkt); err != nil || !reflect.DeepEqual(r, g.want) {
				t.Fatalf("UnmarshalBinary = %+v, %v; want %+v", r, err, g.want)
			}
			if g.decodeOnly {
				return
			}
			enc, err := g.want.MarshalBinary()
			if err != nil || hex.EncodeToString(enc) != hex.EncodeToString(pkt) {
				t.Fatalf("MarshalBinary = %x, %v; want %x", enc, err, pkt)
			}
		})
	}
}

// responseGolden is a response packet and its decoded form.
type responseGolden struct {
	name       string
	hex        string
	want       Response
	decodeOnly bool
}

// hexRespHeader is a response header: opcode with R, result, lifetime,
// epoch 3600, reserved.
func hexRespHeader(opR, result, lifetime string) string {
	return "02 " + opR + " 00 " + result + " " + lifetime + " 00000e10 000000000000000000000000 "
}

func responseGoldens() []responseGolden {
	assigned := MapData{Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80, ExternalPort: 61440, ExternalAddr: wanAddr}
	return []responseGolden{
		{
			name: "by hand from §7.2 Figure 3, §14.1: ANNOUNCE, epoch 3600",
			hex:  hexRespHeader("80", "00", "00000000"),
			want: Response{Opcode: OpAnnounce, Epoch: 3600},
		},
		{
			name: "by hand from §11.1: MAP TCP 80 assigned 203.0.113.1:61440 for 7200 s",
			hex:  hexRespHeader("81", "00", "00001c20") + hexNonce + " 06 000000 0050 f000 " + hexWanAddr,
			want: Response{Opcode: OpMap, Lifetime: 7200, Epoch: 3600, Map: assigned},
		},
		{
			name: "by hand from §11.1, §13.2: CANNOT_PROVIDE_EXTERNAL (30 s) with PREFER_FAILURE repeated",
			hex:  hexRespHeader("81", "0b", "0000001e") + hexNonce + " 06 000000 0050 1f90 " + hexWanAddr + "02 00 0000",
			want: Response{Opcode: OpMap, Result: CannotProvideExternal, Lifetime: 30, Epoch: 3600,
				Map:     MapData{Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80, ExternalPort: 8080, ExternalAddr: wanAddr},
				Options: Options{PreferFailure: true}},
		},
		{
			name: "by hand from §12.1 Figure 10: PEER UDP 5004 to [2001:db8:2::1]:5006",
			hex: hexRespHeader("82", "00", "00000258") + hexNonce + " 11 000000 138c 138d 20010db8000300000000000000000001" +
				"138e 0000 20010db8000200000000000000000001",
			want: Response{Opcode: OpPeer, Lifetime: 600, Epoch: 3600, Peer: PeerData{
				MapData: MapData{Nonce: nonce, Protocol: ProtocolUDP, InternalPort: 5004, ExternalPort: 5005,
					ExternalAddr: netip.MustParseAddr("2001:db8:3::1")},
				RemotePort: 5006, RemoteAddr: netip.MustParseAddr("2001:db8:2::1"),
			}},
		},
		{
			name: "by hand from §8.3: MALFORMED_REQUEST to a MAP cut short: header only",
			hex:  hexRespHeader("81", "03", "00000708") + hexNonce,
			want: Response{Opcode: OpMap, Result: MalformedRequest, Lifetime: 1800, Epoch: 3600},
			// The encoder writes the whole MAP data.
			decodeOnly: true,
		},
		{
			name: "by hand from §7.3: UNSUPP_OPTION echoing the unknown mandatory option (ignored by a client)",
			hex:  hexRespHeader("81", "05", "00000708") + hexMapTCP80 + "7e 00 0000",
			want: Response{Opcode: OpMap, Result: UnsuppOption, Lifetime: 1800, Epoch: 3600,
				Map:     MapData{Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80, ExternalPort: 80},
				Options: Options{Ignored: 1}},
			decodeOnly: true,
		},
		{
			name: "by hand from §13.3: MALFORMED_OPTION echoing a FILTER of prefix length 200: options left out",
			hex: hexRespHeader("81", "06", "00000708") + hexMapTCP80 +
				"03 00 0014 00 c8 0000 " + hexV6Any,
			want: Response{Opcode: OpMap, Result: MalformedOption, Lifetime: 1800, Epoch: 3600,
				Map: MapData{Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80, ExternalPort: 80}},
			decodeOnly: true,
		},
	}
}

func TestResponseGoldens(t *testing.T) {
	for _, g := range responseGoldens() {
		t.Run(g.name, func(t *testing.T) {
			pkt := unhex(t, g.hex)
			var got Response
			if err := got.UnmarshalBinary(pkt); err != nil || !reflect.DeepEqual(got, g.want) {
				t.Fatalf("UnmarshalBinary(%x) =\n%+v, %v; want\n%+v", pkt, got, err, g.want)
			}
			if g.decodeOnly {
				return
			}
			enc, err := g.want.MarshalBinary()
			if err != nil || hex.EncodeToString(enc) != hex.EncodeToString(pkt) {
				t.Fatalf("MarshalBinary = %x, %v; want %x", enc, err, pkt)
			}
		})
	}
}
