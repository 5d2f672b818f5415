package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// Issue 13: the reliability guarantees of the gateway hold for every
// firewall backend: the chains are reinstalled when another program
// removes them (checkChainsReinstalled), the state file brings the
// mappings back at a start (checkRestartRestores), conntrack entries go
// with a deleted mapping (checkDeletionCloses in backends_test.go).

// backendHealDeadline bounds the repair of what another program removed:
// nftables' watch is told at once, the iptables backends poll every 5 s.
const backendHealDeadline = 20 * time.Second

// foreignChange is a change another program makes to what portleased
// installed in the kernel.
type foreignChange struct {
	// args are the program and its arguments, run in the gateway's
	// namespace.
	args []string
	// lost is true when the change takes mappings out of the kernel: the
	// daemon then logs that it repaired them (it logs a change that left
	// the mappings in place at debug level, as intact).
	lost bool
}

// foreignChanges returns what checkChainsReinstalled does to backend b's
// rules: for nftables, the rules of its table flushed, then the table
// deleted; for an iptables variant, the DNAT bucket chain holding TCP
// 8080 flushed (PORTLEASE-DNAT-TCP-7: ports 7,168 to 8,191), then the
// jumps of PORTLEASE-DNAT to its per-protocol chains (the mappings' rules stay, as
// nftables' maps with its rules flushed), then the jump from nat
// PREROUTING to its chains deleted.
func foreignChanges(b firewallBackend) []foreignChange {
	if b.variant == "" {
		return []foreignChange{
			{args: []string{"nft", "flush", "table", "inet", "portleased"}},
			{args: []string{"nft", "delete", "table", "inet", "portleased"}, lost: true},
		}
	}
	ipt := "iptables-" + b.variant
	return []foreignChange{
		{args: []string{ipt, "-t", "nat", "-F", "PORTLEASE-DNAT-TCP-7"}, lost: true},
		{args: []string{ipt, "-t", "nat", "-F", "PORTLEASE-DNAT"}},
		{args: []string{ipt, "-t", "nat", "-D", "PREROUTING", "-m", "comment", "--comment", "portleased", "-j", "PORTLEASE-PREROUTING"}},
	}
}

// checkChainsReinstalled: with natpmpc's TCP 8080 mapping up
// (checkNATPMPTraffic), another program removes what backend b installed
// (foreignChanges), one change at a time; each time the daemon (run with
// -v) logs that the backend was changed by another program, as repaired
// when mappings were lost, and the WAN host reaches the LAN host through
// the mapping again, both within backendHealDeadline.
func checkChainsReinstalled(t *testing.T, lab *netlab.Lab, d *labpeers.Portleased, b firewallBackend) {
	t.Helper()
	const served = "tcp through natpmpc"
	ext := lab.GatewayWANAddr4.String() + ":8080"
	for _, c := range foreignChanges(b) {
		what := strings.Join(c.args, " ")
		marker := b.name + " changed by another program"
		if c.lost {
			marker += "; repaired"
		}
		logged := strings.Count(d.Log(), marker)
		labpeers.Firewall(t, lab.Gateway, "", c.args[0], c.args[1:]...)
		changed := time.Now()
		deadline := changed.Add(backendHealDeadline)
		if !waitFor(deadline, func() bool { return strings.Count(d.Log(), marker) > logged }) {
			t.Fatalf("%s: portleased logged no %q within %v", what, marker, backendHealDeadline)
		}
		var got string
		var err error
		if !waitFor(deadline, func() bool {
			got, err = fetchTCP(lab.WAN, ext)
			return err == nil && got == served
		}) {
			t.Fatalf("%s: %v later the WAN host through %s got %q, %v; want the LAN host's greeting",
				what, time.Since(changed).Round(time.Millisecond), ext, got, err)
		}
		t.Logf("%s: repaired and reached %v later", what, time.Since(changed).Round(time.Millisecond))
	}
}

// checkRestartRestores: portleased, run with a state file, is stopped with
// SIGTERM and started again. At the exit an iptables backend removes all
// it installed (iptables rules have no timeouts), while nftables' table
// stays for the next start; either way the operator's rules are as before.
// After the start the state file has brought back the portlease client's
// NAT-PMP mapping of TCP 8082 (checkClientMaps): the WAN host reaches the
// LAN host through it, an iptables backend's chains hold its DNAT again,
// and natpmpc renewing it while suggesting another, free, port keeps
// 8082 (a gateway that had lost the lease would grant the suggestion).
func checkRestartRestores(t *testing.T, lab *netlab.Lab, d *labpeers.Portleased, b firewallBackend, before firewallDump) {
	t.Helper()
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := dumpFirewall(t, lab.Gateway)
	if b.variant == "" {
		if !strings.Contains(stopped["nft list ruleset"], "table inet portleased {") {
			t.Errorf("after SIGTERM with a state file nftables' table inet portleased is gone; want it left for the next start")
		}
		compareDumps(t, "after exit with a state file", before, stopped, withoutPortleased)
	} else {
		checkNothingLeft(t, stopped)
		compareDumps(t, "after exit with a state file", before, stopped, stableDump)
	}

	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "leases restored")
	const served = "tcp through portlease map"
	ext := lab.GatewayWANAddr4.String() + ":8082"
	if got, err := fetchTCP(lab.WAN, ext); err != nil || got != served {
		t.Fatalf("after the start the WAN host through %s got %q, %v; want the restored mapping to reach the LAN host", ext, got, err)
	}
	if b.variant != "" {
		save := labpeers.Firewall(t, lab.Gateway, "", "iptables-"+b.variant+"-save", "-t", "nat")
		if !iptablesDNATs(save, "198.51.100.10:8082") {
			t.Errorf("after the start iptables-%s-save lacks the restored DNAT to 198.51.100.10:8082:\n%s", b.variant, save)
		}
	}
	if got := natpmpcMap(t, lab, lab.LAN[0], 8092, 8082, "tcp", 600); got != 8082 {
		t.Errorf("after the start natpmpc renewing TCP 8082 got external port %d; want the restored 8082", got)
	}
}

// startWithoutState starts portleased again on lab's gateway with backend
// b and no state file, after the runs with one: at its SIGTERM every
// backend removes all it installed. It checks the logged backend, then
// natpmpc maps TCP 8082 of LAN host 0 and the WAN host reaches it, so that
// the exit has a mapping to remove.
func startWithoutState(t *testing.T, lab *netlab.Lab, b firewallBackend) *labpeers.Portleased {
	t.Helper()
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, ExtraLines: []string{"firewall " + b.name}})
	checkLoggedBackend(t, d, b.name)
	if got := natpmpcMap(t, lab, lab.LAN[0], 8082, 8082, "tcp", 600); got != 8082 {
		t.Fatalf("natpmpc got external port %d for TCP 8082; want the free 8082 it suggested", got)
	}
	addr := fmt.Sprintf("%s:%d", lab.GatewayWANAddr4, 8082)
	if got, err := fetchTCP(lab.WAN, addr); err != nil || got != "tcp through portlease map" {
		t.Fatalf("the WAN host through %s got %q, %v", addr, got, err)
	}
	return d
}
