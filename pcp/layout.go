package pcp

// Sizes of the fields, in bytes, in the order the RFC 6887 figures draw
// them.
const (
	versionLen      = 1
	opcodeLen       = 1
	lifetimeLen     = 4
	epochLen        = 4
	resultLen       = 1
	addressLen      = 16 // §5: every address field is 128 bits
	portLen         = 2
	protocolLen     = 1
	optionCodeLen   = 1
	optionLengthLen = 2
	reservedByteLen = 1
)

// Offsets common to requests and responses (§7.1, §7.2).
const (
	offVersion = 0
	offOpcode  = offVersion + versionLen
)

// Offsets in the request header (§7.1, Figure 2).
const (
	offReqReserved = offOpcode + opcodeLen
	offReqLifetime = offReqReserved + 2
	offReqClient   = offReqLifetime + lifetimeLen
)

// Offsets in the response header (§7.2, Figure 3).
const (
	offRespReserved  = offOpcode + opcodeLen
	offResult        = offRespReserved + reservedByteLen
	offRespLifetime  = offResult + resultLen
	offEpoch         = offRespLifetime + lifetimeLen
	offRespReserved2 = offEpoch + epochLen // 96 bits up to HeaderLen
)

// Offsets in the opcode-specific data of MAP (§11.1, Figure 9) and PEER
// (§12.1, Figure 10), from the end of the header. Requests and responses
// share the layout; a response's external port and address are the
// assigned ones.
const (
	offNonce        = 0
	offProtocol     = offNonce + NonceLen
	offMapReserved  = offProtocol + protocolLen // 24 bits
	offInternalPort = offMapReserved + 3
	offExternalPort = offInternalPort + portLen
	offExternalAddr = offExternalPort + portLen
	offRemotePort   = offExternalAddr + addressLen // PEER only
	offPeerReserved = offRemotePort + portLen      // 16 bits
	offRemoteAddr   = offPeerReserved + 2
)

// Offsets in an option (§7.3, Figure 4).
const (
	offOptionCode     = 0
	offOptionReserved = offOptionCode + optionCodeLen
	offOptionLength   = offOptionReserved + reservedByteLen
)

// Offsets in the data of FILTER (§13.3, Figure 13).
const (
	offFilterReserved  = 0
	offFilterPrefixLen = offFilterReserved + reservedByteLen
	offFilterPort      = offFilterPrefixLen + 1
	offFilterAddr      = offFilterPort + portLen
)

// mappedPrefixBits is the length of the ::ffff:0:0/96 prefix an IPv4
// address travels under (§5); a FILTER's prefix length counts it (§13.3).
const mappedPrefixBits = 96

// pad4 rounds n up to a multiple of 4 (§7.3: options "are followed by one,
// two, or three 0 octets to pad their effective length in the packet to be
// a multiple of 4 octets").
func pad4(n int) int { return (n + 3) &^ 3 }
