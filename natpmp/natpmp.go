package natpmp

import (
	"errors"
	"strconv"
)

// Version is the NAT-PMP protocol version, the first byte of every packet
// (RFC 6886 §3: "This document specifies version 0 of the protocol").
const Version = 0

// pcpVersion is the version byte of PCP, RFC 6887 §9; RFC 6886 §1.1: "The
// version number in the packet header is 0 for NAT-PMP and 2 for PCP".
const pcpVersion = 2

// The UDP ports of NAT-PMP (RFC 6886 §3.2.1 and §6).
const (
	// ServerPort is where a gateway listens for requests (§3.1: "sends its
	// request packet to port 5351 of its configured gateway address").
	ServerPort = 5351
	// ClientPort is where clients listen for announcements (§3.2.1: "the
	// NAT gateway MUST send a gratuitous response to the link-local
	// multicast address 224.0.0.1, port 5350").
	ClientPort = 5350
)

// Sizes of the fields, in bytes, in the order the RFC 6886 figures draw them.
const (
	versionLen  = 1
	opcodeLen   = 1
	reservedLen = 2
	resultLen   = 2
	epochLen    = 4
	addressLen  = 4
	portLen     = 2
	lifetimeLen = 4
)

// Offsets common to every packet (RFC 6886 §3: "Every packet starts with an
// 8-bit version followed by an 8-bit operation code").
const (
	offVersion = 0
	offOpcode  = offVersion + versionLen
)

// Offsets in a response header (RFC 6886 §3.2 and §3.3 figures).
const (
	offResult = offOpcode + opcodeLen
	offEpoch  = offResult + resultLen
)

// Offsets in an external address response (RFC 6886 §3.2 figure).
const (
	offAddress = ResponseHeaderLen
)

// Offsets in a mapping request (RFC 6886 §3.3, first figure).
const (
	offReqReserved      = HeaderLen
	offReqInternalPort  = offReqReserved + reservedLen
	offReqSuggestedPort = offReqInternalPort + portLen
	offReqLifetime      = offReqSuggestedPort + portLen
)

// Offsets in a mapping response (RFC 6886 §3.3, second figure).
const (
	offRespInternalPort = ResponseHeaderLen
	offRespExternalPort = offRespInternalPort + portLen
	offRespLifetime     = offRespExternalPort + portLen
)

// Message lengths in bytes. Every request and response of RFC 6886 has a
// fixed size.
const (
	// HeaderLen is the version and opcode that start every packet (§3).
	HeaderLen = versionLen + opcodeLen // 2
	// ResponseHeaderLen is the version, opcode, result code and Seconds
	// Since Start of Epoch that start every response (§3); it is also the
	// whole "Unsupported Version" response of §3.5.
	ResponseHeaderLen = offEpoch + epochLen // 8
	// ExternalAddressRequestLen is the request of §3.2.
	ExternalAddressRequestLen = HeaderLen // 2
	// ExternalAddressResponseLen is the response of §3.2.
	ExternalAddressResponseLen = offAddress + addressLen // 12
	// MappingRequestLen is the request of §3.3.
	MappingRequestLen = offReqLifetime + lifetimeLen // 12
	// MappingResponseLen is the response of §3.3.
	MappingResponseLen = offRespLifetime + lifetimeLen // 16
)

// Opcode is the operation code, the second byte of every packet. Requests
// use 0 to 127; a response carries the request's opcode plus ResponseBit
// (RFC 6886 §3: "Opcodes between 0 and 127 are client requests. Opcodes
// from 128 to 255 are corresponding server responses").
type Opcode uint8

// The opcodes of RFC 6886.
const (
	// OpExternalAddress asks for the gateway's external IPv4 address (§3.2).
	OpExternalAddress Opcode = 0
	// OpMapUDP asks for a UDP mapping (§3.3: "1 - Map UDP").
	OpMapUDP Opcode = 1
	// OpMapTCP asks for a TCP mapping (§3.3: "2 - Map TCP").
	OpMapTCP Opcode = 2
	// ResponseBit is set in the opcode of every response (§3.5: "with the
	// top bit of the opcode set (to indicate that this is a response)").
	ResponseBit Opcode = 128
)

// IsResponse reports whether o has ResponseBit set (RFC 6886 §3).
func (o Opcode) IsResponse() bool { return o&ResponseBit != 0 }

// isMapping reports whether o is OpMapUDP or OpMapTCP (RFC 6886 §3.3).
func (o Opcode) isMapping() bool { return o == OpMapUDP || o == OpMapTCP }

