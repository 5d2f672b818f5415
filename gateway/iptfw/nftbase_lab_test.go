package iptfw

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/netlab"
)

// nftRuleset returns `nft list ruleset` in the gateway's namespace, its
// standard output alone (nft warns on standard error that iptables-nft
// manages a table).
func nftRuleset(t *testing.T, lab *netlab.Lab) string {
	t.Helper()
	out, err := lab.Gateway.Command(t.Context(), "nft", "list", "ruleset").Output()
	if err != nil {
		t.Fatalf("nft list ruleset: %v", err)
	}
	return string(out)
}

// runBackend starts the backend of variant v in lab's gateway, maps a
// port and a pinhole, and returns the Firewall, open.
func runBackend(t *testing.T, lab *netlab.Lab, netns int, v Variant) *Firewall {
	t.Helper()
	f := startLab(t, lab, netns, v, 0)
	lan := lab.LAN[0]
	add := []gateway.Mapping{
		{Protocol: gateway.TCP, ExternalPort: 40080, Internal: netip.AddrPortFrom(lan.Addr4, 8080), Lifetime: time.Hour},
		{Protocol: gateway.TCP, ExternalPort: 443, Internal: netip.AddrPortFrom(lan.Addr6, 443), Pinhole: true},
	}
	if err := f.Apply(t.Context(), add, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestLabNFTRulesetAsFound checks that the iptables-nft backend leaves
// `nft list ruleset` byte for byte as it found it: iptables-nft makes the
// base chains its jumps go into (nat OUTPUT, ip6 filter FORWARD, ...) and
// the tables themselves when the operator had none, and Close deletes
// them again. The System variant is checked too: iptables-nft when the
// system's iptables-restore is the nf_tables one, and then the same;
// iptables-legacy otherwise, which leaves nftables alone anyway.
func TestLabNFTRulesetAsFound(t *testing.T) {
	for _, v := range []Variant{NFT, System} {
		t.Run("variant "+variantName(v), func(t *testing.T) { testRulesetAsFound(t, v) })
	}
}

// variantName names variant v in a test's name.
func variantName(v Variant) string {
	if v == System {
		return "system"
	}
	return string(v)
}

func testRulesetAsFound(t *testing.T, v Variant) {
	for _, tc := range []struct {
		name     string
		operator []string // iptables-nft commands run before New; WAN: the WAN link
	}{
		{"no iptables-nft table", nil},
		{"operator's nat table with PREROUTING and POSTROUTING", []string{
			"-t nat -A PREROUTING -p tcp --dport 7777 -j DNAT --to-destination 198.51.100.99:7",
			"-t nat -A POSTROUTING -o WAN -j MASQUERADE",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab, netns := labFirewall(t, NFT)
			if v == System {
				if _, err := exec.LookPath("iptables-restore"); err != nil {
					t.Fatalf("no iptables-restore: %v", err)
				}
			}
			for _, c := range tc.operator {
				gw(t, lab, NFT, "iptables", strings.Fields(strings.ReplaceAll(c, "WAN", lab.GatewayWANLink))...)
			}
			before := nftRuleset(t, lab)
			f := runBackend(t, lab, netns, v)
			if v == NFT && f.nft == nil {
				t.Fatal("the nft variant recorded nothing of nftables at New")
			}
			if during := nftRuleset(t, lab); f.nft != nil && !strings.Contains(during, "chain "+chainDNAT+" {") {
				t.Fatalf("the backend is not in the ruleset while it runs (no chain %s):\n%s", chainDNAT, during)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if after := nftRuleset(t, lab); after != before {
				t.Errorf("nft list ruleset after Close:\n%s\nbefore New:\n%s", after, before)
			}
		})
	}
}

// TestLabNFTKeepsWhatTheOperatorAdded checks that Close keeps a base
// chain iptables-nft made for the backend, and its table, once the
// operator has put a rule into it or set its policy to drop while the
// backend ran.
func TestLabNFTKeepsWhatTheOperatorAdded(t *testing.T) {
	lab, netns := labFirewall(t, NFT)
	f := runBackend(t, lab, netns, NFT)
	if during := nftRuleset(t, lab); !strings.Contains(during, "chain "+chainDNAT+" {") {
		t.Fatalf("the backend is not in the ruleset while it runs (no chain %s):\n%s", chainDNAT, during)
	}
	gw(t, lab, NFT, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "7777", "-j", "ACCEPT")
	gw(t, lab, NFT, "ip6tables", "-P", "FORWARD", "DROP")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	after := nftRuleset(t, lab)
	for _, want := range []string{
		"table ip nat {\n\tchain OUTPUT {\n\t\ttype nat hook output priority -100; policy accept;\n\t\ttcp dport 7777 counter packets 0 bytes 0 accept\n\t}\n}\n",
		"table ip6 filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n}\n",
	} {
		if !strings.Contains(after, want) {
			t.Errorf("nft list ruleset after Close lacks\n%s\nin\n%s", want, after)
		}
	}
	for _, gone := range []string{"table ip filter", "chain PREROUTING", "chain POSTROUTING", chainPrefix} {
		if strings.Contains(after, gone) {
			t.Errorf("nft list ruleset after Close still holds %q:\n%s", gone, after)
		}
	}
}
