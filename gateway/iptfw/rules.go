package iptfw

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/fwplan"
)

// The backend's chains. Every name starts with PORTLEASE- (chainPrefix).
const (
	chainPrefix      = "PORTLEASE-"
	chainPrerouting  = "PORTLEASE-PREROUTING"
	chainOutput      = "PORTLEASE-OUTPUT"
	chainPostrouting = "PORTLEASE-POSTROUTING"
	chainHairpin     = "PORTLEASE-HAIRPIN"
	chainDNAT        = "PORTLEASE-DNAT"
	chainSNAT        = "PORTLEASE-SNAT"
	chainForward     = "PORTLEASE-FORWARD"
	chainPinholes    = "PORTLEASE-PINHOLES"
	// jumpComment marks the jumps from the built-in chains to ours.
	jumpComment = "portleased"
)

// tableID names one of the tables the backend writes.
type tableID uint8

const (
	nat4    tableID = iota // iptables -t nat
	filter4                // iptables -t filter
	filter6                // ip6tables -t filter
)

// name is the table's name in iptables-save's "*name" lines.
func (t tableID) name() string {
	if t == nat4 {
		return "nat"
	}
	return "filter"
}

// tablesOf returns the tables of a family: iptables' or ip6tables'.
func tablesOf(v6 bool) []tableID {
	if v6 {
		return []tableID{filter6}
	}
	return []tableID{nat4, filter4}
}

// chainDef is one of the backend's chains. The rules of a fixed chain
// follow from the layout alone; those of a root and a fanout chain from
// the buckets there are; those of a bucket chain are the elements of
// fwplan's plans, one rule (or a few, with filters) each (buckets.go).
type chainDef struct {
	table tableID
	name  string
	role  chainRole
	kind  elemKind // of the elements a root, fanout or bucket chain leads to
}

// chainDefs returns the backend's chains that are always there, in the
// order they are created: the fixed chains and the roots.
func chainDefs() []chainDef {
	return []chainDef{
		{table: nat4, name: chainPrerouting},
		{table: nat4, name: chainOutput},
		{table: nat4, name: chainPostrouting},
		{table: nat4, name: chainHairpin},
		rootOf(kindIn),
		rootOf(kindOut),
		{table: filter4, name: chainForward},
		{table: filter6, name: chainForward},
		rootOf(kindPin),
	}
}

// jumpDef is a jump from a built-in chain to one of ours, inserted first
// in the built-in chain: nftfw's chains sit at dstnat (nat PREROUTING,
// OUTPUT), srcnat - 10 (before the operator's POSTROUTING rules) and
// filter (FORWARD) priorities.
type jumpDef struct {
	table   tableID
	builtin string
	target  string
}

func jumpDefs() []jumpDef {
	return []jumpDef{
		{nat4, "PREROUTING", chainPrerouting},
		{nat4, "OUTPUT", chainOutput},
		{nat4, "POSTROUTING", chainPostrouting},
		{filter4, "FORWARD", chainForward},
		{filter6, "FORWARD", chainForward},
	}
}

// spec is the jump's rule as iptables-save prints it, after "-A BUILTIN ".
func (j jumpDef) spec() string { return "-m comment --comment " + jumpComment + " -j " + j.target }

// layout is what the fixed chains depend on: the links, the external
// address and the mark of hairpinned traffic.
type layout struct {
	ext      string
	internal []string
	addr     netip.Addr // IPv4; the zero Addr: none
	mark     uint32
}

// fixedSpecs returns the rules of fixed chain c, as iptables-save prints
// them after "-A CHAIN ". The external address appears only here, in a few
// dispatch rules: a new address rewrites these and no mapping's rule.
func (l layout) fixedSpecs(c chainDef) []string {
	mark := fmt.Sprintf("%#x/%#x", l.mark, l.mark)
	ext := ""
	if l.addr.IsValid() {
		ext = "-d " + netip.PrefixFrom(l.addr, 32).String() + " "
	}
	var s []string
	switch {
	case c.table == nat4 && c.name == chainPrerouting:
		// Inbound from the WAN link, whatever its destination (as nftfw).
		s = append(s, "-i "+l.ext+" -j "+chainDNAT)
		if ext == "" {
			break
		}
		// Hairpin: from the LAN links to the external address.
		if len(l.internal) == 0 {
			s = append(s, ext+"! -i "+l.ext+" -j "+chainHairpin)
		}
		for _, name := range l.internal {
			s = append(s, ext+"-i "+name+" -j "+chainHairpin)
		}
	case c.table == nat4 && c.name == chainOutput:
		// The gateway's own processes dialling the external address.
		if ext != "" {
			s = append(s, ext+"-j "+chainHairpin)
		}
	case c.table == nat4 && c.name == chainHairpin:
		// The mark tells POSTROUTING which translated traffic came from
		// the LAN side (it cannot match the input link); it is cleared
		// again when no mapping translated the packet.
		s = append(s,
			"-j MARK --set-xmark "+mark,
			"-j "+chainDNAT,
			fmt.Sprintf("-j MARK --set-xmark 0x0/%#x", l.mark))
	case c.table == nat4 && c.name == chainPostrouting:
		if ext != "" {
			s = append(s,
				"-o "+l.ext+" -j "+chainSNAT,
				// Hairpinned traffic goes back into the LAN from the
				// gateway, so that the answers come back through it.
				"! -o "+l.ext+" -m mark --mark "+mark+" -m conntrack --ctstate DNAT -j MASQUERADE")
		}
	case c.table == filter4 && c.name == chainForward:
		s = append(s, "-m conntrack --ctstate DNAT -j ACCEPT")
	case c.table == filter6 && c.name == chainForward:
		s = append(s, "-i "+l.ext+" -j "+chainPinholes)
	}
	return s
}

