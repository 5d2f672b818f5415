package gateway

import (
	"net/netip"
	"time"
)

// Policy is what the configuration decides about mappings: which external
// ports may be handed out, to whom, and for how long.
type Policy struct {
	// Ports is the range external ports are allocated from. Zero value:
	// 1024-65535.
	Ports PortRange
	// MaxLifetime caps every lifetime a client asks for. Zero: 86400 s.
	MaxLifetime time.Duration
	// PCPMinLifetime raises a shorter lifetime a PCP client asks for (RFC
	// 6887 §15: "the minimum value SHOULD be 120 seconds"), up to
	// MaxLifetime; NAT-PMP and UPnP get what they ask for. Zero: none.
	PCPMinLifetime time.Duration
	// Rules are checked in order, first match wins (miniupnpd's
	// semantics). A request that no rule matches is denied. An empty list
	// allows every port of Ports to everybody; the daemon never hands the
	// core an empty list, it writes the default "allow 1024-65535 <LAN
	// subnet> 1024-65535" for each LAN subnet and IPv6 prefix. A rule
	// matches addresses of its own family only.
	Rules []Rule
	// ThirdParty holds the requesting hosts that may map for another
	// internal address (PCP THIRD_PARTY, RFC 6887 §13.1; UPnP
	// InternalClient in secure mode): config "allow third-party PREFIX".
	ThirdParty []netip.Prefix
	// MaxPerHost is the number of leases one internal address may hold:
	// IPv4 mappings and IPv6 pinholes of every protocol and origin
	// together. A new lease beyond it is refused with ErrHostQuota; a
	// renewal never is. Zero: unlimited.
	MaxPerHost int
	// MaxLeases is the number of leases the whole table may hold. A new
	// lease beyond it is refused with ErrOutOfResources; a renewal never
	// is. Zero: unlimited.
	MaxLeases int
}

// MayActFor reports whether requester may ask for a mapping of internal:
// its own address always, another one when ThirdParty holds requester. It
// is the one check of every front-end.
func (p Policy) MayActFor(requester, internal netip.Addr) bool {
	requester, internal = requester.Unmap(), internal.Unmap()
	if requester == internal {
		return true
	}
	for _, pfx := range p.ThirdParty {
		if pfx.Contains(requester) {
			return true
		}
	}
	return false
}

// DefaultPorts is the external port range when none is configured.
var DefaultPorts = PortRange{Low: 1024, High: 65535}

// DefaultMaxLifetime is the longest lifetime granted when none is configured.
const DefaultMaxLifetime = 86400 * time.Second

func (p Policy) withDefaults() Policy {
	if p.Ports == (PortRange{}) {
		p.Ports = DefaultPorts
	}
	if p.MaxLifetime <= 0 {
		p.MaxLifetime = DefaultMaxLifetime
	}
	return p
}

// Allows reports whether the policy permits mapping external port eport to
// internal address iaddr and port iport, whoever asked: it decides the
// leases held (at a restart, a reload), whose requester is not kept, so a
// rule's Requesters do not narrow it.
func (p Policy) Allows(eport uint16, iaddr netip.Addr, iport uint16) bool {
	return p.allows(eport, iaddr, iport, func(Rule) bool { return true })
}

// allowsFor is Allows for a new request from requester: rules whose
// Requesters leave requester out are skipped.
func (p Policy) allowsFor(requester netip.Addr, eport uint16, iaddr netip.Addr, iport uint16) bool {
	return p.allows(eport, iaddr, iport, func(r Rule) bool { return r.appliesTo(requester) })
}

func (p Policy) allows(eport uint16, iaddr netip.Addr, iport uint16, applies func(Rule) bool) bool {
	p = p.withDefaults()
	if !p.Ports.Contains(eport) {
		return false
	}
	if len(p.Rules) == 0 {
		return true
	}
	for _, r := range p.Rules {
		if applies(r) && r.Matches(eport, iaddr, iport) {
			return r.Allow
		}
	}
	return false
}

// allowedPorts returns the external ports the policy permits for a new
// request from requester for internal address iaddr and port iport, as
// disjoint ranges in ascending order. It costs O(rules²) at worst and
// nothing per port, so that a request the rules refuse never makes the
// allocator walk the port space.
func (p Policy) allowedPorts(requester, iaddr netip.Addr, iport uint16) []PortRange {
	p = p.withDefaults()
	if len(p.Rules) == 0 {
		return []PortRange{p.Ports}
	}
	undecided := []PortRange{p.Ports}
	var allowed []PortRange
	for _, r := range p.Rules {
		if len(undecided) == 0 {
			break
		}
		if !r.Internal.Contains(iaddr.Unmap()) || !r.InternalPorts.Contains(iport) || !r.appliesTo(requester) {
			continue
		}
		var rest []PortRange
		for _, u := range undecided {
			in, out := split(u, r.ExternalPorts)
			if in != nil && r.Allow {
				allowed = append(allowed, *in)
			}
			rest = append(rest, out...)
		}
		undecided = rest
	}
	sortRanges(allowed)
	return allowed
}

// split divides u into the part inside r and the parts outside it.
func split(u, r PortRange) (in *PortRange, out []PortRange) {
	lo, hi := max(u.Low, r.Low), min(u.High, r.High)
	if lo > hi {
		return nil, []PortRange{u}
	}
	in = &PortRange{lo, hi}
	if u.Low < lo {
		out = append(out, PortRange{u.Low, lo - 1})
	}
	if hi < u.High {
		out = append(out, PortRange{hi + 1, u.High})
	}
	return in, out
}

func sortRanges(rs []PortRange) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Low < rs[j-1].Low; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// lifetime returns the lifetime req is granted (unless it is permanent):
// the one asked for, raised to PCPMinLifetime for a PCP request, capped by
// MaxLifetime.
func (p Policy) lifetime(req *MapRequest) time.Duration {
	d := req.Lifetime
	if req.Origin == OriginPCP {
		d = max(d, p.PCPMinLifetime)
	}
	return min(d, p.MaxLifetime)
}
