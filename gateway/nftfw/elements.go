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

// outKey identifies an internal endpoint, and its element of the outbound map.
type outKey struct {
	proto    gateway.Protocol
	internal netip.AddrPort
}

func keyOf(m gateway.Mapping) inKey { return inKey{m.Protocol, m.ExternalPort} }

func endpointOf(m gateway.Mapping) outKey { return outKey{m.Protocol, m.Internal} }

func (k inKey) bytes() []byte {
	b := make([]byte, inboundKeyLen)
	b[0] = byte(k.proto)
	binary.BigEndian.PutUint16(b[4:], k.eport)
	return b
}

func inboundData(internal netip.AddrPort) []byte {
	b := make([]byte, inboundDataLen)
	a := internal.Addr().As4()
	copy(b, a[:])
	binary.BigEndian.PutUint16(b[4:], internal.Port())
	return b
}

func (k outKey) bytes() []byte {
	b := make([]byte, outboundKeyLen)
	b[0] = byte(k.proto)
	a := k.internal.Addr().As4()
	copy(b[4:], a[:])
	binary.BigEndian.PutUint16(b[8:], k.internal.Port())
	return b
}

func outboundData(eport uint16) []byte {
	return binary.BigEndian.AppendUint16(nil, eport)
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
		internal: netip.AddrPortFrom(
			netip.AddrFrom4([4]byte(key[4:8])),
			binary.BigEndian.Uint16(key[8:]),
		),
	}, nil
}
