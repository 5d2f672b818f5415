package main

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// labPort is one port the example maps in the lab.
type labPort struct {
	proto string // "tcp" or "udp", as nft prints it
	num   uint16
}

// labPorts are the ports the example maps with "-ec 4712".
var labPorts = []labPort{{"tcp", 4662}, {"udp", 4665}, {"udp", 4672}, {"tcp", 4712}}

// TestLab runs the example on the lab's LAN host against portleased on the
// lab's gateway: it maps the four ports on IPv4 and opens them as pinholes
// to the host's global IPv6 address (over PCP with -protocol auto, over
// UPnP WANIPv6FirewallControl:1 with -protocol upnp), a WAN host reaches a
// server on the LAN host through both while it runs and through neither
// once it stopped (SIGINT), and the kernel holds the mappings and pinholes
// exactly as long.
func TestLab(t *testing.T) {
	for _, tc := range []struct{ protocol, method string }{{"auto", "pcp"}, {"upnp", "upnp"}} {
		t.Run(tc.protocol, func(t *testing.T) { testLab(t, tc.protocol, tc.method) })
	}
}

func testLab(t *testing.T, protocol, method string) {
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{})
	bin := labpeers.Program(t, "github.com/portlease/portlease/examples/ed2k")
	lan := lab.LAN[0]
	greet(t, lan, 4662, "ed2k")
	via4 := netip.AddrPortFrom(lab.Gateway.Addr4, 4662)
	via6 := netip.AddrPortFrom(lan.Addr6, 4662)
	for _, a := range []netip.AddrPort{via4, via6} {
		if line, err := fetch(lab.WAN, a); err == nil {
			t.Fatalf("before the example runs, the WAN host reached %s (%q): the gateway lets it through by itself", a, line)
		}
	}
	var out, errs labpeers.Output
	ed2k := lan.Command(context.Background(), bin, "-ec", "4712", "-check-interval", "1s", "-protocol", protocol)
	ed2k.Stdout, ed2k.Stderr = &out, &errs
	if err := ed2k.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- ed2k.Wait() }()
	t.Cleanup(func() {
		ed2k.Process.Kill()
		if t.Failed() {
			t.Logf("ed2k output:\n%s\nlog:\n%s", out.String(), errs.String())
		}
	})
	var want []string
	for _, p := range labPorts {
		proto := strings.ToUpper(p.proto)
		want = append(want,
			fmt.Sprintf("mapped %s %d -> %s:%d via %s", proto, p.num, lab.Gateway.Addr4, p.num, method),
			fmt.Sprintf("mapped %s %d pinhole %s via %s", proto, p.num, netip.AddrPortFrom(lan.Addr6, p.num), method))
	}
	want = append(want, "external address "+lab.Gateway.Addr4.String(), "keeping 8 ports (4 of them IPv6 pinholes)")
	for _, w := range want {
		eventually(t, w, func() bool { return strings.Contains(out.String(), w) })
	}
	inbound, pinholes := kernel(t, lab)
	for _, p := range labPorts {
		if !hasMapping(inbound, p, lan.Addr4) {
			t.Errorf("the gateway's inbound4 map lacks %s %d -> %s:\n%s", p.proto, p.num, lan.Addr4, inbound)
		}
		if !hasPinhole(pinholes, p, lan.Addr6) {
			t.Errorf("the gateway's pinhole6 set lacks %s . %s . %d:\n%s", lan.Addr6, p.proto, p.num, pinholes)
		}
	}
	for _, a := range []netip.AddrPort{via4, via6} {
		if line, err := fetch(lab.WAN, a); err != nil || line != "ed2k" {
			t.Errorf("the WAN host through %s: %q, %v; want the LAN server's greeting", a, line, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	ed2k.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("ed2k exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ed2k did not stop")
	}
	for _, p := range labPorts {
		proto := strings.ToUpper(p.proto)
		for _, w := range []string{
			fmt.Sprintf("deleted %s %d -> %s:%d", proto, p.num, lab.Gateway.Addr4, p.num),
			fmt.Sprintf("deleted %s %d pinhole %s", proto, p.num, netip.AddrPortFrom(lan.Addr6, p.num)),
		} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("output lacks %q", w)
			}
		}
	}
	if !strings.Contains(out.String(), "stopped") {
		t.Error("output lacks \"stopped\"")
	}
	inbound, pinholes = kernel(t, lab)
	for _, p := range labPorts {
		if hasMapping(inbound, p, lan.Addr4) || hasPinhole(pinholes, p, lan.Addr6) {
			t.Errorf("%s %d is still in the kernel after the stop:\ninbound4:\n%s\npinhole6:\n%s", p.proto, p.num, inbound, pinholes)
		}
	}
	for _, a := range []netip.AddrPort{via4, via6} {
		if line, err := fetch(lab.WAN, a); err == nil {
			t.Errorf("after the stop, the WAN host still reached %s (%q)", a, line)
		}
	}
}

// kernel returns portleased's inbound4 map and pinhole6 set, as nft lists
// them; the test fails when nft does.
func kernel(t *testing.T, lab *netlab.Lab) (inbound, pinholes string) {
	t.Helper()
	return labpeers.NFT(t, lab.Gateway, "list", "map", "inet", "portleased", "inbound4"),
		labpeers.NFT(t, lab.Gateway, "list", "set", "inet", "portleased", "pinhole6")
}

// hasMapping reports whether inbound (nft's listing of inbound4) maps p's
// external port to p's port on internal.
func hasMapping(inbound string, p labPort, internal netip.Addr) bool {
	re := regexp.MustCompile(fmt.Sprintf(`%s \. %d [^,}]*: %s \. %d\b`, p.proto, p.num, regexp.QuoteMeta(internal.String()), p.num))
	return re.MatchString(inbound)
}

// hasPinhole reports whether pinholes (nft's listing of pinhole6) holds the
// element for p on internal.
func hasPinhole(pinholes string, p labPort, internal netip.Addr) bool {
	re := regexp.MustCompile(fmt.Sprintf(`%s \. %s \. %d\b`, regexp.QuoteMeta(internal.String()), p.proto, p.num))
	return re.MatchString(pinholes)
}

// greet serves greeting to every TCP connection to port on host, over IPv4
// and IPv6.
func greet(t *testing.T, host *netlab.Host, port uint16, greeting string) {
	t.Helper()
	netlab.ServeGreeting(t, host, "tcp", port, greeting)
}

// fetch connects from host to addr and returns the first line it reads.
func fetch(host *netlab.Host, addr netip.AddrPort) (string, error) {
	return netlab.FetchLine(host, "tcp", addr.String())
}
