package natpmp

import (
	"bytes"
	"encoding"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// The message types satisfy the standard binary interfaces.
var (
	_ encoding.BinaryAppender    = ExternalAddressRequest{}
	_ encoding.BinaryAppender    = ExternalAddressResponse{}
	_ encoding.BinaryAppender    = MappingRequest{}
	_ encoding.BinaryAppender    = MappingResponse{}
	_ encoding.BinaryAppender    = ResponseHeader{}
	_ encoding.BinaryMarshaler   = MappingResponse{}
	_ encoding.BinaryUnmarshaler = (*ExternalAddressRequest)(nil)
	_ encoding.BinaryUnmarshaler = (*ExternalAddressResponse)(nil)
	_ encoding.BinaryUnmarshaler = (*MappingRequest)(nil)
	_ encoding.BinaryUnmarshaler = (*MappingResponse)(nil)
	_ encoding.BinaryUnmarshaler = (*ResponseHeader)(nil)
)

// unhex decodes a hex string in which spaces separate fields.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// wanAddr returns the external address of the golden packets: the lab's WAN
// address of the gateway (documentation range TEST-NET-3, RFC 5737).
func wanAddr() netip.Addr { return netip.AddrFrom4([4]byte{203, 0, 113, 1}) }

// requestGolden is a request packet built from an RFC 6886 figure.
type requestGolden struct {
	name string // RFC section and what the packet is
	hex  string
	want Request
	// decodeOnly marks packets whose re-encoding differs: fields the
	// receiver must ignore are not zero on the wire.
	decodeOnly bool
}

// requestGoldens returns the request packets of RFC 6886, one or more per
// figure, with field values chosen for the test.
func requestGoldens() []requestGolden {
	return []requestGolden{
		{
			name: "§3.2 external address request",
			hex:  "00 00",
			want: Request{Opcode: OpExternalAddress},
		},
		{
			name: "§3.3 map TCP 80, suggest 80, recommended lifetime 7200",
			hex:  "00 02 0000 0050 0050 00001c20",
			want: Request{Opcode: OpMapTCP, Mapping: MappingRequest{
				Opcode: OpMapTCP, InternalPort: 80, SuggestedExternalPort: 80, Lifetime: 7200}},
		},
		{
			name: "§3.3 map UDP 51413, any external port, 3600 s",
			hex:  "00 01 0000 c8d5 0000 00000e10",
			want: Request{Opcode: OpMapUDP, Mapping: MappingRequest{
				Opcode: OpMapUDP, InternalPort: 51413, Lifetime: 3600}},
		},
		{
			name: "§3.3 renewal: suggested port is the one assigned, 61440",
			hex:  "00 01 0000 c8d5 f000 00000e10",
			want: Request{Opcode: OpMapUDP, Mapping: MappingRequest{
				Opcode: OpMapUDP, InternalPort: 51413, SuggestedExternalPort: 61440, Lifetime: 3600}},
		},
		{
			name: "§3.3 reserved field set: MUST be ignored on reception",
			hex:  "00 02 abcd 0050 0050 00001c20",
			want: Request{Opcode: OpMapTCP, Mapping: MappingRequest{
				Opcode: OpMapTCP, InternalPort: 80, SuggestedExternalPort: 80, Lifetime: 7200}},
			decodeOnly: true,
		},
		{
			name: "§3.4 delete UDP 51413",
			hex:  "00 01 0000 c8d5 0000 00000000",
			want: Request{Opcode: OpMapUDP, Mapping: MappingRequest{Opcode: OpMapUDP, InternalPort: 51413}},
		},
		{
			name: "§3.4 delete all TCP mappings",
			hex:  "00 02 0000 0000 0000 00000000",
			want: Request{Opcode: OpMapTCP, Mapping: MappingRequest{Opcode: OpMapTCP}},
		},
		{
			name: "§3.3 largest values",
			hex:  "00 02 0000 ffff ffff ffffffff",
			want: Request{Opcode: OpMapTCP, Mapping: MappingRequest{
				Opcode: OpMapTCP, InternalPort: 65535, SuggestedExternalPort: 65535, Lifetime: 1<<32 - 1}},
		},
	}
}

// responseGolden is a response packet built from an RFC 6886 figure.
type responseGolden struct {
	name       string // RFC section and what the packet is
	hex        string
	want       Response
	decodeOnly bool // see requestGolden
	// headerOnly marks the short error replies that only ParseResponse
	// and ResponseHeader take.
	headerOnly bool
}

// responseGoldens returns the response packets of RFC 6886.
func responseGoldens() []responseGolden {
	return []responseGolden{
		{
			name: "§3.2 external address 203.0.113.1, epoch 3600",
			hex:  "00 80 0000 00000e10 cb007101",
			want: Response{
				Header:          ResponseHeader{Opcode: OpExternalAddress, Epoch: 3600},
				ExternalAddress: ExternalAddressResponse{Epoch: 3600, Address: wanAddr()},
			},
		},
		{
			name: "§3.2.1 announcement after a reboot, epoch 0",
			hex:  "00 80 0000 00000000 cb007101",
			want: Response{
				Header:          ResponseHeader{Opcode: OpExternalAddress},
				ExternalAddress: ExternalAddressResponse{Address: wanAddr()},
			},
		},
		{
			name: "§3.2 network failure, address zero",
			hex:  "00 80 0003 00000e10 00000000",
			want: Response{
				Header:          ResponseHeader{Opcode: OpExternalAddress, ResultCode: NetworkFailure, Epoch: 3600},
				ExternalAddress: ExternalAddressResponse{ResultCode: NetworkFailure, Epoch: 3600},
			},
		},
		{
			name: "§3.2 failure with an address: MUST be ignored on reception",
			hex:  "00 80 0002 00000e10 cb007101",
			want: Response{
				Header:          ResponseHeader{Opcode: OpExternalAddress, ResultCode: NotAuthorized, Epoch: 3600},
				ExternalAddress: ExternalAddressResponse{ResultCode: NotAuthorized, Epoch: 3600},
			},
			decodeOnly: true,
		},
		{
			name: "§3.3 TCP 80 mapped to 80 for 7200 s",
			hex:  "00 82 0000 00000e10 0050 0050 00001c20",
			want: Response{
				Header: ResponseHeader{Opcode: OpMapTCP, Epoch: 3600},
				Mapping: MappingResponse{Opcode: OpMapTCP, Epoch: 3600,
					InternalPort: 80, ExternalPort: 80, Lifetime: 7200},
			},
		},
		{
			name: "§3.3 UDP 51413 mapped to 61440, lifetime reduced to 1800",
			hex:  "00 81 0000 00000e10 c8d5 f000 00000708",
			want: Response{
				Header: ResponseHeader{Opcode: OpMapUDP, Epoch: 3600},
				Mapping: MappingResponse{Opcode: OpMapUDP, Epoch: 3600,
					InternalPort: 51413, ExternalPort: 61440, Lifetime: 1800},
			},
		},
		{
			name: "§3.4 deletion of UDP 51413 done",
			hex:  "00 81 0000 00000e10 c8d5 0000 00000000",
			want: Response{
				Header:  ResponseHeader{Opcode: OpMapUDP, Epoch: 3600},
				Mapping: MappingResponse{Opcode: OpMapUDP, Epoch: 3600, InternalPort: 51413},
			},
		},
		{
			name: "§3.4 deletion of all TCP mappings done",
			hex:  "00 82 0000 00000e10 0000 0000 00000000",
			want: Response{
				Header:  ResponseHeader{Opcode: OpMapTCP, Epoch: 3600},
				Mapping: MappingResponse{Opcode: OpMapTCP, Epoch: 3600},
			},
		},
		{
			name: "§3.4 deletion of manual TCP 80 refused: not authorized",
			hex:  "00 82 0002 00000e10 0050 0050 00000000",
			want: Response{
				Header: ResponseHeader{Opcode: OpMapTCP, ResultCode: NotAuthorized, Epoch: 3600},
				Mapping: MappingResponse{Opcode: OpMapTCP, ResultCode: NotAuthorized, Epoch: 3600,
					InternalPort: 80, ExternalPort: 80},
			},
		},
		{
			name: "§3.5 mapping failed: out of resources, internal port kept",
			hex:  "00 81 0004 00000e10 c8d5 0000 00000000",
			want: Response{
				Header: ResponseHeader{Opcode: OpMapUDP, ResultCode: OutOfResources, Epoch: 3600},
				Mapping: MappingResponse{Opcode: OpMapUDP, ResultCode: OutOfResources, Epoch: 3600,
					InternalPort: 51413},
			},
		},
		{
			name: "§3.5 unsupported version (erratum 3618: opcode 128)",
			hex:  "00 80 0001 00000e10",
			want: Response{
				Header:          ResponseHeader{Opcode: OpExternalAddress, ResultCode: UnsupportedVersion, Epoch: 3600},
				ExternalAddress: ExternalAddressResponse{ResultCode: UnsupportedVersion, Epoch: 3600},
			},
			headerOnly: true,
		},
		{
			name: "§3.5 unsupported version to a map UDP request",
			hex:  "00 81 0001 00000e10",
			want: Response{
				Header:  ResponseHeader{Opcode: OpMapUDP, ResultCode: UnsupportedVersion, Epoch: 3600},
				Mapping: MappingResponse{Opcode: OpMapUDP, ResultCode: UnsupportedVersion, Epoch: 3600},
			},
			headerOnly: true,
		},
		{
			name: "§3.5 unsupported opcode 99, the 12-byte request echoed",
			hex:  "00 e3 0005 00000e10 01020304",
			want: Response{
				Header: ResponseHeader{Opcode: 99, ResultCode: UnsupportedOpcode, Epoch: 3600},
			},
			decodeOnly: true,
		},
	}
}

func TestConstants(t *testing.T) {
	tests := []struct {
		name      string
		got, want int
	}{
		{"Version", Version, 0},
		{"ServerPort", ServerPort, 5351},
		{"ClientPort", ClientPort, 5350},
		{"HeaderLen", HeaderLen, 2},
		{"ResponseHeaderLen", ResponseHeaderLen, 8},
		{"ExternalAddressRequestLen", ExternalAddressRequestLen, 2},
		{"ExternalAddressResponseLen", ExternalAddressResponseLen, 12},
		{"MappingRequestLen", MappingRequestLen, 12},
		{"MappingResponseLen", MappingResponseLen, 16},
		{"offResult", offResult, 2},
		{"offEpoch", offEpoch, 4},
		{"offAddress", offAddress, 8},
		{"offReqInternalPort", offReqInternalPort, 4},
		{"offReqSuggestedPort", offReqSuggestedPort, 6},
		{"offReqLifetime", offReqLifetime, 8},
		{"offRespInternalPort", offRespInternalPort, 8},
		{"offRespExternalPort", offRespExternalPort, 10},
		{"offRespLifetime", offRespLifetime, 12},
		{"OpExternalAddress", int(OpExternalAddress), 0},
		{"OpMapUDP", int(OpMapUDP), 1},
		{"OpMapTCP", int(OpMapTCP), 2},
		{"ResponseBit", int(ResponseBit), 128},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %d; want %d", tt.name, tt.got, tt.want)
			}
		})
	}
}

