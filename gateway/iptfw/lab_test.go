package iptfw

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/netlab"
)

// labFirewall builds a lab and returns it with its gateway's namespace fd.
func labFirewall(t *testing.T, v Variant) (*netlab.Lab, int) {
	t.Helper()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	for _, prog := range []string{"iptables-" + string(v) + "-restore", "ip6tables-" + string(v) + "-save"} {
		if _, err := exec.LookPath(prog); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("no %s: %v", prog, err)
			}
			t.Skipf("no %s", prog)
		}
	}
	ns, err := os.Open("/run/netns/" + lab.Gateway.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return lab, int(ns.Fd())
}

// gw runs an iptables program of variant v in the gateway namespace.
func gw(t *testing.T, lab *netlab.Lab, v Variant, prog string, args ...string) string {
	t.Helper()
	out, err := lab.Gateway.Run(t.Context(), prog+"-"+string(v), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// counters matches the packet and byte counters of a chain line.
var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// operatorRules returns the gateway's rules but the backend's, counters
// and comment lines aside.
func operatorRules(t *testing.T, lab *netlab.Lab, v Variant) string {
	t.Helper()
	var b strings.Builder
	for _, prog := range []string{"iptables", "ip6tables"} {
		out, err := lab.Gateway.Command(t.Context(), prog+"-"+string(v)+"-save").Output()
		if err != nil {
			t.Fatalf("%s-save: %v", prog, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "#") || strings.Contains(line, chainPrefix) {
				continue
			}
			b.WriteString(counters.ReplaceAllString(line, "[]") + "\n")
		}
	}
	return b.String()
}

// ours returns the lines of iptables-save and ip6tables-save that name
// the backend's chains.
func ours(t *testing.T, lab *netlab.Lab, v Variant) []string {
	t.Helper()
	return append(oursOf(t, lab, v, "iptables"), oursOf(t, lab, v, "ip6tables")...)
}

// oursOf returns the lines of prog-save (iptables or ip6tables) that name
// the backend's chains.
func oursOf(t *testing.T, lab *netlab.Lab, v Variant, prog string) []string {
	t.Helper()
	out, err := lab.Gateway.Command(t.Context(), prog+"-"+string(v)+"-save").Output()
	if err != nil {
		t.Fatalf("%s-save: %v", prog, err)
	}
	var lines []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, chainPrefix) {
			lines = append(lines, line)
		}
	}
	return lines
}

