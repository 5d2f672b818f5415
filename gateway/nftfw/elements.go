package nftfw

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/portlease/portlease/gateway"
)

// Element layouts. Each field of a concatenation takes a whole number of
// 32-bit registers, padded with zeros; numbers are big endian.
//
//	inbound4 key:    proto 0 0 0 | eport eport 0 0                    (8 bytes)
//	inbound4 data:   addr addr addr addr | iport iport 0 0             (8 bytes)
//	outbound4 key:   proto 0 0 0 | addr addr addr addr | iport iport 0 0 (12 bytes)
//	outbound4 data:  eport eport                                       (2 bytes)
const (
	inboundKeyLen   = 8
	inboundDataLen  = 8
	outboundKeyLen  = 12
	outboundDataLen = 2
)

// inKey identifies a mapping, and its element of the inbound map.
type inKey struct {
	proto gateway.Protocol
	eport uint16
}

// outKey identifies an internal endpoint, and its element of the outbound
// map. Internal addresses are IPv4: an IPv4-mapped IPv6 address is taken as
// the IPv4 address it maps.
type outKey struct {
	proto gateway.Protocol
	addr  [4]byte
	port  uint16
}

// outKeyOf returns the endpoint of protocol proto at internal.
func outKeyOf(proto gateway.Protocol, internal netip.AddrPort) outKey {
	return outKey{proto, internal.Addr().Unmap().As4(), internal.Port()}
}

// internal returns the endpoint's address and port.
func (ep outKey) internal() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(ep.addr), ep.port)
}

// putInKey writes the inbound key of k to b, inboundKeyLen zeroed bytes.
func putInKey(b []byte, k inKey) {
	b[0] = byte(k.proto)
	binary.BigEndian.PutUint16(b[4:], k.eport)
}

// putInData writes the inbound data of an internal endpoint to b,
// inboundDataLen zeroed bytes.
func putInData(b []byte, addr [4]byte, port uint16) {
	copy(b, addr[:])
	binary.BigEndian.PutUint16(b[4:], port)
}

// putOutKey writes the outbound key of ep to b, outboundKeyLen zeroed bytes.
func putOutKey(b []byte, ep outKey) {
	b[0] = byte(ep.proto)
	copy(b[4:], ep.addr[:])
	binary.BigEndian.PutUint16(b[8:], ep.port)
}

// putOutData writes the outbound data of external port eport to b,
// outboundDataLen bytes.
func putOutData(b []byte, eport uint16) {
	binary.BigEndian.PutUint16(b, eport)
}

// decodeInbound turns an element of the inbound map back into a mapping.
func decodeInbound(key, data []byte) (gateway.Mapping, error) {
	if len(key) != inboundKeyLen || len(data) != inboundDataLen {
		return gateway.Mapping{}, fmt.Errorf("nftfw: %s element of %d+%d bytes, want %d+%d",
			inboundName, len(key), len(data), inboundKeyLen, inboundDataLen)
	}
	return gateway.Mapping{
		Protocol:     gateway.Protocol(key[0]),
		ExternalPort: binary.BigEndian.Uint16(key[4:]),
		Internal: netip.AddrPortFrom(
			netip.AddrFrom4([4]byte(data[:4])),
			binary.BigEndian.Uint16(data[4:]),
		),
	}, nil
}

// decodeOutboundKey turns the key of an element of the outbound map back
// into an endpoint.
func decodeOutboundKey(key []byte) (outKey, error) {
	if len(key) != outboundKeyLen {
		return outKey{}, fmt.Errorf("nftfw: %s key of %d bytes, want %d", outboundName, len(key), outboundKeyLen)
	}
	return outKey{
		proto: gateway.Protocol(key[0]),
		addr:  [4]byte(key[4:8]),
		port:  binary.BigEndian.Uint16(key[8:]),
	}, nil
}
