package natpmp

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestParseRequestRefusals covers every way ParseRequest refuses a packet
// and the answer it asks for (RFC 6886 §3.5; see the package doc).
func TestParseRequestRefusals(t *testing.T) {
	tests := []struct {
		name  string
		hex   string
		want  error
		op    Opcode
		code  ResultCode
		reply bool
	}{
		{"empty: no header (§3)", "", ErrShortPacket, 0, 0, false},
		{"1 byte: no opcode (§3)", "00", ErrShortPacket, 0, 0, false},
		{"1 byte version 2", "02", ErrShortPacket, 0, 0, false},

		{"response bit: external address response (§3.5 ignore)", "00 80 0000 00000e10 cb007101", ErrNotRequest, 128, 0, false},
		{"response bit: mapping response (§3.5 ignore)", "00 81 0000 00000e10 c8d5 f000 00000708", ErrNotRequest, 129, 0, false},
		{"response bit: 2 bytes", "00 ff", ErrNotRequest, 255, 0, false},
		{"response bit with version 1: still ignored", "01 81 0001 00000e10", ErrNotRequest, 129, 0, false},
		{"response bit with version 2: a PCP response", "02 81 0000 00000e10 00000000 00000000 00000000 00000000", ErrNotRequest, 129, 0, false},

		{"version 1 opcode 0 (§3.5)", "01 00", ErrVersion, 0, UnsupportedVersion, true},
		{"version 1 map TCP (§3.5)", "01 02 0000 0050 0050 00001c20", ErrVersion, 2, UnsupportedVersion, true},
		{"version 2 PCP MAP request (RFC 6886 §1.1)", "02 01 0000 00001c20 c6336400 00000000 00000000 00000000", ErrVersion, 1, UnsupportedVersion, true},
		{"version 255 opcode 99, 2 bytes", "ff 63", ErrVersion, 99, UnsupportedVersion, true},

		{"opcode 3 (§3.5)", "00 03", ErrOpcode, 3, UnsupportedOpcode, true},
		{"opcode 99 (§3.5)", "00 63 0000 0050 0050 00001c20", ErrOpcode, 99, UnsupportedOpcode, true},
		{"opcode 127 (§3.5)", "00 7f 01", ErrOpcode, 127, UnsupportedOpcode, true},

		{"external address long 3", "00 00 00", ErrLongPacket, 0, UnsupportedOpcode, true},
		{"external address padded to 12", "00 00 0000 0000 0000 00000000", ErrLongPacket, 0, UnsupportedOpcode, true},
		{"map UDP header only", "00 01", ErrShortPacket, 1, UnsupportedOpcode, true},
		{"map UDP short 6: internal port only", "00 01 0000 c8d5", ErrShortPacket, 1, UnsupportedOpcode, true},
		{"map TCP short 11", "00 02 0000 0050 0050 00001c", ErrShortPacket, 2, UnsupportedOpcode, true},
		{"map TCP long 13", "00 02 0000 0050 0050 00001c20 00", ErrLongPacket, 2, UnsupportedOpcode, true},
		{"map UDP long 16", "00 01 0000 c8d5 0000 00000e10 00000000", ErrLongPacket, 1, UnsupportedOpcode, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := unhex(t, tt.hex)
			got, err := ParseRequest(pkt)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseRequest(%x) = %+v, %v; want %v", pkt, got, err, tt.want)
			}
			if got != (Request{}) {
				t.Errorf("ParseRequest(%x) = %+v with an error; want the zero Request", pkt, got)
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("ParseRequest(%x) error %T; want *RequestError", pkt, err)
			}
			want := RequestError{Op: tt.op, Code: tt.code, Reply: tt.reply, Err: tt.want}
			if *re != want {
				t.Errorf("ParseRequest(%x) = %+v; want %+v", pkt, *re, want)
			}
		})
	}
}