// protoMatch returns the protocol and port match of p, as iptables-save
// prints it: "-p tcp -m tcp".
func protoMatch(p gateway.Protocol) (string, error) {
	switch p {
	case gateway.TCP, gateway.UDP, 33, 132:
		n := protoName(p)
		return "-p " + n + " -m " + n, nil
	}
	return "", fmt.Errorf("iptfw: protocol %v: iptables has no port match for it", p)
}

// protoName returns the name iptables prints for protocol p.
func protoName(p gateway.Protocol) string {
	switch p {
	case 33:
		return "dccp"
	case 132:
		return "sctp"
	}
	return p.String()
}

// protoOf returns the protocol iptables-save prints as name.
func protoOf(name string) (gateway.Protocol, bool) {
	for _, p := range []gateway.Protocol{gateway.TCP, gateway.UDP, 33, 132} {
		if protoName(p) == name {
			return p, true
		}
	}
	n, err := strconv.ParseUint(name, 10, 8)
	return gateway.Protocol(n), err == nil
}

// elemKind is the kind of an element of a plan.
type elemKind uint8

const (
	kindIn  elemKind = iota + 1 // inbound (DNAT) of an IPv4 mapping, by protocol and external port
	kindOut                     // outbound (SNAT) of an internal IPv4 endpoint
	kindPin                     // an IPv6 pinhole, by its endpoint
)

// elemKey identifies an element: the rules of one mapping (kindIn, with
// its filters), one endpoint's outbound translation (kindOut) or one
// pinhole (kindPin, with its filters).
type elemKey struct {
	kind  elemKind
	proto gateway.Protocol
	port  uint16     // kindIn: external port; else the internal one
	addr  netip.Addr // kindOut, kindPin: the internal address
}

// inboundSpecs returns the rules of an inbound element: one DNAT, or one
// per filter, admitting only those peers (PCP FILTER, RFC 6887 §13.3;
// UPnP RemoteHost). A peer no filter admits is not translated.
func inboundSpecs(in fwplan.Inbound, filters []gateway.Filter) ([]string, error) {
	pm, err := protoMatch(in.Protocol)
	if err != nil {
		return nil, err
	}
	tail := fmt.Sprintf("--dport %d -j DNAT --to-destination %v", in.ExternalPort, netip.AddrPortFrom(in.Internal.Addr().Unmap(), in.Internal.Port()))
	if len(filters) == 0 {
		return []string{pm + " " + tail}, nil
	}
	specs := make([]string, 0, len(filters))
	for _, f := range filters {
		specs = append(specs, peerMatch(filter4Prefix(f.Remote), pm, f.Port)+tail)
	}
	return specs, nil
}

// peerMatch returns "[-s PREFIX ]PROTO-MATCH [--sport PORT ]" for a filter.
func peerMatch(remote netip.Prefix, pm string, port uint16) string {
	var b strings.Builder
	if remote.IsValid() && remote.Bits() > 0 {
		b.WriteString("-s " + remote.Masked().String() + " ")
	}
	b.WriteString(pm + " ")
	if port != 0 {
		fmt.Fprintf(&b, "--sport %d ", port)
	}
	return b.String()
}

// filter4Prefix returns an IPv4 filter's prefix as IPv4 (the core may
// give it IPv4-mapped).
func filter4Prefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// outboundSpec returns the rule of an outbound element: traffic from the
// endpoint leaves with the mapped port (RFC 4787 REQ-1, endpoint
// independent). MASQUERADE takes the address of the WAN link the traffic
// leaves by, the external address, so that the rule does not name it.
func outboundSpec(o fwplan.Outbound) (string, error) {
	pm, err := protoMatch(o.Protocol)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("-s %v/32 %s --sport %d -j MASQUERADE --to-ports %d",
		o.Internal.Addr().Unmap(), pm, o.Internal.Port(), o.ExternalPort), nil
}

// pinholeSpecs returns the rules of a pinhole (RFC 6887 §11 MAP for IPv6,
// UPnP WANIPv6FirewallControl): accept inbound traffic to the endpoint,
// from any peer or from those of its filters; a filtered pinhole ends with
// a drop of the other peers' new traffic (the replies of the endpoint's
// own connections pass, as in nftfw).
func pinholeSpecs(p fwplan.Pinhole) ([]string, error) {
	pm, err := protoMatch(p.Protocol)
	if err != nil {
		return nil, err
	}
	dst := "-d " + netip.PrefixFrom(p.Internal.Addr(), 128).String() + " "
	dport := fmt.Sprintf("--dport %d", p.Internal.Port())
	if len(p.Filters) == 0 {
		return []string{dst + pm + " " + dport + " -j ACCEPT"}, nil
	}
	specs := make([]string, 0, len(p.Filters)+1)
	for _, f := range p.Filters {
		src := ""
		if f.Remote.IsValid() && f.Remote.Bits() > 0 {
			src = "-s " + f.Remote.Masked().String() + " "
		}
		sport := ""
		if f.Port != 0 {
			sport = fmt.Sprintf("--sport %d ", f.Port)
		}
		specs = append(specs, src+dst+pm+" "+sport+dport+" -j ACCEPT")
	}
	return append(specs, dst+pm+" "+dport+" -m conntrack --ctdir ORIGINAL -j DROP"), nil
}
