package config

import "strings"

// Firewall is the kernel interface the mappings are enforced through
// ("firewall auto|nftables|iptables|iptables-legacy|iptables-nft").
type Firewall string

// The firewall backends. FirewallIptables is iptables through whichever
// iptables-restore the system's alternatives name; the other two name the
// variant.
const (
	FirewallAuto           Firewall = "auto"
	FirewallNftables       Firewall = "nftables"
	FirewallIptables       Firewall = "iptables"
	FirewallIptablesLegacy Firewall = "iptables-legacy"
	FirewallIptablesNft    Firewall = "iptables-nft"
)

// firewalls are the values "firewall" takes, in the order messages list
// them.
var firewalls = []Firewall{FirewallAuto, FirewallNftables, FirewallIptables, FirewallIptablesLegacy, FirewallIptablesNft}

// firewall parses "firewall auto|nftables|iptables|iptables-legacy|iptables-nft".
func (p *parser) firewall(s statement) {
	args := s.tokens[1:]
	if len(args) == 0 {
		p.errorf(s.line, "firewall: missing backend (%s)", firewallChoices())
		return
	}
	if !p.once(s.line, &p.cfg.FirewallLine, "firewall") {
		return
	}
	w := args[0]
	if p.extra("firewall", args[1:]) {
		return
	}
	for _, f := range firewalls {
		if w.text == string(f) {
			p.cfg.Firewall = f
			return
		}
	}
	p.errorf(w.line, "firewall: unknown backend %q (want %s)", w.text, firewallChoices())
}

// firewallChoices returns the values of "firewall" as "a|b|c".
func firewallChoices() string {
	s := make([]string, len(firewalls))
	for i, f := range firewalls {
		s[i] = string(f)
	}
	return strings.Join(s, "|")
}