// startLab starts the backend of variant v in lab's gateway, its links
// the lab's, its external address the gateway's WAN address, polling
// every poll, and closes it when the test ends.
func startLab(t *testing.T, lab *netlab.Lab, netns int, v Variant, poll time.Duration) *Firewall {
	t.Helper()
	f, err := New(Config{Variant: v, ExternalInterface: lab.GatewayWANLink, InternalInterfaces: []string{lab.GatewayLANLink},
		NetNS: netns, PollInterval: poll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if err := f.SetExternalAddress(t.Context(), lab.GatewayWANAddr4); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLabLegacy(t *testing.T) { testLab(t, Legacy) }
func TestLabNFT(t *testing.T)    { testLab(t, NFT) }

// testLab runs the backend of variant v in a lab: traffic from the WAN
// host through a mapping, outbound port kept, hairpin, Reconcile after a
// flush, Watch reporting it, deletion, Close, and the operator's rules
// untouched throughout.
func testLab(t *testing.T, v Variant) {
	lab, netns := labFirewall(t, v)
	// The operator's own rules, before the backend starts.
	gw(t, lab, v, "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "7777", "-j", "DNAT", "--to-destination", "198.51.100.99:7")
	gw(t, lab, v, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", lab.GatewayWANLink, "-j", "MASQUERADE")
	gw(t, lab, v, "iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "22", "-j", "ACCEPT")
	gw(t, lab, v, "ip6tables", "-A", "FORWARD", "-p", "udp", "--dport", "9", "-j", "DROP")
	before := operatorRules(t, lab, v)

	f := startLab(t, lab, netns, v, 100*time.Millisecond)
	ctx := t.Context()

	lan, lan1 := lab.LAN[0], lab.LAN[1]
	ln, err := lan.Listen("tcp4", lan.Addr4.String()+":8080")
	if err != nil {
		t.Fatal(err)
	}
	netlab.ServePeerAddr(t, ln)
	tcpMap := gateway.Mapping{Protocol: gateway.TCP, ExternalPort: 40080, Internal: netip.AddrPortFrom(lan.Addr4, 8080), Lifetime: time.Hour}
	// Two mappings on either side of a bucket boundary (40,959 is the
	// last port of bucket 39, 40,960 the first of 40).
	edges := []gateway.Mapping{
		{Protocol: gateway.TCP, ExternalPort: 40959, Internal: netip.AddrPortFrom(lan.Addr4, 8080), Lifetime: time.Hour},
		{Protocol: gateway.TCP, ExternalPort: 40960, Internal: netip.AddrPortFrom(lan.Addr4, 8080), Lifetime: time.Hour},
	}
	udpMap := gateway.Mapping{Protocol: gateway.UDP, ExternalPort: 40053, Internal: netip.AddrPortFrom(lan.Addr4, 5353), Lifetime: time.Hour}
	pin := gateway.Mapping{Protocol: gateway.TCP, ExternalPort: 443, Internal: netip.AddrPortFrom(lan.Addr6, 443), Pinhole: true,
		Filters: []gateway.Filter{{Remote: netip.PrefixFrom(lab.WAN.Addr6, 128)}}}
	want := []gateway.Mapping{tcpMap, udpMap, pin, edges[0], edges[1]}
	if err := f.Apply(ctx, want, nil); err != nil {
		t.Fatal(err)
	}
	ext := lab.GatewayWANAddr4.String()
	for _, m := range edges {
		if _, err := netlab.AskPeerAddr(lab.WAN, fmt.Sprintf("%s:%d", ext, m.ExternalPort)); err != nil {
			t.Errorf("WAN host through the mapping of port %d: %v", m.ExternalPort, err)
		}
	}
	if _, err := netlab.AskPeerAddr(lab.WAN, ext+":40961"); err == nil {
		t.Error("port 40961, mapped by nobody, reaches the LAN host")
	}

	seen, err := netlab.AskPeerAddr(lab.WAN, ext+":40080")
	if err != nil {
		t.Fatalf("WAN host through the mapping: %v", err)
	}
	if host, _, _ := net.SplitHostPort(seen); host != lab.WAN.Addr4.String() {
		t.Errorf("LAN listener saw %s, want the WAN host %s", seen, lab.WAN.Addr4)
	}
	if got, want := netlab.OutboundSource(t, lan, udpMap.Internal.String(), lab.WAN), ext+":40053"; got != want {
		t.Errorf("outbound from the mapped endpoint leaves from %s, want %s", got, want)
	}
	seen, err = netlab.AskPeerAddr(lan1, ext+":40080")
	if err != nil {
		t.Fatalf("hairpin from %s: %v", lan1.Addr4, err)
	}
	if host, _, _ := net.SplitHostPort(seen); host != lab.GatewayLANAddr4.String() {
		t.Errorf("hairpinned connection seen from %s, want the gateway %s", seen, lab.GatewayLANAddr4)
	}

	// A renewal runs no program: the rules stay byte for byte.
	held := ours(t, lab, v)
	if err := f.Apply(ctx, want, want); err != nil {
		t.Fatal(err)
	}
	if got := ours(t, lab, v); strings.Join(got, "\n") != strings.Join(held, "\n") {
		t.Errorf("renewal changed the rules:\n%s\nwas\n%s", strings.Join(got, "\n"), strings.Join(held, "\n"))
	}

	listed, err := f.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(want) {
		t.Errorf("List: %+v, want the %d mappings", listed, len(want))
	}

	// Watch reports a flush; Reconcile adopts what is right and repairs.
	var changes atomic.Int32
	opened := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() { watchDone <- f.Watch(wctx, func() { changes.Add(1) }, func() { close(opened) }) }()
	t.Cleanup(func() { stop(); <-watchDone })
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not open")
	}
	r, err := f.Reconcile(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if r != (gateway.Reconciled{Adopted: len(want)}) {
		t.Errorf("Reconcile of an intact kernel: %+v, want %d adopted", r, len(want))
	}
	time.Sleep(300 * time.Millisecond)
	if n := changes.Load(); n != 0 {
		t.Errorf("Watch reported %d changes before anyone changed anything", n)
	}
	// The jumps to the DNAT fanouts and the bucket of port 40080 (and
	// 40959) flushed.
	gw(t, lab, v, "iptables", "-t", "nat", "-F", chainDNAT)
	gw(t, lab, v, "iptables", "-t", "nat", "-F", chainDNAT+"-TCP-39")
	deadline := time.Now().Add(10 * time.Second)
	for changes.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not report the flushed chain within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := netlab.AskPeerAddr(lab.WAN, ext+":40080"); err == nil {
		t.Fatal("the mapping still forwards after the flush")
	}
	if r, err = f.Reconcile(ctx, want); err != nil {
		t.Fatal(err)
	}
	if r != (gateway.Reconciled{Adopted: 3, Added: 2}) {
		t.Errorf("Reconcile after the flush: %+v, want the pinhole, the UDP mapping and port 40960 adopted, 40080 and 40959 added", r)
	}
	for _, port := range []string{"40080", "40959", "40960"} {
		if _, err := netlab.AskPeerAddr(lab.WAN, ext+":"+port); err != nil {
			t.Fatalf("the mapping of port %s does not forward after Reconcile: %v", port, err)
		}
	}
	// Reconciling again (what repaired the jumps ran once) leaves each
	// rule once.
	if r, err = f.Reconcile(ctx, want); err != nil || r != (gateway.Reconciled{Adopted: len(want)}) {
		t.Errorf("Reconcile after the repair: %+v, %v; want %d adopted", r, err, len(want))
	}
	for _, prog := range []string{"iptables", "ip6tables"} {
		seenLine := make(map[string]bool)
		for _, line := range oursOf(t, lab, v, prog) {
			if strings.HasPrefix(line, "-A ") && seenLine[line] {
				t.Errorf("%s: rule twice: %s", prog, line)
			}
			seenLine[line] = true
		}
	}

	// Deletion closes the port.
	if err := f.Apply(ctx, nil, []gateway.Mapping{tcpMap}); err != nil {
		t.Fatal(err)
	}
	if _, err := netlab.AskPeerAddr(lab.WAN, ext+":40080"); err == nil {
		t.Error("the port is still open after the mapping's deletion")
	}

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if left := ours(t, lab, v); len(left) > 0 {
		t.Errorf("Close left:\n%s", strings.Join(left, "\n"))
	}
	if after := operatorRules(t, lab, v); after != before {
		t.Errorf("the operator's rules changed:\n%s\nwere\n%s", after, before)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
