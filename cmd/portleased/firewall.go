package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/gateway/iptfw"
	"github.com/portlease/portlease/gateway/nftfw"
)

// backend names a firewall backend as portleased logs and prints it.
type backend string

// The backends: nftables over netlink, and iptables through the system's
// iptables-restore, iptables-legacy-restore or iptables-nft-restore.
const (
	backendNftables       backend = "nftables"
	backendIptables       backend = "iptables"
	backendIptablesLegacy backend = "iptables-legacy"
	backendIptablesNft    backend = "iptables-nft"
)

// firewallChoice is the backend portleased runs and why.
type firewallChoice struct {
	backend backend
	reason  string
}

// String returns the choice as -n prints it: "iptables-legacy (reason)".
func (c firewallChoice) String() string {
	return fmt.Sprintf("%s (%s)", c.backend, c.reason)
}

// firewallFacts is what probing the kernel and the installed programs
// found (see probeFirewall): the input of "firewall auto".
type firewallFacts struct {
	// nfTables is nil when a netlink nftables request succeeded, else
	// why it failed.
	nfTables error
	// legacyTables are the iptables-legacy tables holding rules, such as
	// "filter" or "ip6 nat": a rule, a chain of the operator's own or a
	// built-in chain whose policy is not ACCEPT. Tables the kernel lists
	// with nothing in them do not count.
	legacyTables []string
	// legacyUnknown is why the iptables-legacy tables could not be read
	// (nil when they were, or when the kernel has no x_tables loaded).
	legacyUnknown error
	// installed says which iptables-restore programs are on the PATH.
	legacyInstalled, systemInstalled bool
}

// errNoPermission marks a probe refused for want of privileges: the
// probe, not the kernel, is what failed.
var errNoPermission = errors.New("not permitted")

// chooseFirewall decides the backend of the "firewall" directive. A
// backend named in the configuration is taken as is. "auto" takes
// iptables-legacy when iptables-legacy rules are loaded (the machine's
// firewall is written with it, and nftables' rules beside it would be
// passed over by its filter chains); else nftables when the kernel has
// nf_tables; else iptables-legacy, or the system's iptables when only
// that is installed. Tables that cannot be read (as a user other than
// root, /proc/net/ip_tables_names is root's alone) do not stop nftables,
// which the reason says.
func chooseFirewall(want config.Firewall, facts firewallFacts) (firewallChoice, error) {
	switch want {
	case config.FirewallNftables:
		return firewallChoice{backendNftables, "set by the firewall directive"}, nil
	case config.FirewallIptables:
		return firewallChoice{backendIptables, "set by the firewall directive"}, nil
	case config.FirewallIptablesLegacy:
		return firewallChoice{backendIptablesLegacy, "set by the firewall directive"}, nil
	case config.FirewallIptablesNft:
		return firewallChoice{backendIptablesNft, "set by the firewall directive"}, nil
	case config.FirewallAuto, "":
	default:
		return firewallChoice{}, fmt.Errorf("portleased: firewall %q: unknown backend", want)
	}
	if len(facts.legacyTables) > 0 {
		reason := "auto: iptables-legacy rules are loaded (" + strings.Join(facts.legacyTables, ", ") + ")"
		if !facts.legacyInstalled {
			reason += "; iptables-legacy-restore is not installed"
		}
		return firewallChoice{backendIptablesLegacy, reason}, nil
	}
	if facts.nfTables == nil {
		reason := "auto: the kernel has nf_tables and no iptables-legacy rules are loaded"
		if facts.legacyUnknown != nil {
			reason = fmt.Sprintf("auto: the kernel has nf_tables; iptables-legacy rules not known (%v): set firewall iptables-legacy if the machine's firewall uses it", facts.legacyUnknown)
		}
		return firewallChoice{backendNftables, reason}, nil
	}
	if errors.Is(facts.nfTables, errNoPermission) {
		return firewallChoice{}, fmt.Errorf("portleased: firewall auto: cannot tell whether the kernel has nf_tables: %w (run as root or with CAP_NET_ADMIN, or name the backend with the firewall directive)", facts.nfTables)
	}
	switch {
	case facts.legacyInstalled:
		return firewallChoice{backendIptablesLegacy, fmt.Sprintf("auto: the kernel has no nf_tables (%v)", facts.nfTables)}, nil
	case facts.systemInstalled:
		return firewallChoice{backendIptables, fmt.Sprintf("auto: the kernel has no nf_tables (%v) and iptables-legacy-restore is not installed", facts.nfTables)}, nil
	}
	return firewallChoice{}, fmt.Errorf("portleased: firewall auto: the kernel has no nf_tables (%v) and no iptables-restore is installed (Debian: apt-get install iptables)", facts.nfTables)
}

// firewallFactsFor probes the kernel for "firewall auto" (want) alone: a
// backend named in the configuration needs nothing probed.
func firewallFactsFor(want config.Firewall) firewallFacts {
	if want != config.FirewallAuto && want != "" {
		return firewallFacts{}
	}
	return probeFirewall(context.Background())
}

// newFirewall installs the backend of c, with the WAN link external and
// the LAN links internal (those hairpinned); an iptables backend takes
// iptables-legacy's locks.
func newFirewall(c firewallChoice, locks xtablesLocks, external string, internal []string, log *slog.Logger) (gateway.Firewall, error) {
	var variant iptfw.Variant
	switch c.backend {
	case backendNftables:
		fw, err := nftfw.New(nftfw.Config{ExternalInterface: external, InternalInterfaces: internal, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("nftables: %w", err)
		}
		return fw, nil
	case backendIptables:
		variant = iptfw.System
	case backendIptablesLegacy:
		variant = iptfw.Legacy
	case backendIptablesNft:
		variant = iptfw.NFT
	default:
		return nil, fmt.Errorf("portleased: firewall backend %q unknown", c.backend)
	}
	fw, err := iptfw.New(iptfw.Config{Variant: variant, ExternalInterface: external, InternalInterfaces: internal, Logger: log,
		XtablesLock: locks.system, LockFile: locks.private})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.backend, err)
	}
	return fw, nil
}
