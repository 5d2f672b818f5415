package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// TestFirewallAutoSeesLegacyRules: "firewall auto" takes iptables-legacy
// in a namespace whose iptables-legacy tables hold a rule, and nftables
// again once the rules are gone (the tables stay listed, empty), as
// portleased -n reports it. The rules are the lab gateway's own.
func TestFirewallAutoSeesLegacyRules(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	conf := filepath.Join(t.TempDir(), "portleased.conf")
	if err := os.WriteFile(conf, []byte("interface wan0\nlisten on lan0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func() string {
		t.Helper()
		out, err := lab.Gateway.Command(context.Background(), labpeers.PortleasedBinary(t), "-n", "-f", conf).CombinedOutput()
		if err != nil {
			t.Fatalf("portleased -n: %v\n%s", err, out)
		}
		_, firewall, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return firewall
	}
	iptables := func(args ...string) {
		t.Helper()
		if out, err := lab.Gateway.Run(context.Background(), "iptables-legacy", args...); err != nil {
			t.Fatalf("iptables-legacy %q: %v\n%s (make deps installs it)", args, err, out)
		}
	}
	if got, want := check(), "firewall: nftables (auto: the kernel has nf_tables and no iptables-legacy rules are loaded)"; got != want {
		t.Fatalf("before any iptables-legacy rule: %q; want %q", got, want)
	}
	iptables("-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE")
	if got, want := check(), "firewall: iptables-legacy (auto: iptables-legacy rules are loaded (nat))"; got != want {
		t.Fatalf("with a rule in the nat table: %q; want %q", got, want)
	}
	iptables("-t", "nat", "-F", "POSTROUTING")
	if got, want := check(), "firewall: nftables (auto: the kernel has nf_tables and no iptables-legacy rules are loaded)"; got != want {
		t.Fatalf("with the nat table listed but empty: %q; want %q", got, want)
	}
}