// TestGoldenRequests decodes each golden request with ParseRequest and its
// message type, and encodes the expected value back to the golden bytes.
func TestGoldenRequests(t *testing.T) {
	for _, g := range requestGoldens() {
		t.Run(g.name, func(t *testing.T) {
			pkt := unhex(t, g.hex)
			got, err := ParseRequest(pkt)
			if err != nil || got != g.want {
				t.Fatalf("ParseRequest(%x) = %+v, %v; want %+v", pkt, got, err, g.want)
			}
			var enc []byte
			switch g.want.Opcode {
			case OpExternalAddress:
				var m ExternalAddressRequest
				if err := m.UnmarshalBinary(pkt); err != nil {
					t.Fatalf("ExternalAddressRequest.UnmarshalBinary(%x) = %v; want nil", pkt, err)
				}
				enc, err = m.MarshalBinary()
			default:
				var m MappingRequest
				if err := m.UnmarshalBinary(pkt); err != nil || m != g.want.Mapping {
					t.Fatalf("MappingRequest.UnmarshalBinary(%x) = %v, %+v; want %+v", pkt, err, m, g.want.Mapping)
				}
				enc, err = g.want.Mapping.MarshalBinary()
			}
			if err != nil {
				t.Fatalf("MarshalBinary(%+v) = %v", g.want, err)
			}
			if !g.decodeOnly && !bytes.Equal(enc, pkt) {
				t.Errorf("MarshalBinary(%+v) = %x; want %x", g.want, enc, pkt)
			}
		})
	}
}

