// Package ifaddr finds the addresses of network interfaces and follows the
// external interface's IPv4 address through netlink events, so that the
// gateway learns of a new address the moment the kernel has it, without
// polling.
package ifaddr

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoInterface means the named interface does not exist.
var ErrNoInterface = errors.New("ifaddr: no such interface")

// Interface is a link with its IPv4 and IPv6 prefixes.
type Interface struct {
	Name     string
	Index    int
	Prefixes []netip.Prefix // addresses with their on-link prefix length
}

// Lookup returns the interface called name and its addresses.
func Lookup(name string) (Interface, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return Interface{}, fmt.Errorf("%w: %s", ErrNoInterface, name)
		}
		return Interface{}, fmt.Errorf("ifaddr: %s: %w", name, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return Interface{}, fmt.Errorf("ifaddr: addresses of %s: %w", name, err)
	}
	ifc := Interface{Name: name, Index: link.Attrs().Index}
	for _, a := range addrs {
		if p, ok := prefixOf(a); ok {
			ifc.Prefixes = append(ifc.Prefixes, p)
		}
	}
	return ifc, nil
}

// ByAddress returns the interface that holds address a.
func ByAddress(a netip.Addr) (Interface, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return Interface{}, fmt.Errorf("ifaddr: list links: %w", err)
	}
	for _, l := range links {
		ifc, err := Lookup(l.Attrs().Name)
		if err != nil {
			continue
		}
		for _, p := range ifc.Prefixes {
			if p.Addr() == a {
				return ifc, nil
			}
		}
	}
	return Interface{}, fmt.Errorf("ifaddr: no interface holds %v", a)
}

func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

// PrimaryIPv4 returns the interface's primary global IPv4 address (the first
// one that is not a secondary), or the zero Addr when it has none. An
// address of 0.0.0.0, which some PPPoE links carry before they come up, does
// not count.
func PrimaryIPv4(name string) (netip.Addr, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return netip.Addr{}, fmt.Errorf("%w: %s", ErrNoInterface, name)
		}
		return netip.Addr{}, fmt.Errorf("ifaddr: %s: %w", name, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("ifaddr: addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		if a.Flags&unix.IFA_F_SECONDARY != 0 {
			continue
		}
		p, ok := prefixOf(a)
		if !ok || !p.Addr().Is4() || p.Addr().IsUnspecified() || p.Addr().IsLoopback() {
			continue
		}
		return p.Addr(), nil
	}
	return netip.Addr{}, nil
}
