package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
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
// LAN address answers NAT-PMP, the old one no longer does); so does an
// "interface" change to a second WAN link with an address of its own
// (clients learn the new address, a mapping made before the reload
// forwards through the new link and no longer through the old one) and a
// "listen on" for a LAN link added since the start (a host on it gets
// answers). A change of "state file" is refused, naming its line, with the
// running configuration kept.
func TestReloadListen(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	ctx := context.Background()
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

	// A mapping made before the move, to a server on the LAN host.
	serveTCP(t, lan, 8080, "hello from the LAN")
	out = labpeers.NATPMPC(t, lan, "-g", "198.51.100.2", "-a", "6301", "8080", "tcp", "3600")
	m := mappedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("natpmpc -a 6301 8080 printed no mapping:\n%s", out)
	}
	eport := m[1]
	if got, err := fetchTCP(lab.WAN, "203.0.113.1:"+eport); err != nil || got != "hello from the LAN" {
		t.Fatalf("before the move the WAN host read %q, %v through 203.0.113.1:%s", got, err, eport)
	}

	// A second WAN link, wan1 (203.0.113.129/25), whose host 203.0.113.130
	// reaches the gateway through it only; and a LAN link added since the
	// start, lan9 (198.51.100.129/25), with a host 198.51.100.130.
	wanB, err := lab.AddLinkedHost(ctx, "wanb", "wan1",
		netip.MustParsePrefix("203.0.113.129/25"), netip.MustParsePrefix("203.0.113.130/25"))
	if err != nil {
		t.Fatal(err)
	}
	lan9, err := lab.AddLinkedHost(ctx, "lan9", "lan9",
		netip.MustParsePrefix("198.51.100.129/25"), netip.MustParsePrefix("198.51.100.130/25"))
	if err != nil {
		t.Fatal(err)
	}
	reloadWith(t, d, "configuration reloaded", "interface wan1", "listen on 198.51.100.2", "listen on lan9")
	if !strings.Contains(d.Log(), `changed="[interface listen on]"`) {
		t.Errorf("the reload log does not name interface and listen on:\n%s", d.Log())
	}
	eventually(t, "natpmpc reports the new external address", func() bool {
		out := labpeers.NATPMPC(t, lan, "-g", "198.51.100.2")
		return strings.Contains(out, "Public IP address : 203.0.113.129")
	})
	addrB := "203.0.113.129:" + eport
	if got, err := fetchTCP(wanB, addrB); err != nil || got != "hello from the LAN" {
		t.Errorf("after the move the host on wan1 read %q, %v through %s", got, err, addrB)
	}
	if got, err := fetchTCP(lab.WAN, "203.0.113.1:"+eport); err == nil {
		t.Errorf("after the move the host on wan0 still reaches the mapping through 203.0.113.1:%s (read %q)", eport, got)
	}
	out = labpeers.NATPMPC(t, lan9, "-g", "198.51.100.129", "-a", "6302", "6302", "udp", "3600")
	if !mappedRE.MatchString(out) {
		t.Fatalf("natpmpc from the host on lan9 printed no mapping:\n%s", out)
	}

	// The state file changes only at a restart: refused by name, nothing
	// changes.
	// (Written by hand: the helper keeps the state file it was given.)
	conf := "interface wan1\nlisten on 198.51.100.2\nlisten on lan9\nstate file " + filepath.Join(t.TempDir(), "leases") + "\n"
	if err := os.WriteFile(d.ConfigPath(), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, d.ConfigPath()+":4: state file")
	if !answers(t, lan9, "198.51.100.129") {
		t.Fatal("after the refused reload 198.51.100.129 no longer answers NAT-PMP")
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

// TestNewLANLinkHairpins: with "listen on *", a LAN link that appears after
// the start is served, the default rules allow its subnet, and its hosts
// reach a mapping through the external address (hairpinning), without a
// reload.
func TestNewLANLinkHairpins(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	// The LAN link's subnet is 198.51.100.0/25, so that the new link's
	// 198.51.100.128/25 is another one.
	gatewayIP(t, lab, "addr", "del", lab.GatewayLANAddr4.String()+"/24", "dev", lab.GatewayLANLink)
	gatewayIP(t, lab, "addr", "add", lab.GatewayLANAddr4.String()+"/25", "dev", lab.GatewayLANLink)
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true,
		Directives: []string{"interface " + lab.GatewayWANLink, "listen on *"}})
	serveTCP(t, lab.LAN[0], 8081, "hairpin works")
	eport := natpmpcMap(t, lab, lab.LAN[0], 8081, 8081, "tcp", 3600)
	lan9, err := lab.AddLinkedHost(context.Background(), "lan9", "lan9",
		netip.MustParsePrefix("198.51.100.129/25"), netip.MustParsePrefix("198.51.100.130/25"))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "LAN addresses changed")
	out := labpeers.NATPMPC(t, lan9, "-g", "198.51.100.129", "-a", "6302", "6302", "udp", "3600")
	if !mappedRE.MatchString(out) {
		t.Fatalf("natpmpc from the host on the new link printed no mapping:\n%s", out)
	}
	ext := fmt.Sprintf("%s:%d", lab.GatewayWANAddr4, eport)
	eventually(t, "the host on the new link reaches the mapping through "+ext, func() bool {
		got, err := fetchTCP(lan9, ext)
		return err == nil && got == "hairpin works"
	})
}