// TestGoldenResponses decodes each golden response with ParseResponse and
// its message type, and encodes the expected value back to the golden bytes.
func TestGoldenResponses(t *testing.T) {
	for _, g := range responseGoldens() {
		t.Run(g.name, func(t *testing.T) {
			pkt := unhex(t, g.hex)
			got, err := ParseResponse(pkt)
			if err != nil || got != g.want {
				t.Fatalf("ParseResponse(%x) = %+v, %v; want %+v", pkt, got, err, g.want)
			}
			var h ResponseHeader
			if err := h.UnmarshalBinary(pkt); err != nil || h != g.want.Header {
				t.Fatalf("ResponseHeader.UnmarshalBinary(%x) = %v, %+v; want %+v", pkt, err, h, g.want.Header)
			}
			var enc []byte
			switch {
			case g.headerOnly || !g.want.Header.Opcode.isMapping() && g.want.Header.Opcode != OpExternalAddress:
				enc, err = g.want.Header.MarshalBinary()
			case g.want.Header.Opcode == OpExternalAddress:
				var m ExternalAddressResponse
				if err := m.UnmarshalBinary(pkt); err != nil || m != g.want.ExternalAddress {
					t.Fatalf("ExternalAddressResponse.UnmarshalBinary(%x) = %v, %+v; want %+v",
						pkt, err, m, g.want.ExternalAddress)
				}
				enc, err = g.want.ExternalAddress.MarshalBinary()
			default:
				var m MappingResponse
				if err := m.UnmarshalBinary(pkt); err != nil || m != g.want.Mapping {
					t.Fatalf("MappingResponse.UnmarshalBinary(%x) = %v, %+v; want %+v", pkt, err, m, g.want.Mapping)
				}
				enc, err = g.want.Mapping.MarshalBinary()
			}
			if err != nil {
				t.Fatalf("MarshalBinary(%+v) = %v", g.want, err)
			}
			if !g.decodeOnly && !bytes.Equal(enc, pkt) {
				t.Errorf("MarshalBinary(%+v) = %x; want %x", g.want, enc, pkt)
			}
		})
	}
}

