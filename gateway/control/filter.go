package control

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/portlease/portlease/gateway"
)

// Query is the filter of a listing, each field optional: the leases of one
// internal address, of one protocol, made by one origin, with an external
// port (a pinhole's own port) in a range.
type Query struct {
	Host     netip.Addr
	Protocol gateway.Protocol // 0: both
	Origin   gateway.Origin   // 0: every one
	Ports    gateway.PortRange
	// HasPorts says whether Ports applies.
	HasPorts bool
}

// Values returns q as the query of GET /v1/leases.
func (q Query) Values() url.Values {
	v := url.Values{}
	if q.Host.IsValid() {
		v.Set("host", q.Host.String())
	}
	if q.Protocol != 0 {
		v.Set("protocol", q.Protocol.String())
	}
	if q.Origin != 0 {
		v.Set("origin", q.Origin.String())
	}
	if q.HasPorts {
		v.Set("ports", fmt.Sprintf("%d-%d", q.Ports.Low, q.Ports.High))
	}
	return v
}

// ParseQuery reads the filters host, protocol, origin and ports of v;
// another key is an error, as is a value that does not parse.
func ParseQuery(v url.Values) (Query, error) {
	var q Query
	for key, vals := range v {
		if len(vals) != 1 {
			return q, fmt.Errorf("control: filter %s given %d times", key, len(vals))
		}
		s := vals[0]
		var err error
		switch key {
		case "host":
			q.Host, err = ParseHost(s)
		case "protocol":
			q.Protocol, err = ParseProtocol(s)
		case "origin":
			q.Origin, err = ParseOrigin(s)
		case "ports":
			q.Ports, err = ParsePorts(s)
			q.HasPorts = err == nil
		default:
			err = fmt.Errorf("control: unknown filter %q (want host, protocol, origin or ports)", key)
		}
		if err != nil {
			return q, err
		}
	}
	return q, nil
}

// match reports whether l passes q.
func (q Query) match(l gateway.Lease) bool {
	return (!q.Host.IsValid() || l.Internal.Addr().Unmap() == q.Host) &&
		(q.Protocol == 0 || l.Protocol == q.Protocol) &&
		(q.Origin == 0 || l.Origin == q.Origin) &&
		(!q.HasPorts || q.Ports.Contains(l.ExternalPort))
}

// ParseProtocol reads "tcp" or "udp" (any case).
func ParseProtocol(s string) (gateway.Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return gateway.TCP, nil
	case "udp":
		return gateway.UDP, nil
	}
	return 0, fmt.Errorf("control: unknown protocol %q (want tcp or udp)", s)
}

// ParseOrigin reads "natpmp", "pcp" or "upnp" (any case).
func ParseOrigin(s string) (gateway.Origin, error) {
	for _, o := range [...]gateway.Origin{gateway.OriginNATPMP, gateway.OriginPCP, gateway.OriginUPnP} {
		if strings.EqualFold(s, o.String()) {
			return o, nil
		}
	}
	return 0, fmt.Errorf("control: unknown origin %q (want natpmp, pcp or upnp)", s)
}

// ParseHost reads an internal address, IPv4 or IPv6, without a zone.
func ParseHost(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("control: bad address %q (want an IPv4 or IPv6 address such as 192.168.1.10)", s)
	}
	return a.Unmap(), nil
}

// ParsePort reads a port, 1-65535.
func ParsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("control: bad port %q (want 1-65535)", s)
	}
	return uint16(n), nil
}

// ParsePinholeID reads a pinhole's UniqueID, 1-65535.
func ParsePinholeID(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("control: bad pinhole id %q (want 1-65535)", s)
	}
	return uint16(n), nil
}

// ParsePorts reads "LO-HI" or one port "N".
func ParsePorts(s string) (gateway.PortRange, error) {
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	l, err1 := strconv.ParseUint(lo, 10, 16)
	h, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || l == 0 || l > h {
		return gateway.PortRange{}, fmt.Errorf("control: bad port range %q (want LOW-HIGH within 1-65535, such as 40000-40100)", s)
	}
	return gateway.PortRange{Low: uint16(l), High: uint16(h)}, nil
}
