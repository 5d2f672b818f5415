package pcp

import "net/netip"

// appendAddr appends the 128-bit form of a (§5): an IPv4 address as an
// IPv4-mapped IPv6 address, the zero Addr as all zeros. The zone is not
// sent.
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		var zero [addressLen]byte
		return append(b, zero[:]...)
	}
	a16 := a.As16()
	return append(b, a16[:]...)
}

// decodeAddr reads a 128-bit address field (§5): an IPv4-mapped address
// gives the 4-byte form, :: and ::ffff:0.0.0.0 the zero Addr.
func decodeAddr(b []byte) netip.Addr {
	a := netip.AddrFrom16([addressLen]byte(b)).Unmap()
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}
