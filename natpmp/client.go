package natpmp

import (
	"encoding/binary"
	"math"
	"time"
)

// Response is a response ParseResponse accepted. Header is always set; the
// body that matches Header.Opcode is set too, its fields beyond the header
// zero when the gateway sent only the header (an error reply, RFC 6886
// §3.5).
type Response struct {
	// Header is the opcode (without ResponseBit), result code and epoch.
	Header ResponseHeader
	// ExternalAddress is the body when Header.Opcode is OpExternalAddress
	// (§3.2), also the form of an announcement (§3.2.1).
	ExternalAddress ExternalAddressResponse
	// Mapping is the body when Header.Opcode is OpMapUDP or OpMapTCP
	// (§3.3).
	Mapping MappingResponse
}

// Err returns nil when the result code is Success and a *ResultError
// otherwise.
func (r Response) Err() error { return r.Header.Err() }

// ParseResponse decodes a packet received by a client. A non-zero result
// code is not an error of ParseResponse; see Response.Err. Lengths are
// exact, except that error replies may be shorter or, for an opcode this
// package does not know, any length of at least ResponseHeaderLen:
//
//   - opcode 128: 12 bytes (§3.2), or 8 with a non-zero result code;
//   - opcode 129, 130: 16 bytes (§3.3), or 8 with a non-zero result code;
//   - opcode 131 to 255: a non-zero result code, at least 8 bytes (the
//     echoed request of §3.5); with Success, ErrOpcode;
//   - version 0, opcode 0, 8 bytes, result code 1: taken as the
//     "Unsupported Version" reply as first printed in §3.5, before erratum
//     3618 set the opcode to 128; some gateways still send it.
//
// Version 2 yields ErrPCPServer (RFC 6887 §9), another non-zero version
// ErrVersion, a clear ResponseBit ErrNotResponse.
func ParseResponse(b []byte) (Response, error) {
	var r Response
	if err := r.Header.UnmarshalBinary(b); err != nil {
		if err != ErrNotResponse || !isUncorrectedVersionReply(b) {
			return Response{}, err
		}
		r.Header = ResponseHeader{
			Opcode:     OpExternalAddress,
			ResultCode: UnsupportedVersion,
			Epoch:      binary.BigEndian.Uint32(b[offEpoch:]),
		}
	}
	h := r.Header
	short := len(b) == ResponseHeaderLen && h.ResultCode != Success
	switch h.Opcode {
	case OpExternalAddress:
		if short {
			r.ExternalAddress = ExternalAddressResponse{ResultCode: h.ResultCode, Epoch: h.Epoch}
		} else if err := r.ExternalAddress.UnmarshalBinary(b); err != nil {
			return Response{}, err
		}
	case OpMapUDP, OpMapTCP:
		if short {
			r.Mapping = MappingResponse{Opcode: h.Opcode, ResultCode: h.ResultCode, Epoch: h.Epoch}
		} else if err := r.Mapping.UnmarshalBinary(b); err != nil {
			return Response{}, err
		}
	default:
		if h.ResultCode == Success {
			return Response{}, ErrOpcode
		}
	}
	return r, nil
}

// isUncorrectedVersionReply reports whether b is the "Unsupported Version"
// response drawn in RFC 6886 §3.5 before erratum 3618: version 0, opcode 0
// with no response bit, result code 1, 8 bytes.
func isUncorrectedVersionReply(b []byte) bool {
	return len(b) == ResponseHeaderLen &&
		b[offVersion] == Version &&
		Opcode(b[offOpcode]) == OpExternalAddress &&
		ResultCode(binary.BigEndian.Uint16(b[offResult:])) == UnsupportedVersion
}

// The retransmission schedule of RFC 6886 §3.1.
const (
	// RetransmitCount is how many times a client sends a request before
	// concluding the gateway has no NAT-PMP: "after sending its ninth
	// attempt (and then waiting for 64 seconds)".
	RetransmitCount = 9
	// RetransmitFirstInterval is the first wait: "waits 250 ms for a
	// response ... retransmits its request and waits 500 ms".
	RetransmitFirstInterval = 250 * time.Millisecond
)

// RetransmitIntervals returns how long a client waits for a response after
// each of the RetransmitCount attempts of RFC 6886 §3.1: 250ms, 500ms, 1s
// and so on to 64s ("with the interval between attempts doubling each
// time"). A deletion may give up sooner (§3.1, "clients may choose not to
// try the full nine times").
func RetransmitIntervals() []time.Duration {
	d := make([]time.Duration, RetransmitCount)
	gap := RetransmitFirstInterval
	for i := range d {
		d[i] = gap
		gap *= 2
	}
	return d
}

// maxElapsed bounds the elapsed time StateLost works with: the span of a
// 32-bit count of seconds, so that its arithmetic cannot overflow.
const maxElapsed = time.Duration(math.MaxUint32) * time.Second

// StateLost reports whether a gateway has lost its mapping state, by the
// rule of RFC 6886 §3.6: the client takes the Seconds Since Start of Epoch
// of the last packet it received from the gateway, last, adds 7/8 of the
// time elapsed since by its own clock, and if the value in the new packet,
// got, "is less than the client's conservative estimate by more than 2
// seconds, then the client concludes that the NAT gateway has undergone a
// reboot or other loss of port mapping state, and the client MUST
// immediately renew all its active port mapping leases".
func StateLost(last uint32, elapsed time.Duration, got uint32) bool {
	elapsed = min(max(elapsed, 0), maxElapsed)
	estimate := time.Duration(last)*time.Second + elapsed/8*7
	return estimate-time.Duration(got)*time.Second > 2*time.Second
}