// TestUnmarshalErrors feeds every message type packets that are not that
// message.
func TestUnmarshalErrors(t *testing.T) {
	type unmarshaler interface{ UnmarshalBinary([]byte) error }
	tests := []struct {
		name string
		msg  func() unmarshaler
		hex  string
		want error
	}{
		{"ext req empty", func() unmarshaler { return new(ExternalAddressRequest) }, "", ErrShortPacket},
		{"ext req 1 byte", func() unmarshaler { return new(ExternalAddressRequest) }, "00", ErrShortPacket},
		{"ext req long", func() unmarshaler { return new(ExternalAddressRequest) }, "00 00 00", ErrLongPacket},
		{"ext req padded to 12", func() unmarshaler { return new(ExternalAddressRequest) }, "00 00 0000 0000 0000 00000000", ErrLongPacket},
		{"ext req version 1", func() unmarshaler { return new(ExternalAddressRequest) }, "01 00", ErrVersion},
		{"ext req version 2", func() unmarshaler { return new(ExternalAddressRequest) }, "02 00", ErrVersion},
		{"ext req opcode 1", func() unmarshaler { return new(ExternalAddressRequest) }, "00 01", ErrOpcode},
		{"ext req response bit", func() unmarshaler { return new(ExternalAddressRequest) }, "00 80", ErrNotRequest},

		{"map req short 11", func() unmarshaler { return new(MappingRequest) }, "00 01 0000 0050 0050 00001c", ErrShortPacket},
		{"map req header only", func() unmarshaler { return new(MappingRequest) }, "00 02", ErrShortPacket},
		{"map req long 13", func() unmarshaler { return new(MappingRequest) }, "00 02 0000 0050 0050 00001c20 00", ErrLongPacket},
		{"map req version 1", func() unmarshaler { return new(MappingRequest) }, "01 02 0000 0050 0050 00001c20", ErrVersion},
		{"map req opcode 0", func() unmarshaler { return new(MappingRequest) }, "00 00 0000 0050 0050 00001c20", ErrOpcode},
		{"map req opcode 3", func() unmarshaler { return new(MappingRequest) }, "00 03 0000 0050 0050 00001c20", ErrOpcode},
		{"map req opcode 99", func() unmarshaler { return new(MappingRequest) }, "00 63 0000 0050 0050 00001c20", ErrOpcode},
		{"map req response bit", func() unmarshaler { return new(MappingRequest) }, "00 82 0000 0050 0050 00001c20", ErrNotRequest},

		{"ext resp short 11", func() unmarshaler { return new(ExternalAddressResponse) }, "00 80 0000 00000e10 cb0071", ErrShortPacket},
		{"ext resp header only", func() unmarshaler { return new(ExternalAddressResponse) }, "00 80 0001 00000e10", ErrShortPacket},
		{"ext resp long 13", func() unmarshaler { return new(ExternalAddressResponse) }, "00 80 0000 00000e10 cb007101 00", ErrLongPacket},
		{"ext resp version 1", func() unmarshaler { return new(ExternalAddressResponse) }, "01 80 0000 00000e10 cb007101", ErrVersion},
		{"ext resp PCP", func() unmarshaler { return new(ExternalAddressResponse) }, "02 80 0001 00000e10 cb007101", ErrPCPServer},
		{"ext resp no response bit", func() unmarshaler { return new(ExternalAddressResponse) }, "00 00 0000 00000e10 cb007101", ErrNotResponse},
		{"ext resp opcode 129", func() unmarshaler { return new(ExternalAddressResponse) }, "00 81 0000 00000e10 cb007101", ErrOpcode},

		{"map resp short 15", func() unmarshaler { return new(MappingResponse) }, "00 81 0000 00000e10 c8d5 f000 000007", ErrShortPacket},
		{"map resp long 17", func() unmarshaler { return new(MappingResponse) }, "00 81 0000 00000e10 c8d5 f000 00000708 00", ErrLongPacket},
		{"map resp version 1", func() unmarshaler { return new(MappingResponse) }, "01 81 0000 00000e10 c8d5 f000 00000708", ErrVersion},
		{"map resp PCP", func() unmarshaler { return new(MappingResponse) }, "02 81 0000 00000e10 c8d5 f000 00000708", ErrPCPServer},
		{"map resp no response bit", func() unmarshaler { return new(MappingResponse) }, "00 01 0000 00000e10 c8d5 f000 00000708", ErrNotResponse},
		{"map resp opcode 128", func() unmarshaler { return new(MappingResponse) }, "00 80 0000 00000e10 c8d5 f000 00000708", ErrOpcode},
		{"map resp opcode 131", func() unmarshaler { return new(MappingResponse) }, "00 83 0000 00000e10 c8d5 f000 00000708", ErrOpcode},

		{"header empty", func() unmarshaler { return new(ResponseHeader) }, "", ErrShortPacket},
		{"header short 7", func() unmarshaler { return new(ResponseHeader) }, "00 80 0001 00000e", ErrShortPacket},
		{"header version 3", func() unmarshaler { return new(ResponseHeader) }, "03 80 0001 00000e10", ErrVersion},
		{"header PCP", func() unmarshaler { return new(ResponseHeader) }, "02 81 0001 00000e10", ErrPCPServer},
		{"header no response bit", func() unmarshaler { return new(ResponseHeader) }, "00 01 0001 00000e10", ErrNotResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := unhex(t, tt.hex)
			m := tt.msg()
			if err := m.UnmarshalBinary(pkt); !errors.Is(err, tt.want) {
				t.Errorf("%T.UnmarshalBinary(%x) = %v; want %v", m, pkt, err, tt.want)
			}
		})
	}
}

