package pcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// refusal is a request ParseRequest must refuse, with what §8.3 says a
// server does about it.
type refusal struct {
	name  string
	hex   string
	reply bool // false: silently dropped
	code  ResultCode
	err   error
}

// Requests the refusal table builds on.
const (
	hexPeerRequest = "02 02 0000 00000258 " + hexLanHost + hexNonce + " 11 000000 138c 0000 " + hexV4Any +
		"138e 0000 00000000000000000000ffff cb007107"
	hexAnnounceRequest = "02 00 0000 00000000 " + hexLanHost
	hexThirdParty      = "01 00 0010 " + hexLanOther
	hexPreferFailure   = "02 00 0000"
	hexFilter          = "03 00 0014 00 80 0000 00000000000000000000ffff cb007107"
)

func refusals() []refusal {
	long := hexMapRequest + strings.Repeat("80 00 0000 ", (MaxMessageLen+4-MapDataLen-HeaderLen)/4)
	return []refusal{
		{name: "§8.3 empty: dropped", hex: "", err: ErrShortPacket},
		{name: "§8.3 one byte: dropped", hex: "02", err: ErrShortPacket},
		{name: "§8.3 R bit set: dropped", hex: "02 81" + hexMapRequest[5:], err: ErrNotRequest},
		{name: "§8.3 R bit set, other version: dropped", hex: "01 81", err: ErrNotRequest},
		{name: "§9 version 1, two bytes: UNSUPP_VERSION", hex: "01 01", reply: true, code: UnsuppVersion, err: ErrVersion},
		{name: "§9 version 1 MAP: UNSUPP_VERSION", hex: "01" + hexMapRequest[2:], reply: true, code: UnsuppVersion, err: ErrVersion},
		{name: "§9 version 3: UNSUPP_VERSION", hex: "03" + hexMapRequest[2:], reply: true, code: UnsuppVersion, err: ErrVersion},
		{name: "§9 version 0 (NAT-PMP, the caller's to route): UNSUPP_VERSION", hex: "00 00", reply: true, code: UnsuppVersion, err: ErrVersion},
		{name: "§8.3 version 2, 8 bytes: dropped", hex: "02 01 0000 00001c20", err: ErrShortPacket},
		{name: "§8.3 version 2, 23 bytes: dropped", hex: hexAnnounceRequest[:len(hexAnnounceRequest)-2], err: ErrShortPacket},
		{name: "§7 longer than 1100 bytes: MALFORMED_REQUEST", hex: long, reply: true, code: MalformedRequest, err: ErrLongPacket},
		{name: "§7 not a multiple of 4: MALFORMED_REQUEST", hex: hexMapRequest + "0000", reply: true, code: MalformedRequest, err: ErrNotMultipleOf4},
		{name: "§7 not a multiple of 4, unknown opcode: MALFORMED_REQUEST first", hex: "02 05" + hexAnnounceRequest[5:] + "00", reply: true, code: MalformedRequest, err: ErrNotMultipleOf4},
		{name: "§7.4 opcode 3: UNSUPP_OPCODE", hex: "02 03" + hexAnnounceRequest[5:], reply: true, code: UnsuppOpcode, err: ErrOpcode},
		{name: "§7.4 opcode 127: UNSUPP_OPCODE", hex: "02 7f" + hexAnnounceRequest[5:], reply: true, code: UnsuppOpcode, err: ErrOpcode},
		{name: "§8.3 MAP of header only: MALFORMED_REQUEST", hex: hexMapHeader, reply: true, code: MalformedRequest, err: ErrShortPacket},
		{name: "§8.3 MAP 4 bytes short: MALFORMED_REQUEST", hex: hexMapRequest[:len(hexMapRequest)-8], reply: true, code: MalformedRequest, err: ErrShortPacket},
		{name: "§8.3 PEER of MAP's length: MALFORMED_REQUEST", hex: "02 02" + hexMapRequest[5:], reply: true, code: MalformedRequest, err: ErrShortPacket},
		{name: "§7.3 unknown mandatory option: UNSUPP_OPTION", hex: hexMapRequest + "7e 00 0000", reply: true, code: UnsuppOption, err: ErrUnsupportedOption},
		{name: "§7.3 unknown mandatory option after known ones: UNSUPP_OPTION", hex: hexMapRequest + hexFilter + "04 00 0004 00000000", reply: true, code: UnsuppOption, err: ErrUnsupportedOption},
		{name: "§7.3 options in order: malformed before unknown mandatory: MALFORMED_OPTION", hex: hexMapRequest + "01 00 0004 00000000 7e 00 0000", reply: true, code: MalformedOption, err: ErrOption},
		{name: "§7.3 option overruns the message: MALFORMED_OPTION", hex: hexMapRequest + "80 00 0010 00000000", reply: true, code: MalformedOption, err: ErrOption},
		{name: "§7.3 padding overruns the message: MALFORMED_OPTION", hex: hexMapRequest + "80 00 0005 00000000", reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.1 THIRD_PARTY twice: MALFORMED_OPTION", hex: hexMapRequest + hexThirdParty + hexThirdParty, reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.1 THIRD_PARTY of 4 bytes: MALFORMED_OPTION", hex: hexMapRequest + "01 00 0004 c633640b", reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.1 THIRD_PARTY ::: MALFORMED_OPTION", hex: hexMapRequest + "01 00 0010 " + hexV6Any, reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.1 THIRD_PARTY with ANNOUNCE: MALFORMED_OPTION", hex: hexAnnounceRequest + hexThirdParty, reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.2 PREFER_FAILURE twice: MALFORMED_OPTION", hex: hexMapRequest + hexPreferFailure + hexPreferFailure, reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.2 PREFER_FAILURE with data: MALFORMED_OPTION", hex: hexMapRequest + "02 00 0004 00000000", reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.2 PREFER_FAILURE with PEER: MALFORMED_OPTION", hex: hexPeerRequest + hexPreferFailure, reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.3 FILTER with PEER: MALFORMED_OPTION", hex: hexPeerRequest + hexFilter, reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.3 FILTER of 16 bytes: MALFORMED_OPTION", hex: hexMapRequest + "03 00 0010 " + hexV6Any, reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.3 FILTER prefix length 129: MALFORMED_OPTION", hex: hexMapRequest + "03 00 0014 00 81 0000 20010db8000200000000000000000000", reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.3 FILTER IPv4 prefix length 95: MALFORMED_OPTION", hex: hexMapRequest + "03 00 0014 00 5f 0000 00000000000000000000ffff cb007107", reply: true, code: MalformedOption, err: ErrOption},
		{name: "§13.3 FILTER IPv4 prefix length 129: MALFORMED_OPTION", hex: hexMapRequest + "03 00 0014 00 81 0000 00000000000000000000ffff cb007107", reply: true, code: MalformedOption, err: ErrOption},
		{name: "RFC 7220 DESCRIPTION twice: MALFORMED_OPTION", hex: hexMapRequest + "80 00 0000 80 00 0000", reply: true, code: MalformedOption, err: ErrOption},
		{name: "RFC 7220 DESCRIPTION not UTF-8: MALFORMED_OPTION", hex: hexMapRequest + "80 00 0002 fffe 0000", reply: true, code: MalformedOption, err: ErrOption},
		{name: "RFC 7220 DESCRIPTION with ANNOUNCE: MALFORMED_OPTION", hex: hexAnnounceRequest + "80 00 0000", reply: true, code: MalformedOption, err: ErrOption},
	}
}

func TestParseRequestRefusals(t *testing.T) {
	for _, r := range refusals() {
		t.Run(r.name, func(t *testing.T) {
			pkt := unhex(t, r.hex)
			got, err := ParseRequest(pkt)
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("ParseRequest(%x) = %+v, %v; want a *RequestError", pkt, got, err)
			}
			if re.Reply != r.reply || (r.reply && re.Code != r.code) || !errors.Is(err, r.err) {
				t.Fatalf("ParseRequest(%x) = %+v (%v); want reply %v, code %v, %v", pkt, re, err, r.reply, r.code, r.err)
			}
			if len(pkt) > offOpcode && re.Op != Opcode(pkt[offOpcode])&^ResponseBit {
				t.Fatalf("RequestError.Op = %v; want the request's opcode %v", re.Op, Opcode(pkt[offOpcode]))
			}
			var req Request
			if err := req.UnmarshalBinary(pkt); !errors.As(err, &re) || re.Code != r.code && r.reply {
				t.Fatalf("UnmarshalBinary(%x) = %v; want the same refusal", pkt, err)
			}
		})
	}
}