// String returns "external-address", "map-udp" or "map-tcp", "opcode-N"
// for others, with "-response" appended when ResponseBit is set.
func (o Opcode) String() string {
	var s string
	switch o &^ ResponseBit {
	case OpExternalAddress:
		s = "external-address"
	case OpMapUDP:
		s = "map-udp"
	case OpMapTCP:
		s = "map-tcp"
	default:
		s = "opcode-" + strconv.Itoa(int(o&^ResponseBit))
	}
	if o.IsResponse() {
		s += "-response"
	}
	return s
}

// ResultCode is the 16-bit result of a response (RFC 6886 §3: "Responses
// always contain a 16-bit result code in network byte order").
type ResultCode uint16

// The result codes of RFC 6886 §3.5 ("Currently defined result codes").
// §3.5 also says: "Clients MUST be able to properly handle result codes not
// defined in this document. Undefined results codes MUST be treated as fatal
// errors of the request."
const (
	// Success is "0 - Success" (§3.5).
	Success ResultCode = 0
	// UnsupportedVersion is "1 - Unsupported Version" (§3.5): the request's
	// version was not 0.
	UnsupportedVersion ResultCode = 1
	// NotAuthorized is "2 - Not Authorized/Refused (e.g., box supports
	// mapping, but user has turned feature off)" (§3.5); §3.4 also asks for
	// it when a client tries to delete a manually configured mapping.
	NotAuthorized ResultCode = 2
	// NetworkFailure is "3 - Network Failure (e.g., NAT box itself has not
	// obtained a DHCP lease)" (§3.5).
	NetworkFailure ResultCode = 3
	// OutOfResources is "4 - Out of resources (NAT box cannot create any
	// more mappings at this time)" (§3.5).
	OutOfResources ResultCode = 4
	// UnsupportedOpcode is "5 - Unsupported opcode" (§3.5).
	UnsupportedOpcode ResultCode = 5
)

// String returns the RFC 6886 §3.5 name of c in lower case, or
// "result-code-N" for codes the RFC does not define.
func (c ResultCode) String() string {
	switch c {
	case Success:
		return "success"
	case UnsupportedVersion:
		return "unsupported version"
	case NotAuthorized:
		return "not authorized"
	case NetworkFailure:
		return "network failure"
	case OutOfResources:
		return "out of resources"
	case UnsupportedOpcode:
		return "unsupported opcode"
	}
	return "result-code-" + strconv.Itoa(int(c))
}

// Errors returned by the decoders and encoders, for errors.Is.
var (
	// ErrShortPacket means a packet is shorter than its message.
	ErrShortPacket = errors.New("natpmp: short packet")
	// ErrLongPacket means a packet is longer than its message.
	ErrLongPacket = errors.New("natpmp: long packet")
	// ErrVersion means the version byte is not 0 (RFC 6886 §3).
	ErrVersion = errors.New("natpmp: unsupported version")
	// ErrPCPServer means a response carries version 2: a PCP-only server
	// answered (RFC 6887 §9), and the client should speak PCP to it.
	ErrPCPServer = errors.New("natpmp: version 2 response from a PCP server")
	// ErrOpcode means the opcode is not one the message or the protocol
	// has (RFC 6886 §3.5: "currently 0, 1, or 2").
	ErrOpcode = errors.New("natpmp: unsupported opcode")
	// ErrNotRequest means a request was expected but ResponseBit is set.
	ErrNotRequest = errors.New("natpmp: not a request")
	// ErrNotResponse means a response was expected but ResponseBit is
	// clear.
	ErrNotResponse = errors.New("natpmp: not a response")
	// ErrNotIPv4 means a successful external address response was to carry
	// an address that is not IPv4 (RFC 6886 §3.2).
	ErrNotIPv4 = errors.New("natpmp: external address is not IPv4")
)

// ResultError is a response whose result code is not Success, as an error
// for the client side (errors.As). RFC 6886 §3.5 asks clients to treat codes
// it does not define as fatal errors of the request.
type ResultError struct {
	// Op is the opcode of the request that failed, without ResponseBit.
	Op Opcode
	// Code is the gateway's result code.
	Code ResultCode
}

// Error returns a message such as "natpmp: map-tcp: out of resources
// (result code 4)".
func (e *ResultError) Error() string {
	return "natpmp: " + e.Op.String() + ": " + e.Code.String() +
		" (result code " + strconv.Itoa(int(e.Code)) + ")"
}

// resultErr returns nil for Success and a *ResultError otherwise.
func resultErr(op Opcode, c ResultCode) error {
	if c == Success {
		return nil
	}
	return &ResultError{Op: op, Code: c}
}