// TestUnmarshalKeepsValueOnError checks that a failed decode leaves the
// destination alone.
func TestUnmarshalKeepsValueOnError(t *testing.T) {
	want := MappingResponse{Opcode: OpMapTCP, Epoch: 7, InternalPort: 80}
	got := want
	pkt := unhex(t, "00 81 0000")
	if err := got.UnmarshalBinary(pkt); err == nil || got != want {
		t.Errorf("UnmarshalBinary(%x) = %v, left %+v; want an error and %+v", pkt, err, got, want)
	}
}

func TestAppendBinaryErrors(t *testing.T) {
	prefix := []byte{0xaa}
	tests := []struct {
		name string
		msg  encoding.BinaryAppender
		want error
	}{
		{"mapping request opcode 0", MappingRequest{Opcode: OpExternalAddress}, ErrOpcode},
		{"mapping request opcode 3", MappingRequest{Opcode: 3}, ErrOpcode},
		{"mapping request response opcode", MappingRequest{Opcode: OpMapTCP | ResponseBit}, ErrOpcode},
		{"mapping response opcode 0", MappingResponse{}, ErrOpcode},
		{"mapping response opcode 130", MappingResponse{Opcode: OpMapTCP | ResponseBit}, ErrOpcode},
		{"header opcode 128", ResponseHeader{Opcode: ResponseBit}, ErrOpcode},
		{"success without address", ExternalAddressResponse{}, ErrNotIPv4},
		{"success with IPv6 address", ExternalAddressResponse{Address: netip.MustParseAddr("2001:db8:203::1")}, ErrNotIPv4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.msg.AppendBinary(prefix)
			if !errors.Is(err, tt.want) || !bytes.Equal(got, prefix) {
				t.Errorf("%+v.AppendBinary(%x) = %x, %v; want %x, %v", tt.msg, prefix, got, err, prefix, tt.want)
			}
		})
	}
}