// TestIgnoredOptions checks §7.3's "it MUST be ignored" for unknown
// optional options, with any opcode.
func TestIgnoredOptions(t *testing.T) {
	for _, h := range []string{hexAnnounceRequest, hexMapRequest, hexPeerRequest} {
		pkt := unhex(t, h+"ff 00 0001 aa000000 c0 00 0000")
		r, err := ParseRequest(pkt)
		if err != nil || r.Options.Ignored != 2 {
			t.Errorf("ParseRequest(%x) = %+v, %v; want 2 options ignored", pkt, r.Options, err)
		}
	}
}

// TestAppendErrorResponse checks §8.3's copy of the request under the
// response header, the length rules and §9's version.
func TestAppendErrorResponse(t *testing.T) {
	withOption := unhex(t, hexMapRequest+"7e 00 0000")
	tests := []struct {
		name string
		req  []byte
		code ResultCode
		want int // length of the answer
	}{
		{"§9 version 1, two bytes: the header alone", unhex(t, "01 01"), UnsuppVersion, HeaderLen},
		{"§9 version 3 MAP: copied whole", unhex(t, "03"+hexMapRequest[2:]), UnsuppVersion, HeaderLen + MapDataLen},
		{"§8.3 unsupported opcode: payload copied", unhex(t, "02 05"+hexAnnounceRequest[5:]+"0102030405060708"), UnsuppOpcode, HeaderLen + 8},
		{"§7.3 UNSUPP_OPTION: options copied", withOption, UnsuppOption, len(withOption)},
		{"§7 not a multiple of 4: rounded down", unhex(t, hexMapRequest+"0000"), MalformedRequest, HeaderLen + MapDataLen},
		{"§7 1104 bytes: cut to 1100", append(unhex(t, hexMapRequest), make([]byte, MaxMessageLen+4-HeaderLen-MapDataLen)...), MalformedRequest, MaxMessageLen},
		{"§7 1103 bytes: cut to 1100", append(unhex(t, hexMapRequest), make([]byte, MaxMessageLen+3-HeaderLen-MapDataLen)...), MalformedRequest, MaxMessageLen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const lifetime, epoch = 1800, 3600
			prefix := []byte("prefix")
			out := AppendErrorResponse(bytes.Clone(prefix), tt.req, tt.code, lifetime, epoch)
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("AppendErrorResponse overwrote b: %x", out)
			}
			out = out[len(prefix):]
			if len(out) != tt.want {
				t.Fatalf("AppendErrorResponse(%x) = %d bytes; want %d", tt.req, len(out), tt.want)
			}
			wantHeader := []byte{Version, tt.req[offOpcode] | ResponseBit, 0, byte(tt.code)}
			wantHeader = binary.BigEndian.AppendUint32(wantHeader, lifetime)
			wantHeader = binary.BigEndian.AppendUint32(wantHeader, epoch)
			wantHeader = append(wantHeader, make([]byte, HeaderLen-offRespReserved2)...)
			if !bytes.Equal(out[:HeaderLen], wantHeader) {
				t.Fatalf("header = %x; want %x", out[:HeaderLen], wantHeader)
			}
			if len(tt.req) > HeaderLen && !bytes.Equal(out[HeaderLen:], tt.req[HeaderLen:len(out)]) {
				t.Fatalf("payload = %x; want the request's %x", out[HeaderLen:], tt.req[HeaderLen:len(out)])
			}
			if Opcode(tt.req[offOpcode]) <= OpPeer {
				var resp Response
				if err := resp.UnmarshalBinary(out); err != nil || resp.Result != tt.code || resp.Epoch != epoch {
					t.Fatalf("Response.UnmarshalBinary(%x) = %+v, %v; want result %v", out, resp, err, tt.code)
				}
			}
			buf := make([]byte, len(tt.req), len(tt.req)+HeaderLen)
			copy(buf, tt.req)
			if in := AppendErrorResponse(buf[:0], buf, tt.code, lifetime, epoch); !bytes.Equal(in, out) {
				t.Fatalf("in place = %x; want %x", in, out)
			}
		})
	}
}
