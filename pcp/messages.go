package pcp

import "net/netip"

// MapData is the opcode-specific data of MAP (§11.1, Figure 9). In a
// request ExternalPort and ExternalAddr are the client's suggestion (zero for
// none); in a response, what the server assigned.
type MapData struct {
	Nonce        [NonceLen]byte
	Protocol     uint8
	InternalPort uint16
	ExternalPort uint16
	// ExternalAddr is the suggested or assigned external address. The zero
	// Addr encodes as all zeros (§11.1: "the IPv6 address ::" or, for
	// IPv4, "::ffff:0.0.0.0"); decoding gives the zero Addr for either.
	ExternalAddr netip.Addr
}

// PeerData is the opcode-specific data of PEER (§12.1, Figure 10): MAP's
// fields and the remote peer.
type PeerData struct {
	MapData
	RemotePort uint16
	RemoteAddr netip.Addr
}

// Request is a PCP request (§7.1) with its opcode's data and options.
type Request struct {
	Opcode Opcode
	// Lifetime is the requested lifetime in seconds; 0 deletes (§11.1).
	Lifetime uint32
	// Client is the PCP client's IP address as the client sees it (§7.1),
	// which the server compares with the packet's source (§8.3).
	Client netip.Addr
	// Map is the data of OpMap, Peer of OpPeer; ANNOUNCE has none.
	Map     MapData
	Peer    PeerData
	Options Options
}

// Response is a PCP response (§7.2) with its opcode's data and options.
type Response struct {
	Opcode   Opcode
	Result   ResultCode
	Lifetime uint32
	// Epoch is the server's Epoch Time (§8.5).
	Epoch   uint32
	Map     MapData
	Peer    PeerData
	Options Options
}

// AppendBinary appends the request in the layout of §7.1 (Figure 2),
// followed by its opcode's data and its options, to b.
func (r Request) AppendBinary(b []byte) ([]byte, error) { panic("pcp: unimplemented") }

// UnmarshalBinary decodes a request. Errors are *RequestError with the
// result code §8.3 prescribes.
func (r *Request) UnmarshalBinary(b []byte) error { panic("pcp: unimplemented") }

// ParseRequest decodes a request as a server must (§8.3): a message too
// short to carry a header or with the R bit set is dropped (RequestError
// with Reply false), a bad length gives MALFORMED_REQUEST, another version
// UNSUPP_VERSION, an unknown opcode UNSUPP_OPCODE, an unknown mandatory
// option UNSUPP_OPTION, a bad option MALFORMED_OPTION.
func ParseRequest(b []byte) (Request, error) { panic("pcp: unimplemented") }

// AppendBinary appends the response in the layout of §7.2 (Figure 3),
// followed by its opcode's data and options, to b.
func (r Response) AppendBinary(b []byte) ([]byte, error) { panic("pcp: unimplemented") }

// UnmarshalBinary decodes a response as a client must (§8.2).
func (r *Response) UnmarshalBinary(b []byte) error { panic("pcp: unimplemented") }

// AppendErrorResponse appends the response a server sends to a request req
// (the raw message) that it refuses with code before or without decoding it
// (§8.3, §7.2): the request copied up to MaxMessageLen bytes and rounded
// down to a multiple of 4, with the response header written over its
// first HeaderLen bytes (R bit, code, lifetime, epoch). The version byte is
// Version for UNSUPP_VERSION (§9: the highest version the server supports).
func AppendErrorResponse(b, req []byte, code ResultCode, lifetime, epoch uint32) []byte {
	panic("pcp: unimplemented")
}
