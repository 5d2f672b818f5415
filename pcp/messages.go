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
	// Addr encodes as :: and netip.IPv4Unspecified() as ::ffff:0.0.0.0
	// (§11.1: a client without a preference sends the all-zeros address of
	// the family it wants); decoding gives the zero Addr for either.
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