func TestRequestErrorMessage(t *testing.T) {
	tests := []struct {
		hex  string
		want string
	}{
		{"", "natpmp: short packet"},
		{"00", "natpmp: short packet"},
		{"00 01 00", "natpmp: short packet: map-udp"},
		{"00 00 00", "natpmp: long packet: external-address"},
		{"01 02", "natpmp: unsupported version: map-tcp"},
		{"00 63", "natpmp: unsupported opcode: opcode-99"},
		{"00 82", "natpmp: not a request: map-tcp-response"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			pkt := unhex(t, tt.hex)
			if _, err := ParseRequest(pkt); err == nil || err.Error() != tt.want {
				t.Errorf("ParseRequest(%x) error %q; want %q", pkt, err, tt.want)
			}
		})
	}
}

// TestAppendErrorResponse checks the bytes of every kind of error answer.
func TestAppendErrorResponse(t *testing.T) {
	const epoch = 3600
	tests := []struct {
		name string
		op   Opcode
		code ResultCode
		req  string
		want string
	}{
		{"§3.5 unsupported version, opcode 0 (erratum 3618)", 0, UnsupportedVersion, "01 00",
			"00 80 0001 00000e10"},
		{"§3.5 unsupported version, map TCP: header only", OpMapTCP, UnsupportedVersion, "01 02 0000 0050 0050 00001c20",
			"00 82 0001 00000e10"},
		{"§3.5 unsupported version, PCP MAP", OpMapUDP, UnsupportedVersion, "02 01 0000 00001c20",
			"00 81 0001 00000e10"},
		{"§3.5 unsupported version, opcode 99", 99, UnsupportedVersion, "05 63",
			"00 e3 0001 00000e10"},
		{"§3.5 unsupported opcode: 2-byte request padded", 3, UnsupportedOpcode, "00 03",
			"00 83 0005 00000e10"},
		{"§3.5 unsupported opcode: 12-byte request echoed after the header", 99, UnsupportedOpcode, "00 63 0000 0050 0050 00001c20",
			"00 e3 0005 00000e10 00001c20"},
		{"§3.5 unsupported opcode: 20-byte request echoed", 127, UnsupportedOpcode, "00 7f aaaa bbbbbbbb 01020304 05060708 090a0b0c",
			"00 ff 0005 00000e10 01020304 05060708 090a0b0c"},
		{"§3.2 external address, long request: 12 bytes, address 0", OpExternalAddress, UnsupportedOpcode, "00 00 00",
			"00 80 0005 00000e10 00000000"},
		{"§3.2 external address, network failure", OpExternalAddress, NetworkFailure, "00 00",
			"00 80 0003 00000e10 00000000"},
		{"§3.5 map UDP short 6: internal port echoed", OpMapUDP, UnsupportedOpcode, "00 01 0000 c8d5",
			"00 81 0005 00000e10 c8d5 0000 00000000"},
		{"§3.5 map UDP short 5: internal port zero", OpMapUDP, UnsupportedOpcode, "00 01 0000 c8",
			"00 81 0005 00000e10 0000 0000 00000000"},
		{"§3.5 map TCP header only: internal port zero", OpMapTCP, UnsupportedOpcode, "00 02",
			"00 82 0005 00000e10 0000 0000 00000000"},
		{"§3.5 map TCP long 13: internal port echoed", OpMapTCP, UnsupportedOpcode, "00 02 0000 0050 0050 00001c20 00",
			"00 82 0005 00000e10 0050 0000 00000000"},
		{"§3.5 map TCP out of resources", OpMapTCP, OutOfResources, "00 02 0000 0050 0050 00001c20",
			"00 82 0004 00000e10 0050 0000 00000000"},
		{"§3.5 map UDP not authorized", OpMapUDP, NotAuthorized, "00 01 0000 c8d5 0000 00000e10",
			"00 81 0002 00000e10 c8d5 0000 00000000"},
		{"response bit in op is ignored", OpMapUDP | ResponseBit, NetworkFailure, "00 01 0000 c8d5 0000 00000e10",
			"00 81 0003 00000e10 c8d5 0000 00000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, want := unhex(t, tt.req), unhex(t, tt.want)
			got := AppendErrorResponse(nil, tt.op, tt.code, epoch, req)
			if !bytes.Equal(got, want) {
				t.Errorf("AppendErrorResponse(nil, %v, %v, %d, %x) = %x; want %x", tt.op, tt.code, epoch, req, got, want)
			}

			// Appending keeps the prefix.
			got = AppendErrorResponse([]byte{0xee}, tt.op, tt.code, epoch, req)
			if !bytes.Equal(got[1:], want) || got[0] != 0xee {
				t.Errorf("AppendErrorResponse(ee, %v, %v, %d, %x) = %x; want ee%x", tt.op, tt.code, epoch, req, got, want)
			}

			// The gateway may answer in the buffer the request came in.
			buf := make([]byte, len(req), 64)
			copy(buf, req)
			got = AppendErrorResponse(buf[:0], tt.op, tt.code, epoch, buf)
			if !bytes.Equal(got, want) {
				t.Errorf("AppendErrorResponse(req[:0], %v, %v, %d, %x) = %x; want %x", tt.op, tt.code, epoch, req, got, want)
			}

			// A client can read every answer.
			resp, err := ParseResponse(got)
			if err != nil {
				t.Fatalf("ParseResponse(%x) = %v; want nil", got, err)
			}
			wantHeader := ResponseHeader{Opcode: tt.op &^ ResponseBit, ResultCode: tt.code, Epoch: epoch}
			if resp.Header != wantHeader {
				t.Errorf("ParseResponse(%x).Header = %+v; want %+v", got, resp.Header, wantHeader)
			}
		})
	}
}

