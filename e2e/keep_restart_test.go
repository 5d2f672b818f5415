package e2e

import (
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// The gateway restarts 1 s after portlease keep made its mappings, and
// loses them; keep runs with an interval of an hour, so only the gateway's
// own news (a NAT-PMP announcement, an SSDP NOTIFY) can have them made
// again. They must be back in the gateway within 2 s of its serving again,
// and the WAN host must reach a LAN server through one (issue 9, "Client:
// the gateway restarts 1 s after a mapping was made").

// restartFile is the mapping file of these tests: three ports.
const restartFile = "address;port;protocol;duration;comment\n" +
	";12345;UDP;600;voice\n" +
	";12346;TCP;600;web\n" +
	";12347;TCP;600;game\n"

// restartPorts are restartFile's mappings, to 198.51.100.10 on the same ports.
var restartPorts = []struct {
	proto string
	port  int
}{{"UDP", 12345}, {"TCP", 12346}, {"TCP", 12347}}

// repairDeadline is the "within 2 s".
const repairDeadline = 2 * time.Second

// pcpRepairDeadline is repairDeadline plus the random wait of up to 5 s
// that RFC 6887 §14.1.1 has a PCP client take after an unsolicited
// ANNOUNCE before it renews its mappings.
const pcpRepairDeadline = repairDeadline + 5*time.Second

// startKeep runs portlease keep on restartFile over proto with an hour's
// interval.
func startKeep(t *testing.T, lab *netlab.Lab, proto string) *background {
	t.Helper()
	file := writeFile(t, "ports.csv", restartFile)
	return startBackground(t, lab.LAN[0], filepath.Join(binDir, "portlease"), "keep", "--foreground", "--log-level", "debug",
		"-f", file, "--protocol", proto, "--pid-file", filepath.Join(t.TempDir(), "keep.pid"), "--interval", "3600")
}

// waitAll polls has (which reads the gateway and fails on a tool's error)
// until every mapping of restartPorts is in the gateway, for at most
// within; it returns when they were all seen.
func waitAll(t *testing.T, what string, within time.Duration, has func() (string, func(proto string, port int) bool)) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out, in := has()
		all := true
		for _, p := range restartPorts {
			all = all && in(p.proto, p.port)
		}
		if all {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not all of %v in the gateway after %v:\n%s", what, restartPorts, within, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// portleasedInbound reads portleased's inbound map; a failure of nft fails
// the test.
func portleasedInbound(t *testing.T, lab *netlab.Lab) (string, func(string, int) bool) {
	t.Helper()
	out := inboundElements(t, lab)
	return out, func(proto string, port int) bool {
		return inKernel(out, proto, port, "198.51.100.10:"+strconv.Itoa(port))
	}
}

// miniupnpdTable reads miniupnpd's table with upnpc -l, which fails the
// test when it fails.
func miniupnpdTable(t *testing.T, lab *netlab.Lab, m *labpeers.MiniUPnPd) (string, func(string, int) bool) {
	t.Helper()
	out := upnpList(t, lab.LAN[0], m)
	return out, func(proto string, port int) bool {
		return listed(out, proto, port, "198.51.100.10:"+strconv.Itoa(port))
	}
}

// reachable checks that the WAN host reaches a LAN server through the
// gateway's external address and port 12346.
func reachable(t *testing.T, lab *netlab.Lab, greeting string) {
	t.Helper()
	if got, err := fetchTCP(lab.WAN, "203.0.113.1:12346"); err != nil || got != greeting {
		t.Fatalf("the WAN host through 203.0.113.1:12346 got %q, %v; want %q", got, err, greeting)
	}
}

// expectRepaired checks, once the gateway serves again after its restart,
// that keep has the mappings back in it within within, that the WAN host
// reaches the LAN server through one, and that keep exits cleanly.
func expectRepaired(t *testing.T, lab *netlab.Lab, keep *background, gateway string, within time.Duration, has func() (string, func(string, int) bool)) {
	t.Helper()
	serving := time.Now()
	back := waitAll(t, "keep maps the file again after "+gateway+" restarted", within, has)
	t.Logf("mappings back %v after %s served again", back.Sub(serving).Round(time.Millisecond), gateway)
	reachable(t, lab, "reached after the restart")
	if code := keep.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("keep exit %d after SIGTERM:\n%s", code, keep.Output())
	}
}

// TestKeepRestartPortleased: portleased with `state file none` stops and
// starts again 1 s after keep mapped three ports over NAT-PMP, and over PCP;
// its announcements (NAT-PMP's, PCP's ANNOUNCE with the epoch started again,
// RFC 6887 §14.1) have keep map them again within 2 s, over PCP within 2 s
// and the random wait of up to 5 s that RFC 6887 §14.1.1 asks of a client
// after an unsolicited ANNOUNCE.
func TestKeepRestartPortleased(t *testing.T) {
	for _, proto := range []string{"natpmp", "pcp"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{})
			// The helper's configuration says "state file none": the
			// mappings are really lost.
			d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
			serveTCP(t, lab.LAN[0], 12346, "reached after the restart")
			keep := startKeep(t, lab, proto)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("keep's output:\n%s", keep.Output())
				}
			})
			has := func() (string, func(string, int) bool) { return portleasedInbound(t, lab) }
			mapped := waitAll(t, "keep maps the file", 30*time.Second, has)

			time.Sleep(time.Until(mapped.Add(time.Second)))
			if err := d.Stop(); err != nil {
				t.Fatalf("portleased exit: %v", err)
			}
			// The table goes with the daemon.
			if labpeers.NFTHasTable(t, lab.Gateway, "inet", "portleased") {
				t.Fatal("the table inet portleased is still there after portleased's exit")
			}
			if err := d.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			within := repairDeadline
			if proto == "pcp" {
				within = pcpRepairDeadline
			}
			expectRepaired(t, lab, keep, "portleased", within, has)
		})
	}
}

// TestKeepRestartMiniUPnPd: miniupnpd restarts (labpeers' Restart: its
// chains flushed and its lease file deleted, as a reboot would) 1 s after
// keep mapped three ports, over UPnP (told by SSDP NOTIFY) and over NAT-PMP
// (told by the announcement miniupnpd sends on SIGUSR1, which Restart
// sends).
func TestKeepRestartMiniUPnPd(t *testing.T) {
	for _, proto := range []string{"upnp", "natpmp"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{})
			cfg := labpeers.MiniUPnPdConfig{}
			if proto == "upnp" {
				cfg.NATPMP = new(false)
			}
			m := labpeers.StartMiniUPnPd(t, lab, cfg)
			serveTCP(t, lab.LAN[0], 12346, "reached after the restart")
			keep := startKeep(t, lab, proto)
			has := func() (string, func(string, int) bool) { return miniupnpdTable(t, lab, m) }
			mapped := waitAll(t, "keep maps the file", 30*time.Second, has)

			time.Sleep(time.Until(mapped.Add(time.Second)))
			m.Restart(t)
			expectRepaired(t, lab, keep, "miniupnpd", repairDeadline, has)
			if t.Failed() {
				t.Logf("miniupnpd log:\n%s", m.Log())
			}
		})
	}
}