// TestExternalAddressEncoding covers the address rules of RFC 6886 §3.2.
func TestExternalAddressEncoding(t *testing.T) {
	tests := []struct {
		name string
		msg  ExternalAddressResponse
		want string
	}{
		{"IPv4", ExternalAddressResponse{Epoch: 1, Address: wanAddr()}, "00 80 0000 00000001 cb007101"},
		{"IPv4-mapped IPv6 is unmapped", ExternalAddressResponse{Epoch: 1, Address: netip.MustParseAddr("::ffff:203.0.113.1")}, "00 80 0000 00000001 cb007101"},
		{"0.0.0.0 on success", ExternalAddressResponse{Epoch: 1, Address: netip.IPv4Unspecified()}, "00 80 0000 00000001 00000000"},
		{"failure zeroes the address", ExternalAddressResponse{ResultCode: NetworkFailure, Epoch: 1, Address: wanAddr()}, "00 80 0003 00000001 00000000"},
		{"failure with IPv6 address", ExternalAddressResponse{ResultCode: NetworkFailure, Epoch: 1, Address: netip.IPv6Loopback()}, "00 80 0003 00000001 00000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			got, err := tt.msg.AppendBinary(nil)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("AppendBinary(%+v) = %x, %v; want %x", tt.msg, got, err, want)
			}
		})
	}
}

