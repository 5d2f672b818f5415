package gateway

import (
	"cmp"
	"net/netip"
	"time"
)

// Origin names the front-end that made a lease.
type Origin uint8

// The front-ends that make leases.
const (
	OriginNATPMP Origin = iota + 1
	OriginPCP
	OriginUPnP
)

// String returns "natpmp", "pcp" or "upnp".
func (o Origin) String() string {
	switch o {
	case OriginNATPMP:
		return "natpmp"
	case OriginPCP:
		return "pcp"
	case OriginUPnP:
		return "upnp"
	}
	return "unknown"
}

// Lease is one port mapping granted to a client, in PCP's model
// (RFC 6887 §11): a mapping of an internal endpoint to an external port.
type Lease struct {
	Protocol     Protocol
	Internal     netip.AddrPort
	ExternalPort uint16
	// Nonce is the PCP mapping nonce (RFC 6887 §11.1); zero for NAT-PMP.
	Nonce [12]byte
	// Filters, when not empty, admit only the listed remote peers (PCP
	// FILTER RFC 6887 §13.3; a PEER's remote peer, §12, is one /32 or /128
	// filter with its port), normalised as Mapping.Filters says.
	Filters []Filter
	// Pinhole is set for an IPv6 firewall pinhole: Internal is a global
	// IPv6 endpoint, ExternalPort its port, nothing is translated.
	Pinhole bool
	// PinholeID names a pinhole for UPnP (WANIPv6FirewallControl:1
	// UniqueID): 1-65535, unique among live pinholes and kept across
	// restarts; 0 for an IPv4 lease.
	PinholeID   uint16
	Origin      Origin
	Description string
	Created     time.Time
	// Expires is when the lease ends; the zero time means it does not
	// (a permanent UPnP IGD:1 lease).
	Expires time.Time
}

// Lifetime returns how long the lease has left at now, rounded down to whole
// seconds as the wire protocols carry it, and 0 once it has ended. A lease
// without an end returns 0 too; check Expires.IsZero first.
func (l Lease) Lifetime(now time.Time) time.Duration {
	if l.Expires.IsZero() || !now.Before(l.Expires) {
		return 0
	}
	return l.Expires.Sub(now).Truncate(time.Second)
}

// clientLeases are the leases of one client (internal) address.
type clientLeases struct {
	// byPort holds its NAT-PMP and PCP leases by protocol and internal
	// port: one per internal endpoint and protocol (RFC 6886 §3.3, RFC 6887
	// §11.3). For an IPv6 address it holds its pinholes, of whatever
	// origin: one per endpoint and protocol.
	byPort map[portKey]leaseID
	// upnp holds its UPnP leases, which are named by their external port
	// and of which one internal endpoint may have several; nil until the
	// first.
	upnp map[leaseID]struct{}
}

// portKey is a protocol and a port: of an internal endpoint of one client
// in clientLeases.
type portKey struct {
	proto Protocol
	port  uint16
}

func (c *clientLeases) empty() bool { return len(c.byPort) == 0 && len(c.upnp) == 0 }

// CompareLeases orders leases as the operator's views list them: the IPv4
// leases by protocol and external port, then the pinholes by UniqueID.
func CompareLeases(a, b Lease) int {
	if a.Pinhole != b.Pinhole {
		if a.Pinhole {
			return 1
		}
		return -1
	}
	if a.Pinhole {
		return cmp.Compare(a.PinholeID, b.PinholeID)
	}
	return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.ExternalPort, b.ExternalPort))
}
