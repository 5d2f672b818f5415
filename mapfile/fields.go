package mapfile

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ParseAddress parses the address field of a mapping as upnp-daemon does
// (see the package documentation): "" (or spaces) returns two zero values,
// meaning this host; a host returns addr; a range returns prefix, masked
// and shorter than /32.
func ParseAddress(s string) (addr netip.Addr, prefix netip.Prefix, err error) {
	addr, prefix, err = parseAddress(s)
	if err != nil {
		return netip.Addr{}, netip.Prefix{}, fmt.Errorf("mapfile: address: %w", err)
	}
	return addr, prefix, nil
}

// parseAddress implements the syntax of cidr-utils 0.5's Ipv4Cidr::from_str,
// upnp-daemon's address type: 1 to 4 octets, then optionally /BITS or
// /NETMASK. With fewer than 4 octets the prefix length is 8 per octet given,
// and an explicit one must agree. Host bits are cleared.
func parseAddress(s string) (netip.Addr, netip.Prefix, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return netip.Addr{}, netip.Prefix{}, nil
	}
	if strings.Contains(t, ":") {
		return parseIPv6(s, t)
	}
	bad := func() (netip.Addr, netip.Prefix, error) {
		return netip.Addr{}, netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address or range (e.g. 192.168.0.10, 192.168.0.0/24, 192.168.0)", s)
	}
	host, suffix, slash := strings.Cut(t, "/")
	var oct [4]byte
	n := 0
	for part := range strings.SplitSeq(host, ".") {
		if n == 4 {
			return bad()
		}
		v, ok := parseOctet(part)
		if !ok {
			return bad()
		}
		oct[n] = v
		n++
	}
	bits := 8 * n
	if slash {
		var ok bool
		var b int
		if strings.Contains(suffix, ".") {
			b, ok = parseNetmask(suffix)
		} else {
			b, ok = parsePrefixLen(suffix)
		}
		if !ok {
			return bad()
		}
		if n < 4 && b != bits {
			return netip.Addr{}, netip.Prefix{}, fmt.Errorf("%q gives %d octets, so its prefix length must be /%d", s, n, bits)
		}
		bits = b
	}
	a := netip.AddrFrom4(oct)
	if bits == 32 {
		return a, netip.Prefix{}, nil
	}
	return netip.Addr{}, netip.PrefixFrom(a, bits).Masked(), nil
}

// parseOctet parses a decimal 0 to 255 without leading zeros.
func parseOctet(s string) (byte, bool) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') || !allDigits(s) {
		return 0, false
	}
	v, _ := strconv.Atoi(s)
	if v > 255 {
		return 0, false
	}
	return byte(v), true
}

// parsePrefixLen parses a decimal 0 to 32 without leading zeros.
func parsePrefixLen(s string) (int, bool) {
	if s == "" || len(s) > 2 || (len(s) > 1 && s[0] == '0') || !allDigits(s) {
		return 0, false
	}
	v, _ := strconv.Atoi(s)
	return v, v <= 32
}

// parseNetmask parses a dotted netmask of contiguous ones and returns its
// prefix length.
func parseNetmask(s string) (int, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return 0, false
	}
	var m uint32
	for _, p := range parts {
		v, ok := parseOctet(p)
		if !ok {
			return 0, false
		}
		m = m<<8 | uint32(v)
	}
	ones := 0
	for m&(1<<31) != 0 {
		m <<= 1
		ones++
	}
	return ones, m == 0
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseUint parses a decimal as Rust's integer FromStr does for unsigned
// types: an optional '+', then at least one digit.
func parseUint(s string, limit uint64) (uint64, bool) {
	s = strings.TrimPrefix(s, "+")
	if s == "" || !allDigits(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil && v <= limit
}

func parsePort(s string) (uint16, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("%q is empty", s)
	}
	v, ok := parseUint(t, math.MaxUint16)
	if !ok || v == 0 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(v), nil
}

func parseProtocol(s string) (Protocol, error) {
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return "", fmt.Errorf("%q is empty", s)
	case strings.EqualFold(t, string(TCP)):
		return TCP, nil
	case strings.EqualFold(t, string(UDP)):
		return UDP, nil
	}
	return "", fmt.Errorf("%q is not TCP or UDP", s)
}

// MaxDuration is the longest lease a file can ask for: upnp-daemon's
// duration is a u32 number of seconds.
const MaxDuration = math.MaxUint32 * time.Second

func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("%q is empty", s)
	}
	v, ok := parseUint(t, math.MaxUint32)
	if !ok {
		return 0, fmt.Errorf("%q is not a number of seconds (0-4294967295)", s)
	}
	return time.Duration(v) * time.Second, nil
}

// errInvalidUTF8 is the message for a comment that is not UTF-8; upnp-daemon
// refuses such a line too (serde reads the comment as a Rust String).
func errInvalidUTF8(s string) error {
	return errors.New(strconv.QuoteToASCII(s) + " is not valid UTF-8")
}

// parseIPv6 reads an IPv6 address (an extension of upnp-daemon's format: a
// pinhole to that address) or range (this host's address inside it): a
// global unicast address, neither link-local nor IPv4-mapped, without zone.
func parseIPv6(s, t string) (netip.Addr, netip.Prefix, error) {
	bad := func() (netip.Addr, netip.Prefix, error) {
		return netip.Addr{}, netip.Prefix{}, fmt.Errorf("%q is not a global IPv6 address or range (e.g. 2001:db8::10, 2001:db8::/64)", s)
	}
	if p, err := netip.ParsePrefix(t); err == nil && strings.Contains(t, "/") {
		// The range is what is kept, host bits cleared: it must be
		// global as such ("1::/1" is "::/1", which is not).
		m := p.Masked()
		if !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() == 0 || !p.Addr().IsGlobalUnicast() || !m.Addr().IsGlobalUnicast() {
			return bad()
		}
		if p.Bits() == 128 {
			return p.Addr(), netip.Prefix{}, nil
		}
		return netip.Addr{}, m, nil
	}
	a, err := netip.ParseAddr(t)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" || !a.IsGlobalUnicast() {
		return bad()
	}
	return a, netip.Prefix{}, nil
}
