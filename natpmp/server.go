package natpmp

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Request is a request ParseRequest accepted.
type Request struct {
	// Opcode is OpExternalAddress, OpMapUDP or OpMapTCP.
	Opcode Opcode
	// Mapping is the decoded request when Opcode is OpMapUDP or OpMapTCP,
	// and the zero value for OpExternalAddress (whose request has no
	// fields, RFC 6886 §3.2).
	Mapping MappingRequest
}

// RequestError is the error of ParseRequest: why a packet is not a request
// the gateway can serve, and how RFC 6886 §3.5 says to answer it. The
// package documentation lists the cases. Pass Op and Code to
// AppendErrorResponse when Reply is true.
type RequestError struct {
	// Op is the packet's opcode byte, zero when the packet is too short to
	// hold one.
	Op Opcode
	// Code is the result code to answer with when Reply is true.
	Code ResultCode
	// Reply is false when the gateway must send nothing.
	Reply bool
	// Err is ErrShortPacket, ErrLongPacket, ErrVersion, ErrOpcode or
	// ErrNotRequest.
	Err error
}

// Error returns the sentinel's message and the opcode, such as
// "natpmp: short packet: map-udp", or only the sentinel's message for a
// packet too short to hold an opcode.
func (e *RequestError) Error() string {
	if e.Err == ErrShortPacket && !e.Reply {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Op.String()
}

// Unwrap returns e.Err, for errors.Is.
func (e *RequestError) Unwrap() error { return e.Err }

// ParseRequest decodes a request received by the gateway. A length that is
// not exactly that of the opcode's request is refused. On failure the error
// is a *RequestError that says whether and how to answer (RFC 6886 §3.5);
// it wraps one of ErrShortPacket, ErrLongPacket, ErrVersion, ErrOpcode and
// ErrNotRequest.
func ParseRequest(b []byte) (Request, error) {
	var r Request
	var err error
	if len(b) >= HeaderLen {
		r.Opcode = Opcode(b[offOpcode])
	}
	switch r.Opcode {
	case OpExternalAddress:
		var m ExternalAddressRequest
		err = m.UnmarshalBinary(b)
	case OpMapUDP, OpMapTCP:
		err = r.Mapping.UnmarshalBinary(b)
	default:
		if err = checkRequestHeader(b); err == nil {
			err = ErrOpcode
		}
	}
	if err != nil {
		return Request{}, refuse(b, err)
	}
	return r, nil
}

// refuse turns the error of a request decoder into the answer RFC 6886 §3.5
// asks for; see the package documentation.
func refuse(b []byte, err error) *RequestError {
	e := &RequestError{Err: err}
	if len(b) < HeaderLen {
		// §3: "Every packet starts with an 8-bit version followed by an
		// 8-bit operation code"; there is nothing to answer.
		return e
	}
	e.Op = Opcode(b[offOpcode])
	switch err {
	case ErrNotRequest:
		// §3.5: "If the opcode in the request is 128 or greater, then
		// this is not a request; it's a response, and the NAT-PMP server
		// MUST silently ignore it."
	case ErrVersion:
		// §3.5: "If the version in the request is not zero, then the
		// NAT-PMP server MUST return the following "Unsupported
		// Version" error response".
		e.Reply, e.Code = true, UnsupportedVersion
	default:
		// ErrOpcode: §3.5, "not a supported opcode (currently 0, 1, or
		// 2), then the entire request MUST be returned to the sender
		// ... and the result code set to 5 (Unsupported opcode)".
		// ErrShortPacket, ErrLongPacket: RFC 6886 has no rule; a
		// request not shaped like its opcode gets the nearest code, 5.
		e.Reply, e.Code = true, UnsupportedOpcode
	}
	return e
}

// AppendErrorResponse appends to b the gateway's answer with result code
// code and epoch to the request req whose opcode is op (ResponseBit is set
// by AppendErrorResponse), and returns the extended buffer:
//
//   - code UnsupportedVersion: the 8-byte response of RFC 6886 §3.5
//     (ResponseHeader), opcode 128 + op.
//   - op OpExternalAddress: the 12-byte response of §3.2 with address
//     0.0.0.0 ("MUST be set to zero on transmission").
//   - op OpMapUDP or OpMapTCP: the 16-byte response of §3.3 with the
//     internal port copied from req (§3.5: "The Internal Port MUST be set
//     to the client's requested Internal Port"), or 0 when req is too short
//     to hold it; external port and lifetime 0 (§3.5: "zero if no
//     successful port mapping was created").
//   - any other op: req itself, with the top bit of the opcode set and the
//     result code (§3.5, for an unsupported opcode: "the entire request
//     MUST be returned to the sender"), its first ResponseHeaderLen bytes
//     overwritten by the response header so that the epoch is the
//     gateway's (§3.6), padded with zeros to at least ResponseHeaderLen.
//
// It does not allocate when b has room. req may share memory with b only as
// b = req[:0]. Code is meant to be non-zero; a failed deletion, whose answer
// carries the requested mapping (§3.4), is built with MappingResponse.
func AppendErrorResponse(b []byte, op Opcode, code ResultCode, epoch uint32, req []byte) []byte {
	op &^= ResponseBit
	if code == UnsupportedVersion {
		return appendResponseHeader(b, op, code, epoch)
	}
	switch op {
	case OpExternalAddress:
		b = appendResponseHeader(b, op, code, epoch)
		return append(b, make([]byte, addressLen)...)
	case OpMapUDP, OpMapTCP:
		var internal uint16
		if len(req) >= offReqInternalPort+portLen {
			internal = binary.BigEndian.Uint16(req[offReqInternalPort:])
		}
		b = appendResponseHeader(b, op, code, epoch)
		b = binary.BigEndian.AppendUint16(b, internal)
		return append(b, make([]byte, portLen+lifetimeLen)...)
	}
	start := len(b)
	b = append(b, req...)
	if n := len(b) - start; n < ResponseHeaderLen {
		b = append(b, make([]byte, ResponseHeaderLen-n)...)
	}
	h := b[start:]
	h[offVersion] = Version
	h[offOpcode] = byte(op | ResponseBit)
	binary.BigEndian.PutUint16(h[offResult:], uint16(code))
	binary.BigEndian.PutUint32(h[offEpoch:], epoch)
	return b
}

// The announcement schedule of RFC 6886 §3.2.1.
const (
	// AnnounceCount is how many announcements follow an event: "the NAT
	// gateway SHOULD multicast 10 address notifications".
	AnnounceCount = 10
	// AnnounceFirstInterval is the gap between the first two: "The
	// interval between the first two notifications SHOULD be 250 ms, and
	// the interval between each subsequent notification SHOULD double."
	AnnounceFirstInterval = 250 * time.Millisecond
)

// AnnounceIntervals returns the delays before each of the AnnounceCount
// announcements of RFC 6886 §3.2.1, each counted from the one before: 0,
// 250ms, 500ms, 1s and so on to 64s. Each announcement is an
// ExternalAddressResponse with the epoch of the moment it is sent (§3.2.1:
// "The Seconds Since Start of Epoch field in each transmission MUST be
// updated appropriately").
func AnnounceIntervals() []time.Duration {
	d := make([]time.Duration, AnnounceCount)
	gap := AnnounceFirstInterval
	for i := 1; i < len(d); i++ {
		d[i] = gap
		gap *= 2
	}
	return d
}

// AnnounceAddr returns 224.0.0.1:5350, where announcements are sent (RFC
// 6886 §3.2.1: "the link-local multicast address 224.0.0.1, port 5350").
func AnnounceAddr() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{224, 0, 0, 1}), ClientPort)
}
