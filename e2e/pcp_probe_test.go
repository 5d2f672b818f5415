package e2e

import (
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// probeSections splits portlease probe's output into one text per gateway,
// keyed by the gateway's address.
func probeSections(out string) map[string]string {
	sections := map[string]string{}
	for _, s := range strings.Split(out, "gateway ")[1:] {
		addr, _, _ := strings.Cut(s, " ")
		sections[addr] = s
	}
	return sections
}

// TestPCPProbe: portlease probe on a LAN host finds portleased twice: as the
// IPv4 gateway, which speaks PCP beside NAT-PMP and UPnP, and as the IPv6
// default router, which speaks PCP, so that pinholes to the host's global
// address can be opened.
func TestPCPProbe(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	out, code := portlease(t, lan, "probe")
	if code != 0 {
		t.Fatalf("probe: exit %d:\n%s", code, out)
	}
	sections := probeSections(out)
	v4 := sections[lab.GatewayLANAddr4.String()]
	for _, want := range []string{"PCP: yes", "NAT-PMP: yes, external address 203.0.113.1", "UPnP IGD"} {
		if !strings.Contains(v4, want) {
			t.Errorf("probe's IPv4 gateway lacks %q:\n%s", want, out)
		}
	}
	var v6 string
	for addr, s := range sections {
		if strings.Contains(addr, ":") {
			v6 = s
		}
	}
	for _, want := range []string{"PCP: yes", "IPv6: pinholes to " + lan.Addr6.String() + " can be opened over PCP"} {
		if !strings.Contains(v6, want) {
			t.Errorf("probe's IPv6 router lacks %q:\n%s", want, out)
		}
	}
}