// TestAppendBinaryAppends checks that encoders keep what b held.
func TestAppendBinaryAppends(t *testing.T) {
	m := MappingRequest{Opcode: OpMapTCP, InternalPort: 80, SuggestedExternalPort: 80, Lifetime: 7200}
	got, err := m.AppendBinary([]byte("xy"))
	want := append([]byte("xy"), unhex(t, "00 02 0000 0050 0050 00001c20")...)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("AppendBinary(%q) = %x, %v; want %x", "xy", got, err, want)
	}
}

// TestAppendNoAllocs checks that the encoders do not allocate when b has
// room.
func TestAppendNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	req := unhex(t, "00 02 0000 0050 0050 00001c20")
	resp := unhex(t, "00 82 0000 00000e10 0050 0050 00001c20")
	tests := []struct {
		name string
		f    func()
	}{
		{"MappingResponse", func() {
			_, _ = MappingResponse{Opcode: OpMapTCP, InternalPort: 80, ExternalPort: 80, Lifetime: 7200}.AppendBinary(buf)
		}},
		{"MappingRequest", func() { _, _ = MappingRequest{Opcode: OpMapUDP, Lifetime: 1}.AppendBinary(buf) }},
		{"ExternalAddressResponse", func() { _, _ = ExternalAddressResponse{Address: wanAddr()}.AppendBinary(buf) }},
		{"ExternalAddressRequest", func() { _, _ = ExternalAddressRequest{}.AppendBinary(buf) }},
		{"ResponseHeader", func() { _, _ = ResponseHeader{ResultCode: UnsupportedVersion}.AppendBinary(buf) }},
		{"AppendErrorResponse mapping", func() { _ = AppendErrorResponse(buf, OpMapTCP, OutOfResources, 1, req) }},
		{"AppendErrorResponse external", func() { _ = AppendErrorResponse(buf, OpExternalAddress, NetworkFailure, 1, req[:2]) }},
		{"AppendErrorResponse echo", func() { _ = AppendErrorResponse(buf, 99, UnsupportedOpcode, 1, req[:3]) }},
		{"ParseRequest", func() { _, _ = ParseRequest(req) }},
		{"ParseResponse", func() { _, _ = ParseResponse(resp) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.f); n != 0 {
				t.Errorf("%s: %v allocations per run; want 0", tt.name, n)
			}
		})
	}
}

func TestOpcodeString(t *testing.T) {
	tests := []struct {
		op   Opcode
		want string
	}{
		{OpExternalAddress, "external-address"},
		{OpMapUDP, "map-udp"},
		{OpMapTCP, "map-tcp"},
		{OpExternalAddress | ResponseBit, "external-address-response"},
		{OpMapUDP | ResponseBit, "map-udp-response"},
		{OpMapTCP | ResponseBit, "map-tcp-response"},
		{99, "opcode-99"},
		{99 | ResponseBit, "opcode-99-response"},
		{127, "opcode-127"},
		{255, "opcode-127-response"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.op.String(); got != tt.want {
				t.Errorf("Opcode(%d).String() = %q; want %q", uint8(tt.op), got, tt.want)
			}
		})
	}
}

