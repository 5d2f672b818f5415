package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// firewallBackend is one backend of portleased under test.
type firewallBackend struct {
	// name is the word of the "firewall" configuration line, and the
	// backend portleased logs at start.
	name string
	// variant is the iptables variant ("legacy", "nft"), "" for nftables.
	variant string
}

// firewallBackends are the backends every gateway behaviour is checked
// against (issue 13).
func firewallBackends() []firewallBackend {
	return []firewallBackend{
		{name: "nftables"},
		{name: "iptables-legacy", variant: "legacy"},
		{name: "iptables-nft", variant: "nft"},
	}
}

// TestFirewallBackends runs the gateway's end-to-end behaviour against each
// firewall backend, in a lab of its own whose gateway already has the
// operator's iptables rules and nftables table (NAT of the LAN included, in
// the iptables variant under test for the iptables backends): natpmpc
// maps a TCP and a UDP port and the WAN host reaches the LAN host through
// each; upnpc maps and lists; the portlease client maps; a LAN host reaches
// a mapping through the external address (hairpin); outbound traffic from
// a mapped endpoint leaves with the mapped port; what another program
// removes of the backend's rules is reinstalled; deleting a mapping closes
// the port at once, to an established flow too (its conntrack entries
// go); a restart brings the mappings back from the state file; and, once
// started again without a state file, SIGTERM leaves nothing of portleased
// in any firewall. The operator's rules are unchanged while portleased
// runs, and exactly as before once it has exited.
func TestFirewallBackends(t *testing.T) {
	t.Parallel()
	for _, b := range firewallBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{LANHosts: 2})
			labpeers.RequirePrograms(t, firewallPrograms()...)
			gw := lab.Gateway
			installOperatorFirewall(t, gw, b.variant)
			before := dumpFirewall(t, gw)
			d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, ExtraLines: []string{"firewall " + b.name},
				StateFile: filepath.Join(labpeers.StateDir(t), "leases")})
			checkLoggedBackend(t, d, b.name)

			udp := checkNATPMPTraffic(t, lab, b, before)
			checkUPnPTraffic(t, lab)
			checkClientMaps(t, lab)
			checkHairpin(t, lab)
			checkOutboundPortKept(t, lab)
			checkChainsReinstalled(t, lab, d, b)
			checkDeletionCloses(t, lab, udp)
			checkRestartRestores(t, lab, d, b, before)

			// With a state file nftables' table stays at exit: the
			// last run has none.
			if err := d.Stop(); err != nil {
				t.Fatal(err)
			}
			d = startWithoutState(t, lab, b)
			if err := d.Stop(); err != nil {
				t.Fatal(err)
			}
			after := dumpFirewall(t, gw)
			checkNothingLeft(t, after)
			compareDumps(t, "after exit", before, after, stableDump)
		})
	}
}

// backendLogRE is the line portleased logs at start naming its firewall
// backend.
var backendLogRE = regexp.MustCompile(`msg="firewall backend" backend=(\S+)`)

// checkLoggedBackend checks that portleased logged exactly one backend
// line since it started, naming want.
func checkLoggedBackend(t *testing.T, d *labpeers.Portleased, want string) {
	t.Helper()
	got := backendLogRE.FindAllStringSubmatch(d.Log(), -1)
	if len(got) != 1 || got[0][1] != want {
		t.Errorf("portleased logged the firewall backend %q; want one line with backend=%s", got, want)
	}
}

