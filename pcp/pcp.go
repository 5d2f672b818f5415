package pcp

import (
	"errors"
	"net/netip"
	"strconv"
)

// Version is the protocol version this package speaks, the first byte of
// every message (RFC 6887 §9: "This document describes PCP version 2").
// Version 0 is NAT-PMP (RFC 6886), which shares the server's port.
const Version = 2

// The UDP ports of PCP (RFC 6887 §19.1).
const (
	// ServerPort is where a PCP server listens for requests (§19.1).
	ServerPort = 5351
	// ClientPort is where clients listen for unsolicited ANNOUNCE
	// responses (§14.1.2: "to the all-nodes multicast address ... port
	// 5350").
	ClientPort = 5350
)

// Message and field sizes in bytes, as drawn in the figures of RFC 6887.
const (
	// HeaderLen is the common request header (§7.1, Figure 2) and the
	// common response header (§7.2, Figure 3).
	HeaderLen = offReqClient + addressLen // 24
	// MapDataLen is the opcode-specific data of MAP (§11.1, Figure 9).
	MapDataLen = offExternalAddr + addressLen // 36
	// PeerDataLen is the opcode-specific data of PEER (§12.1, Figure 10).
	PeerDataLen = offRemoteAddr + addressLen // 56
	// OptionHeaderLen is the code, reserved and length fields that start
	// every option (§7.3, Figure 4).
	OptionHeaderLen = offOptionLength + optionLengthLen // 4
	// MaxMessageLen is the largest message (§7: "MUST NOT exceed 1100
	// octets").
	MaxMessageLen = 1100
	// NonceLen is the mapping nonce (§11.1).
	NonceLen = 12
)

// Lifetimes a server puts in error responses (§7.4: "short lifetime"
// errors are transient, "long lifetime" ones are not; §8.3 leaves the
// values to the server). A client retries no sooner than the lifetime.
const (
	ShortErrorLifetime = 30   // seconds
	LongErrorLifetime  = 1800 // seconds
)

// Opcode is the operation of a message, its low 7 bits of the second byte
// (§7.1); the top bit is the R bit, set in responses.
type Opcode uint8

// The opcodes of RFC 6887 (§19.2).
const (
	// OpAnnounce announces the server's presence and epoch (§14.1).
	OpAnnounce Opcode = 0
	// OpMap creates an inbound mapping (§11).
	OpMap Opcode = 1
	// OpPeer creates or learns an outbound mapping to one peer (§12).
	OpPeer Opcode = 2
	// ResponseBit is the R bit: set in responses, clear in requests
	// (§7.1: "R: Indicates Request (0) or Response (1)").
	ResponseBit = 0x80
)

// String returns "ANNOUNCE", "MAP", "PEER" or the opcode's number.
func (o Opcode) String() string {
	switch o &^ ResponseBit {
	case OpAnnounce:
		return "ANNOUNCE"
	case OpMap:
		return "MAP"
	case OpPeer:
		return "PEER"
	}
	return "opcode-" + strconv.Itoa(int(o&^ResponseBit))
}

// ResultCode is the result of a request (§7.4).
type ResultCode uint8

// The result codes of RFC 6887 §7.4.
const (
	// Success: "SUCCESS: Success."
	Success ResultCode = 0
	// UnsuppVersion: "The version number at the start of the PCP Request
	// header is not recognized by this PCP server. This is a long
	// lifetime error."
	UnsuppVersion ResultCode = 1
	// NotAuthorized: "The requested operation is disabled for this PCP
	// client, or the PCP client requested an operation that cannot be
	// fulfilled by the PCP server's security policy. This is a long
	// lifetime error."
	NotAuthorized ResultCode = 2
	// MalformedRequest: "The request could not be successfully parsed.
	// This is a long lifetime error."
	MalformedRequest ResultCode = 3
	// UnsuppOpcode: "Unsupported Opcode. This is a long lifetime error."
	UnsuppOpcode ResultCode = 4
	// UnsuppOption: "Unsupported Option. This error only occurs if the
	// Option is in the mandatory-to-process range. This is a long
	// lifetime error."
	UnsuppOption ResultCode = 5
	// MalformedOption: "Malformed Option (e.g., appears too many times,
	// invalid length). This is a long lifetime error."
	MalformedOption ResultCode = 6
	// NetworkFailure: "The PCP server or the device it controls is
	// experiencing a network failure of some sort (e.g., has not obtained
	// an External IP address). This is a short lifetime error."
	NetworkFailure ResultCode = 7
	// NoResources: "Request is well-formed and valid, but the server has
	// insufficient resources to complete the requested operation at this
	// time. ... This is a short lifetime error."
	NoResources ResultCode = 8
	// UnsuppProtocol: "Unsupported transport protocol, e.g., SCTP in a
	// NAT that handles only UDP and TCP. This is a long lifetime error."
	UnsuppProtocol ResultCode = 9
	// UserExQuota: "This attempt to create a new mapping would exceed
	// this subscriber's port quota. This is a short lifetime error."
	UserExQuota ResultCode = 10
	// CannotProvideExternal: "The suggested external port and/or external
	// address cannot be provided. This error MUST only be returned for:
	// MAP requests that included the PREFER_FAILURE option ... PEER
	// requests ... This is a short lifetime error."
	CannotProvideExternal ResultCode = 11
	// AddressMismatch: "The source IP address of the request packet does
	// not match the contents of the PCP Client's IP Address field, due to
	// an unexpected NAT on the path between the PCP client and the
	// PCP-controlled NAT or firewall. This is a long lifetime error."
	AddressMismatch ResultCode = 12
	// ExcessiveRemotePeers: "The PCP server was not able to create the
	// filters in this request. This result code MUST only be returned if
	// the MAP request contained the FILTER option. ... This is a long
	// lifetime error."
	ExcessiveRemotePeers ResultCode = 13
)

