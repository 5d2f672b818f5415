package e2e

import (
	"context"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/natpmp"
)

// reloadWith writes the configuration lines over the daemon's file, sends
// SIGHUP and waits for one more log line containing want ("configuration
// reloaded" or "configuration refused").
func reloadWith(t *testing.T, d *labpeers.Portleased, want string, lines ...string) {
	t.Helper()
	n := strings.Count(d.Log(), want)
	if err := d.SetConfig(lines...); err != nil {
		t.Fatal(err)
	}
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "portleased logs "+want, func() bool { return strings.Count(d.Log(), want) > n })
}

// waitLog waits for s in the daemon's log.
func waitLog(t *testing.T, d *labpeers.Portleased, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.WaitLog(ctx, s); err != nil {
		t.Fatalf("%v; log:\n%s", err, d.Log())
	}
}

// gatewayIP runs ip in the lab's gateway namespace.
func gatewayIP(t *testing.T, lab *netlab.Lab, args ...string) {
	t.Helper()
	if _, err := lab.Gateway.Run(context.Background(), "ip", args...); err != nil {
		t.Fatal(err)
	}
}

// answers reports whether the gateway answers a NAT-PMP external address
// request sent to gw from host within two seconds.
func answers(t *testing.T, host *netlab.Host, gw string) bool {
	t.Helper()
	req, err := natpmp.ExternalAddressRequest{}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return exchange(t, host, netip.MustParseAddr(gw), req, 2*time.Second) != nil
}

// TestReloadSecureMode: SIGHUP turning upnp secure mode on makes an
// AddPortMapping for another host's address fail with 606, where it
// succeeded before the reload; the service is not restarted for it.
func TestReloadSecureMode(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, ExtraLines: []string{"upnp secure mode off"}})
	lan := lab.LAN[0]
	other := lab.LAN[1].Addr4.String()
	out := labpeers.UPnPC(t, lan, "-u", descURL, "-a", other, "8080", "8080", "TCP", "3600")
	if !strings.Contains(out, "is redirected to internal "+other+":8080") {
		t.Fatalf("with secure mode off, upnpc -a for %s printed:\n%s", other, out)
	}

	reloadWith(t, d, "configuration reloaded", "interface "+lab.GatewayWANLink, "listen on "+lab.GatewayLANLink, "upnp secure mode on")
	if !strings.Contains(d.Log(), `changed="[upnp secure mode]"`) {
		t.Errorf("the reload log does not name upnp secure mode:\n%s", d.Log())
	}
	out, err := labpeers.RunUPnPC(context.Background(), lan, "-u", descURL, "-a", other, "8081", "8081", "TCP", "3600")
	if got := out + errText(err); !strings.Contains(got, "606") {
		t.Fatalf("with secure mode on, upnpc -a for %s printed:\n%s\nwant 606", other, got)
	}
	if strings.Count(d.Log(), "serving UPnP IGD") != 1 {
		t.Errorf("secure mode restarted the UPnP service:\n%s", d.Log())
	}
	// The own address still maps.
	out = labpeers.UPnPC(t, lan, "-u", descURL, "-a", lan.Addr4.String(), "8082", "8082", "TCP", "3600")
	if !strings.Contains(out, "is redirected to internal") {
		t.Fatalf("with secure mode on, upnpc -a for its own address printed:\n%s", out)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestReloadListen: a "listen on" change takes effect at SIGHUP (the new
// LAN address answers NAT-PMP, the old one no longer does), and a reload
// that changes the external interface or adds a LAN link the daemon did
// not serve at start is refused, naming each such line, with the running
// configuration kept.
func TestReloadListen(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	lan := lab.LAN[0]
	gatewayIP(t, lab, "addr", "add", "198.51.100.2/24", "dev", lab.GatewayLANLink)
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, Directives: []string{"interface wan0", "listen on 198.51.100.1"}})
	if !answers(t, lan, "198.51.100.1") {
		t.Fatal("198.51.100.1 does not answer NAT-PMP before the reload")
	}

	reloadWith(t, d, "configuration reloaded", "interface wan0", "listen on 198.51.100.2")
	if !strings.Contains(d.Log(), `changed="[listen on]"`) {
		t.Errorf("the reload log does not name listen on:\n%s", d.Log())
	}
	out := labpeers.NATPMPC(t, lan, "-g", "198.51.100.2", "-a", "6300", "6300", "tcp", "3600")
	if !mappedRE.MatchString(out) {
		t.Fatalf("natpmpc -g 198.51.100.2 after the reload printed no mapping:\n%s", out)
	}
	if answers(t, lan, "198.51.100.1") {
		t.Fatal("198.51.100.1 still answers NAT-PMP after the reload removed it")
	}

	// A link with an address of its own (a veth pair, both ends in the
	// gateway's namespace): a LAN link not served at start. Both refusals
	// are named; nothing changes.
	gatewayIP(t, lab, "link", "add", "lan9", "type", "veth", "peer", "name", "lan9p")
	gatewayIP(t, lab, "addr", "add", "198.51.100.200/32", "dev", "lan9")
	gatewayIP(t, lab, "link", "set", "lan9", "up")
	reloadWith(t, d, "configuration refused", "interface wan9", "listen on 198.51.100.2", "listen on lan9")
	for _, want := range []string{d.ConfigPath() + ":1: interface wan9", d.ConfigPath() + ":3: listen on lan9"} {
		waitLog(t, d, want)
	}
	if !answers(t, lan, "198.51.100.2") {
		t.Fatal("after the refused reload 198.51.100.2 no longer answers NAT-PMP")
	}
}

// TestLANLinkRecreated: the LAN link deleted and created again (same name,
// same address, a new ifindex) is served again: natpmpc gets an answer, and
// the daemon kept running meanwhile.
func TestLANLinkRecreated(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	natpmpcMap(t, lab, lan, 6400, 6400, "tcp", 3600)

	link := lab.GatewayLANLink
	gatewayIP(t, lab, "link", "del", link)
	waitLog(t, d, "LAN addresses changed")
	gatewayIP(t, lab, "link", "add", link, "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
	gatewayIP(t, lab, "addr", "add", lab.GatewayLANAddr4.String()+"/24", "dev", link)
	gatewayIP(t, lab, "link", "set", "lanp0", "master", link)
	gatewayIP(t, lab, "link", "set", link, "up")

	eventually(t, "the re-created LAN link answers NAT-PMP", func() bool { return answers(t, lan, lab.GatewayLANAddr4.String()) })
	natpmpcMap(t, lab, lan, 6401, 6401, "tcp", 3600)
	// The cleanup's Stop fails the test if portleased exited meanwhile.
}