// checkNATPMPTraffic: natpmpc maps TCP 8080 and UDP 5000 of LAN host 0,
// the WAN host reaches its servers through them (the UDP flow keeps
// running, into the UDP server it returns, for checkDeletionCloses), the
// kernel shows that the backend under test holds them, and the operator's
// rules are unchanged.
func checkNATPMPTraffic(t *testing.T, lab *netlab.Lab, b firewallBackend, before firewallDump) *netlab.UDPSink {
	t.Helper()
	lan := lab.LAN[0]
	serveTCP(t, lan, 8080, "tcp through natpmpc")
	if got := natpmpcMap(t, lab, lan, 8080, 8080, "tcp", 3600); got != 8080 {
		t.Fatalf("natpmpc got external port %d for TCP; want the free 8080 it suggested", got)
	}
	ext := lab.GatewayWANAddr4.String()
	if got, err := fetchTCP(lab.WAN, ext+":8080"); err != nil || got != "tcp through natpmpc" {
		t.Fatalf("the WAN host through %s:8080/tcp got %q, %v; want the LAN host's greeting", ext, got, err)
	}

	udp := netlab.ListenUDPSink(t, lan, ":5000")
	if got := natpmpcMap(t, lab, lan, 5000, 5000, "udp", 3600); got != 5000 {
		t.Fatalf("natpmpc got external port %d for UDP; want the free 5000 it suggested", got)
	}
	netlab.SendUDPFlow(t, lab.WAN, lab.WAN.Addr4.String()+":41001", ext+":5000")
	eventually(t, "the WAN host's UDP flow reaches LAN host 0", func() bool { return udp.Count() > 0 })

	running := dumpFirewall(t, lab.Gateway)
	checkBackendHolds(t, b, running)
	compareDumps(t, "while running", before, running, withoutPortleased)
	return udp
}

// checkBackendHolds checks in the dumps taken while natpmpc's TCP mapping
// of 198.51.100.10:8080 is up that the backend under test holds it, and no
// other: for nftables, table inet portleased and no PORTLEASE chain in
// iptables; for an iptables variant, its PORTLEASE chains with the DNAT to
// 198.51.100.10:8080, and none in the other variant or in nftables' own
// table.
func checkBackendHolds(t *testing.T, b firewallBackend, d firewallDump) {
	t.Helper()
	ruleset := d["nft list ruleset"]
	hasTable := strings.Contains(ruleset, "table inet portleased {")
	for _, variant := range []string{"legacy", "nft"} {
		save := d["iptables-"+variant+"-save"]
		has := strings.Contains(save, ":PORTLEASE-")
		switch {
		case variant != b.variant && has:
			t.Errorf("backend %s: iptables-%s-save holds PORTLEASE chains:\n%s", b.name, variant, save)
		case variant == b.variant && (!has || !iptablesDNATs(save, "198.51.100.10:8080")):
			t.Errorf("backend %s: iptables-%s-save lacks the PORTLEASE chains with the DNAT to 198.51.100.10:8080:\n%s", b.name, variant, save)
		}
	}
	if want := b.variant == ""; hasTable != want {
		t.Errorf("backend %s: table inet portleased in the ruleset: %v; want %v:\n%s", b.name, hasTable, want, ruleset)
	}
}

// iptablesDNATs reports whether iptables-save output holds a rule in a
// PORTLEASE chain that DNATs to the internal endpoint.
func iptablesDNATs(save, internal string) bool {
	re := regexp.MustCompile(`(?m)^-A PORTLEASE-\S+ .*-j DNAT --to-destination ` + regexp.QuoteMeta(internal) + `$`)
	return re.MatchString(save)
}

// checkUPnPTraffic: upnpc maps TCP 8081 of LAN host 0, lists it, and the
// WAN host reaches it.
func checkUPnPTraffic(t *testing.T, lab *netlab.Lab) {
	t.Helper()
	lan := lab.LAN[0]
	serveTCP(t, lan, 8081, "tcp through upnpc")
	if out := labpeers.UPnPC(t, lan, "-a", "198.51.100.10", "8081", "8081", "TCP", "3600"); !strings.Contains(out, "is redirected to internal 198.51.100.10:8081") {
		t.Fatalf("upnpc -a printed:\n%s", out)
	}
	if table := labpeers.UPnPC(t, lan, "-u", descURL, "-l"); !listed(table, "TCP", 8081, "198.51.100.10:8081") {
		t.Fatalf("upnpc -l lacks TCP 8081:\n%s", table)
	}
	if got, err := fetchTCP(lab.WAN, "203.0.113.1:8081"); err != nil || got != "tcp through upnpc" {
		t.Fatalf("the WAN host through 203.0.113.1:8081 got %q, %v", got, err)
	}
}

