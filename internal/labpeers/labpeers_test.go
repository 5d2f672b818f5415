package labpeers

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/natpmp"
)

// mapping8080 matches the line of `upnpc -l` for the mapping the tests make.
var mapping8080 = regexp.MustCompile(`TCP\s+8080->198\.51\.100\.10:8080\b`)

// serveHello accepts connections on host port 8080 and writes each peer
// "hello <peer address>\n", until the test ends.
func serveHello(t *testing.T, host *netlab.Host) {
	t.Helper()
	ln, err := host.Listen("tcp4", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello " + c.RemoteAddr().String() + "\n"))
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
}

// dialHello dials addr from host and returns the line it gets.
func dialHello(t *testing.T, host *netlab.Host, addr string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := host.Dial(ctx, "tcp4", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// listenAnnouncements joins 224.0.0.1 on host's link and returns a socket
// bound to port 5350, closed when the test ends.
func listenAnnouncements(t *testing.T, host *netlab.Host) *net.UDPConn {
	t.Helper()
	var mc *net.UDPConn
	err := host.Do(func() error {
		ifi, err := net.InterfaceByName(host.Link)
		if err != nil {
			return err
		}
		group := natpmp.AnnounceAddr()
		mc, err = net.ListenMulticastUDP("udp4", ifi, net.UDPAddrFromAddrPort(group))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	return mc
}

// gatewayPIDs returns the processes in the lab gateway's namespace.
func gatewayPIDs(t *testing.T, lab *netlab.Lab) []string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "ip", "netns", "pids", lab.Gateway.NS).Output()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v", lab.Gateway.NS, err)
	}
	return strings.Fields(string(out))
}

func TestMiniUPnPd(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	lan0 := lab.LAN[0]
	m := StartMiniUPnPd(t, lab, MiniUPnPdConfig{})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("miniupnpd log:\n%s", m.Log())
		}
	})
	url := m.DescriptionURL()
	if want := "http://198.51.100.1:5000/rootDesc.xml"; url != want {
		t.Errorf("DescriptionURL() = %q; want %q", url, want)
	}

	serveHello(t, lan0)
	out := UPnPC(t, lan0, "-u", url, "-a", "198.51.100.10", "8080", "8080", "TCP", "3600")
	if !strings.Contains(out, "external 203.0.113.1:8080 TCP is redirected to internal 198.51.100.10:8080") {
		t.Errorf("upnpc -a: output lacks the redirection:\n%s", out)
	}
	if out := m.Mappings(t); !mapping8080.MatchString(out) {
		t.Errorf("Mappings() does not list 8080->198.51.100.10:8080:\n%s", out)
	}

	// The rules miniupnpd wrote forward a connection from the WAN, with
	// the WAN host's own source address.
	line, err := dialHello(t, lab.WAN, "203.0.113.1:8080")
	if err != nil {
		t.Fatalf("WAN dial 203.0.113.1:8080 through the mapping: %v", err)
	}
	if !strings.HasPrefix(line, "hello 203.0.113.2:") {
		t.Errorf("WAN host got %q through the mapping; want hello 203.0.113.2:port", line)
	}

	if out := NATPMPC(t, lan0, "-g", "198.51.100.1"); !strings.Contains(out, "Public IP address : 203.0.113.1") {
		t.Errorf("natpmpc -g 198.51.100.1: no public address 203.0.113.1:\n%s", out)
	}

	// A reboot loses the mapping, and announces itself on the LAN.
	mc := listenAnnouncements(t, lan0)
	m.Restart(t)
	if out := m.Mappings(t); mapping8080.MatchString(out) {
		t.Errorf("after Restart, Mappings() still lists 8080:\n%s", out)
	}
	if line, err := dialHello(t, lab.WAN, "203.0.113.1:8080"); err == nil {
		t.Errorf("after Restart, WAN dial 203.0.113.1:8080 got %q; want no forwarding", line)
	}
	if out := NATPMPC(t, lan0, "-g", "198.51.100.1"); !strings.Contains(out, "Public IP address : 203.0.113.1") {
		t.Errorf("after Restart, natpmpc -g 198.51.100.1: no public address 203.0.113.1:\n%s", out)
	}

	var sawNATPMP, sawPCP bool
	if err := mc.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for !sawNATPMP || !sawPCP {
		n, from, err := mc.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("waiting for announcements (NAT-PMP %v, PCP %v): %v", sawNATPMP, sawPCP, err)
		}
		if from.Addr().Unmap() != lab.GatewayLANAddr4 {
			continue
		}
		var a natpmp.ExternalAddressResponse
		err = a.UnmarshalBinary(buf[:n])
		switch {
		case err == nil:
			if a.ResultCode != natpmp.Success || a.Address != netip.MustParseAddr("203.0.113.1") {
				t.Errorf("NAT-PMP announcement %x = %+v; want success, 203.0.113.1", buf[:n], a)
			}
			sawNATPMP = true
		case errors.Is(err, natpmp.ErrPCPServer):
			// PCP ANNOUNCE response: version 2, opcode 0x80 (RFC 6887
			// §7.2 and §14.1).
			if n < 2 || buf[1] != 0x80 {
				t.Errorf("PCP packet %x from the gateway is not an ANNOUNCE response", buf[:n])
			}
			sawPCP = true
		default:
			t.Errorf("announcement %x: %v", buf[:n], err)
		}
	}

	if log := m.Log(); !strings.Contains(log, "STUN: ext interface wan0") || !strings.Contains(log, "labpeers: restart") {
		t.Errorf("Log() lacks the STUN outcome or the restart mark:\n%s", log)
	}
	m.Stop()
	m.Stop()
	if pids := gatewayPIDs(t, lab); len(pids) != 0 {
		t.Errorf("after Stop, processes %v left in the gateway namespace", pids)
	}
}