// TestRefusalRoundTrip runs the gateway's path for refused packets: each
// answer is the one the package documentation promises, and a client parses
// it back to the refused opcode and result code.
func TestRefusalRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		req     string
		wantLen int
	}{
		{"version 1", "01 00", ResponseHeaderLen},
		{"opcode 99", "00 63 0102", ResponseHeaderLen},
		{"opcode 99, 24 bytes", "00 63 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000 0000", 24},
		{"external address long", "00 00 00 00", ExternalAddressResponseLen},
		{"map TCP short", "00 02 0000 0050", MappingResponseLen},
		{"map UDP long", "00 01 0000 c8d5 0000 00000e10 00", MappingResponseLen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := unhex(t, tt.req)
			_, err := ParseRequest(req)
			var re *RequestError
			if !errors.As(err, &re) || !re.Reply {
				t.Fatalf("ParseRequest(%x) = %v; want a *RequestError with Reply", req, err)
			}
			out := AppendErrorResponse(nil, re.Op, re.Code, 42, req)
			if len(out) != tt.wantLen {
				t.Errorf("AppendErrorResponse(%x) = %x, %d bytes; want %d", req, out, len(out), tt.wantLen)
			}
			resp, err := ParseResponse(out)
			want := ResponseHeader{Opcode: re.Op, ResultCode: re.Code, Epoch: 42}
			if err != nil || resp.Header != want {
				t.Errorf("ParseResponse(%x) = %+v, %v; want header %+v", out, resp, err, want)
			}
		})
	}
}

func TestAnnounceIntervals(t *testing.T) {
	want := []time.Duration{
		0,
		250 * time.Millisecond,
		500 * time.Millisecond,
		time.Second,
		2 * time.Second,
		4 * time.Second,
		8 * time.Second,
		16 * time.Second,
		32 * time.Second,
		64 * time.Second,
	}
	got := AnnounceIntervals()
	if !slices.Equal(got, want) {
		t.Errorf("AnnounceIntervals() = %v; want %v", got, want)
	}
	// Each call returns a fresh slice.
	got[1] = 0
	if again := AnnounceIntervals(); !slices.Equal(again, want) {
		t.Errorf("AnnounceIntervals() after a caller's change = %v; want %v", again, want)
	}
}

func TestAnnounceAddr(t *testing.T) {
	want := netip.MustParseAddrPort("224.0.0.1:5350")
	if got := AnnounceAddr(); got != want {
		t.Errorf("AnnounceAddr() = %v; want %v", got, want)
	}
}