// checkClientMaps: portlease map, over NAT-PMP, maps TCP 8082 of LAN host
// 0 and the WAN host reaches it.
func checkClientMaps(t *testing.T, lab *netlab.Lab) {
	t.Helper()
	lan := lab.LAN[0]
	serveTCP(t, lan, 8082, "tcp through portlease map")
	out, code := portlease(t, lan, "map", "tcp", "8082", "--protocol", "natpmp", "--lifetime", "600")
	if code != 0 || !strings.Contains(out, "203.0.113.1:8082") {
		t.Fatalf("portlease map tcp 8082: exit %d:\n%s", code, out)
	}
	if got, err := fetchTCP(lab.WAN, "203.0.113.1:8082"); err != nil || got != "tcp through portlease map" {
		t.Fatalf("the WAN host through 203.0.113.1:8082 got %q, %v", got, err)
	}
}

// checkHairpin: LAN host 1 reaches LAN host 0's TCP 8080, mapped by natpmpc, through the
// external address.
func checkHairpin(t *testing.T, lab *netlab.Lab) {
	t.Helper()
	addr := lab.GatewayWANAddr4.String() + ":8080"
	if got, err := fetchTCP(lab.LAN[1], addr); err != nil || got != "tcp through natpmpc" {
		t.Fatalf("LAN host 1 through %s got %q, %v; want LAN host 0's greeting", addr, got, err)
	}
}

// checkOutboundPortKept: a datagram from the mapped UDP endpoint
// 198.51.100.10:5001, mapped to external port 41000, reaches the WAN host
// from 203.0.113.1:41000 (endpoint-independent mapping).
func checkOutboundPortKept(t *testing.T, lab *netlab.Lab) {
	t.Helper()
	lan := lab.LAN[0]
	eport := natpmpcMap(t, lab, lan, 41000, 5001, "udp", 3600)
	if eport == 5001 {
		t.Fatalf("got external port %d equal to the internal one; the check needs them to differ", eport)
	}
	if from, want := outboundSource(t, lab, lan, 5001), netip.AddrPortFrom(lab.GatewayWANAddr4, uint16(eport)); from != want {
		t.Fatalf("the datagram from the mapped endpoint reached the WAN host from %v; want %v", from, want)
	}
}

// checkDeletionCloses: natpmpc deletes TCP 8080 and UDP 5000, upnpc deletes
// TCP 8081: new connections from the WAN host fail at once, and the WAN
// host's running UDP flow, which still reaches LAN host 0's server udp
// just before, stops reaching it within a second. The flow's conntrack
// entry holds its translation whatever the rules say, so the flow stops
// only if the backend deletes the entry with the mapping.
func checkDeletionCloses(t *testing.T, lab *netlab.Lab, udp *netlab.UDPSink) {
	t.Helper()
	lan := lab.LAN[0]
	running := udp.Count()
	eventually(t, "the WAN host's UDP flow still reaches LAN host 0 before the deletion", func() bool { return udp.Count() > running })
	natpmpcDelete(t, lab, lan, 5000, 5000, "udp")
	deleted := time.Now()
	natpmpcDelete(t, lab, lan, 8080, 8080, "tcp")
	labpeers.UPnPC(t, lan, "-u", descURL, "-d", "8081", "TCP")
	for _, port := range []int{8080, 8081} {
		if got, err := fetchTCP(lab.WAN, fmt.Sprintf("203.0.113.1:%d", port)); err == nil {
			t.Errorf("after deletion the WAN host still reached TCP %d: %q", port, got)
		}
	}
	if table := labpeers.UPnPC(t, lan, "-u", descURL, "-l"); listed(table, "TCP", 8081, "198.51.100.10:8081") {
		t.Errorf("after upnpc -d, upnpc -l still lists TCP 8081:\n%s", table)
	}
	time.Sleep(time.Until(deleted.Add(1500 * time.Millisecond)))
	if last := udp.Last(); last.After(deleted.Add(time.Second)) {
		t.Errorf("LAN host 0 still received the WAN host's UDP flow %v after natpmpc deleted its mapping", last.Sub(deleted))
	}
}

// checkNothingLeft checks the dumps taken after portleased's exit for
// anything of portleased's: a PORTLEASE chain or a jump to one in any
// iptables variant, its nftables table.
func checkNothingLeft(t *testing.T, d firewallDump) {
	t.Helper()
	for cmd, dump := range d {
		if strings.Contains(dump, "PORTLEASE") || strings.Contains(dump, "portleased") {
			t.Errorf("after SIGTERM %s still shows portleased's:\n%s", cmd, dump)
		}
	}
}