func TestResultCodeString(t *testing.T) {
	tests := []struct {
		c    ResultCode
		want string
	}{
		{Success, "success"},
		{UnsupportedVersion, "unsupported version"},
		{NotAuthorized, "not authorized"},
		{NetworkFailure, "network failure"},
		{OutOfResources, "out of resources"},
		{UnsupportedOpcode, "unsupported opcode"},
		{6, "result-code-6"},
		{65535, "result-code-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.c.String(); got != tt.want {
				t.Errorf("ResultCode(%d).String() = %q; want %q", uint16(tt.c), got, tt.want)
			}
		})
	}
}

// TestResultError checks the errors the responses' Err methods return.
func TestResultError(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		want    *ResultError
		wantMsg string
	}{
		{"mapping success", MappingResponse{Opcode: OpMapTCP}.Err(), nil, ""},
		{"address success", ExternalAddressResponse{Address: wanAddr()}.Err(), nil, ""},
		{"mapping out of resources", MappingResponse{Opcode: OpMapTCP, ResultCode: OutOfResources}.Err(),
			&ResultError{Op: OpMapTCP, Code: OutOfResources}, "natpmp: map-tcp: out of resources (result code 4)"},
		{"address network failure", ExternalAddressResponse{ResultCode: NetworkFailure}.Err(),
			&ResultError{Op: OpExternalAddress, Code: NetworkFailure}, "natpmp: external-address: network failure (result code 3)"},
		{"header undefined code", ResponseHeader{Opcode: 99, ResultCode: 77}.Err(),
			&ResultError{Op: 99, Code: 77}, "natpmp: opcode-99: result-code-77 (result code 77)"},
		{"response unsupported version", Response{Header: ResponseHeader{Opcode: OpMapUDP, ResultCode: UnsupportedVersion}}.Err(),
			&ResultError{Op: OpMapUDP, Code: UnsupportedVersion}, "natpmp: map-udp: unsupported version (result code 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == nil {
				if tt.err != nil {
					t.Errorf("Err() = %v; want nil", tt.err)
				}
				return
			}
			var re *ResultError
			if !errors.As(tt.err, &re) || *re != *tt.want {
				t.Fatalf("Err() = %#v; want %#v", tt.err, tt.want)
			}
			if got := tt.err.Error(); got != tt.wantMsg {
				t.Errorf("Err().Error() = %q; want %q", got, tt.wantMsg)
			}
		})
	}
}

// TestErrorStrings checks the package prefix of every sentinel.
func TestErrorStrings(t *testing.T) {
	for _, err := range []error{ErrShortPacket, ErrLongPacket, ErrVersion, ErrPCPServer,
		ErrOpcode, ErrNotRequest, ErrNotResponse, ErrNotIPv4} {
		t.Run(err.Error(), func(t *testing.T) {
			if !strings.HasPrefix(err.Error(), "natpmp: ") {
				t.Errorf("%q lacks the prefix %q", err.Error(), "natpmp: ")
			}
		})
	}
}

func TestMappingRequestDelete(t *testing.T) {
	tests := []struct {
		name              string
		req               MappingRequest
		delete, deleteAll bool
	}{
		{"map", MappingRequest{Opcode: OpMapTCP, InternalPort: 80, Lifetime: 7200}, false, false},
		{"delete one", MappingRequest{Opcode: OpMapTCP, InternalPort: 80}, true, false},
		{"delete all", MappingRequest{Opcode: OpMapTCP}, true, true},
		{"delete all, suggested port ignored (§3.4)", MappingRequest{Opcode: OpMapUDP, SuggestedExternalPort: 9}, true, true},
		{"internal port 0 with lifetime", MappingRequest{Opcode: OpMapUDP, Lifetime: 60}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.req.IsDelete(); got != tt.delete {
				t.Errorf("%+v.IsDelete() = %v; want %v", tt.req, got, tt.delete)
			}
			if got := tt.req.IsDeleteAll(); got != tt.deleteAll {
				t.Errorf("%+v.IsDeleteAll() = %v; want %v", tt.req, got, tt.deleteAll)
			}
		})
	}
}