var resultNames = [...]string{
	"SUCCESS", "UNSUPP_VERSION", "NOT_AUTHORIZED", "MALFORMED_REQUEST", "UNSUPP_OPCODE",
	"UNSUPP_OPTION", "MALFORMED_OPTION", "NETWORK_FAILURE", "NO_RESOURCES", "UNSUPP_PROTOCOL",
	"USER_EX_QUOTA", "CANNOT_PROVIDE_EXTERNAL", "ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS",
}

// String returns the code's name in RFC 6887 §7.4, or its number.
func (c ResultCode) String() string {
	if int(c) < len(resultNames) {
		return resultNames[c]
	}
	return "result-" + strconv.Itoa(int(c))
}

// Transient reports whether §7.4 calls c a "short lifetime error": one
// that may go away by itself, so that a client retries soon.
func (c ResultCode) Transient() bool {
	switch c {
	case NetworkFailure, NoResources, UserExQuota, CannotProvideExternal:
		return true
	}
	return false
}

// ErrorLifetime returns the lifetime a server puts in an error response of
// code c: ShortErrorLifetime for transient errors, LongErrorLifetime for the
// others (§7.4), 0 for Success.
func (c ResultCode) ErrorLifetime() uint32 {
	switch {
	case c == Success:
		return 0
	case c.Transient():
		return ShortErrorLifetime
	}
	return LongErrorLifetime
}

// Protocol numbers with a meaning of their own in MAP and PEER (§11.1:
// "The value 0 has a special meaning for 'all protocols'").
const (
	ProtocolAll = 0
	ProtocolTCP = 6
	ProtocolUDP = 17
)

// AnnounceAddrs are where a server sends unsolicited ANNOUNCE responses
// (§14.1.3: "the all-nodes multicast address (224.0.0.1 or ff02::1) ...
// port 5350").
func AnnounceAddrs() (v4, v6 netip.AddrPort) {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{224, 0, 0, 1}), ClientPort),
		netip.AddrPortFrom(netip.MustParseAddr("ff02::1"), ClientPort)
}

// Errors of decoding. A server answers some of them (RequestError.Reply).
var (
	// ErrShortPacket: the message is shorter than its fields need.
	ErrShortPacket = errors.New("pcp: short packet")
	// ErrLongPacket: the message is longer than MaxMessageLen.
	ErrLongPacket = errors.New("pcp: packet longer than 1100 bytes")
	// ErrNotMultipleOf4: §7: "All PCP messages ... are a multiple of 4
	// octets" (a server answers MALFORMED_REQUEST).
	ErrNotMultipleOf4 = errors.New("pcp: length not a multiple of 4")
	// ErrVersion: the version byte is not 2.
	ErrVersion = errors.New("pcp: unsupported version")
	// ErrNotRequest: the R bit is set where a request was expected.
	ErrNotRequest = errors.New("pcp: not a request")
	// ErrNotResponse: the R bit is clear where a response was expected.
	ErrNotResponse = errors.New("pcp: not a response")
	// ErrOpcode: the opcode is not ANNOUNCE, MAP or PEER.
	ErrOpcode = errors.New("pcp: unsupported opcode")
	// ErrOption: an option is malformed, repeated where it may not be, or
	// not valid for the opcode.
	ErrOption = errors.New("pcp: malformed option")
	// ErrUnsupportedOption: a mandatory-to-process option this package
	// does not know (§7.3).
	ErrUnsupportedOption = errors.New("pcp: unsupported mandatory option")
	// ErrAddress: an address field holds something that is not an IPv4-
	// mapped or IPv6 address where one is needed.
	ErrAddress = errors.New("pcp: bad address")
)

// RequestError is a request that could not be decoded. Code is the result
// code a server answers with (§8.3); Reply is false when the message must be
// dropped silently (too short to answer, or a response).
type RequestError struct {
	Code  ResultCode
	Op    Opcode
	Reply bool
	Err   error
}

func (e *RequestError) Error() string { return "pcp: " + e.Code.String() + ": " + e.Err.Error() }

// Unwrap returns the underlying sentinel.
func (e *RequestError) Unwrap() error { return e.Err }