func TestMiniUPnPdDebug(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	m := StartMiniUPnPd(t, lab, MiniUPnPdConfig{Debug: true, NATPMP: new(false), HTTPPort: 5555})
	if want := "http://198.51.100.1:5555/rootDesc.xml"; m.DescriptionURL() != want {
		t.Errorf("DescriptionURL() = %q; want %q", m.DescriptionURL(), want)
	}
	UPnPC(t, lab.LAN[0], "-u", m.DescriptionURL(), "-a", "198.51.100.10", "8080", "8080", "TCP", "3600")
	// Debug logging: every rule of the chain as miniupnpd reads it.
	if log := m.Log(); !strings.Contains(log, "HTTP listening on port 5555") || !strings.Contains(log, "table_cb(") {
		t.Errorf("Log() lacks debug lines:\n%s", log)
	}
	if strings.Contains(m.Log(), "NAT-PMP") {
		t.Errorf("NAT-PMP disabled, but the log mentions it:\n%s", m.Log())
	}
	// Denied by the permission rules: ports below 1024.
	if out, err := RunUPnPC(t.Context(), lab.LAN[0], "-u", m.DescriptionURL(), "-a", "198.51.100.10", "80", "80", "TCP", "3600"); err == nil {
		t.Errorf("upnpc -a ... 80 succeeded; want failure:\n%s", out)
	} else if !strings.Contains(err.Error(), "606") {
		t.Errorf("upnpc -a ... 80: %v; want UPnP error 606", err)
	}
	m.Restart(t)
	if out := m.Mappings(t); mapping8080.MatchString(out) {
		t.Errorf("after Restart, Mappings() still lists 8080:\n%s", out)
	}
	m.Stop()
	if pids := gatewayPIDs(t, lab); len(pids) != 0 {
		t.Errorf("after Stop, processes %v left in the gateway namespace", pids)
	}
	if n := strings.Count(m.Log(), "HTTP listening on port 5555"); n != 2 {
		t.Errorf("Log() shows %d starts; want 2:\n%s", n, m.Log())
	}
}
