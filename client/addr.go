package client

import (
	"net/netip"
)

// AddressClass says what kind of address a gateway's external address is,
// and so whether its mappings can be reached from the internet.
type AddressClass int

// The classes, after the IANA special-purpose address registries (RFC 6890).
const (
	// Unknown: no address (the gateway did not tell it).
	Unknown AddressClass = iota
	// Public: a global unicast address; mappings are reachable.
	Public
	// Private: RFC 1918 (10/8, 172.16/12, 192.168/16) or IPv6 unique
	// local (fc00::/7): another NAT lies beyond the gateway.
	Private
	// Shared: RFC 6598 shared address space, 100.64/10, used by
	// carrier-grade NAT: the provider's NAT lies beyond the gateway.
	Shared
	// Documentation: RFC 5737 (192.0.2/24, 198.51.100/24, 203.0.113/24)
	// or RFC 3849 (2001:db8::/32). Never on the internet; test labs use
	// it as a stand-in for a public address, so it is not taken for
	// double NAT.
	Documentation
	// Reserved: any other special-purpose range: unspecified, loopback,
	// link-local, multicast, "this network" 0/8, 192.0.0/24, benchmarking
	// 198.18/15, 240/4 and broadcast. The gateway has no usable external
	// address.
	Reserved
)

// String returns the class's name in lower case, such as "private".
func (c AddressClass) String() string {
	switch c {
	case Unknown:
		return "unknown"
	case Public:
		return "public"
	case Private:
		return "private"
	case Shared:
		return "shared (carrier-grade NAT)"
	case Documentation:
		return "documentation"
	case Reserved:
		return "reserved"
	}
	return "address-class-?"
}

// MarshalText returns String, so that JSON shows the class by name.
func (c AddressClass) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Prefixes of the special-purpose ranges that netip.Addr's methods do not
// cover. They are values, built on each call: the package keeps no
// variables.
func sharedPrefix() netip.Prefix { return netip.MustParsePrefix("100.64.0.0/10") }

func documentationPrefixes() [4]netip.Prefix {
	return [4]netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
}

func reservedPrefixes() [5]netip.Prefix {
	return [5]netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("198.18.0.0/15"),
		netip.MustParsePrefix("240.0.0.0/4"), // includes 255.255.255.255
		netip.MustParsePrefix("100::/64"),    // IPv6 discard-only
	}
}

// Classify returns the class of a.
func Classify(a netip.Addr) AddressClass {
	if !a.IsValid() {
		return Unknown
	}
	a = a.Unmap()
	switch {
	case a.IsUnspecified(), a.IsLoopback(), a.IsLinkLocalUnicast(), a.IsMulticast():
		return Reserved
	case a.IsPrivate():
		return Private
	case sharedPrefix().Contains(a):
		return Shared
	}
	for _, p := range documentationPrefixes() {
		if p.Contains(a) {
			return Documentation
		}
	}
	for _, p := range reservedPrefixes() {
		if p.Contains(a) {
			return Reserved
		}
	}
	return Public
}

// IsPublic reports whether a is reachable from the internet: false for
// private, shared (carrier-grade NAT), documentation and other reserved
// addresses. See Classify for the class, and Gateway.DoubleNAT for which
// of them mean a second NAT.
func IsPublic(a netip.Addr) bool { return Classify(a) == Public }

// isDoubleNAT reports whether an external address of class c means that
// another NAT lies beyond the gateway.
func isDoubleNAT(c AddressClass) bool { return c == Private || c == Shared }
