package netlab

import (
	"context"
	"fmt"
	"net/netip"
)

// AddLinkedHost adds a host that hangs off the gateway by a link of its own:
// a veth pair whose gateway end is called gwLink and has address gwAddr,
// and whose other end, the new host's eth0, has hostAddr (IPv4 only) and a
// default route through gwAddr. It stands for a second WAN link (its host
// then reaches the gateway's address on it only through that link) or for
// a LAN link added to a running gateway.
//
// Both addresses must lie inside the lab's documentation ranges,
// 198.51.100.0/24 or 203.0.113.0/24, in the same subnet; a subnet longer
// than the /24 it lies in (such as 203.0.113.128/25) is preferred by the
// gateway over the lab's own link to the rest of that /24. name is the
// host's role, such as "wan1"; its namespace is removed with the lab.
func (l *Lab) AddLinkedHost(ctx context.Context, name, gwLink string, gwAddr, hostAddr netip.Prefix) (*Host, error) {
	lan, wan := netip.MustParsePrefix("198.51.100.0/24"), wanPrefix4()
	for _, p := range []netip.Prefix{gwAddr, hostAddr} {
		if !p.IsValid() || !p.Addr().Is4() || p.Bits() < 24 || !lan.Contains(p.Addr()) && !wan.Contains(p.Addr()) {
			return nil, fmt.Errorf("netlab: address %v not a /24 or longer inside %v or %v", p, lan, wan)
		}
	}
	if gwAddr.Masked() != hostAddr.Masked() || gwAddr.Addr() == hostAddr.Addr() {
		return nil, fmt.Errorf("netlab: addresses %v and %v are not two hosts of one subnet", gwAddr, hostAddr)
	}
	if err := checkIfName(gwLink); err != nil {
		return nil, err
	}
	h := l.newHost(name, hostAddr.Addr(), netip.Addr{}, hostLink)
	// Recorded first, as in build: Close removes what was made.
	l.namespaces = append(l.namespaces, h.NS)
	gw := l.Gateway.NS
	steps := [][]string{
		{"netns", "add", h.NS},
		{"-n", h.NS, "link", "set", "lo", "up"},
		// Both ends are born inside lab namespaces.
		{"-n", gw, "link", "add", gwLink, "type", "veth", "peer", "name", h.Link, "netns", h.NS},
		{"-n", gw, "addr", "add", gwAddr.String(), "dev", gwLink},
		{"-n", gw, "link", "set", gwLink, "up"},
		{"-n", h.NS, "addr", "add", hostAddr.String(), "dev", h.Link},
		{"-n", h.NS, "link", "set", h.Link, "up"},
		{"-n", h.NS, "-4", "route", "add", "default", "via", gwAddr.Addr().String(), "dev", h.Link},
	}
	for _, args := range steps {
		if err := ip(ctx, "", args...); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// checkIfName reports whether name can be an interface name.
func checkIfName(name string) error {
	if name == "" || len(name) > 15 {
		return fmt.Errorf("netlab: link name %q not 1 to 15 bytes", name)
	}
	return nil
}
