package main

import (
	"fmt"
	"strings"
)

// iptablesMarkdown writes, after the introduction, which gateways are
// portleased on an iptables backend and how their series differs from
// portleased's on nftables. It writes nothing when none was measured.
func (r *results) iptablesMarkdown(p func(format string, args ...any)) {
	var names []string
	for _, g := range r.Gateways {
		if isIptables(g.Name) {
			names = append(names, fmt.Sprintf("%s (`firewall %s`)", g.Name, firewallOf(g.Name)))
		}
	}
	if len(names) == 0 {
		return
	}
	p("")
	p("%s: portleased on its iptables backend, `state file none`, its rules written with "+
		"iptables-restore --noflush of that variant, one process per batch of the group commit. They are measured at "+
		"the sizes up to %s (-iptables-max-size), with the same steps but for the fixed-rate one and the PCP comparison, "+
		"which only portleased on nftables makes.", strings.Join(names, " and "), thousands(r.IptablesMax))
}
