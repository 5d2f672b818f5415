package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/natpmp"
)

// serveTCP runs a TCP server on host's IPv4 addresses that greets every
// connection with greeting.
func serveTCP(t *testing.T, host *netlab.Host, port int, greeting string) {
	t.Helper()
	netlab.ServeGreeting(t, host, "tcp4", uint16(port), greeting)
}

// fetchTCP connects from host to addr and returns the first line it reads.
func fetchTCP(host *netlab.Host, addr string) (string, error) {
	return netlab.FetchLine(host, "tcp4", addr)
}

// udpListener receives datagrams on host and reports them with their
// source.
type udpListener struct {
	conn net.PacketConn
}

type datagram struct {
	from netip.AddrPort
	data string
}

func listenUDP(t *testing.T, host *netlab.Host, addr string) *udpListener {
	t.Helper()
	pc, err := host.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return &udpListener{conn: pc}
}

// receive waits up to d for a datagram.
func (u *udpListener) receive(d time.Duration) (datagram, bool) {
	buf := make([]byte, 2048)
	_ = u.conn.SetReadDeadline(time.Now().Add(d))
	n, from, err := u.conn.ReadFrom(buf)
	if err != nil {
		return datagram{}, false
	}
	return datagram{from: from.(*net.UDPAddr).AddrPort(), data: string(buf[:n])}, true
}

// sendUDP sends one datagram from host, from a fresh socket.
func sendUDP(t *testing.T, host *netlab.Host, to, payload string) {
	t.Helper()
	pc, err := host.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dst, err := net.ResolveUDPAddr("udp4", to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteTo([]byte(payload), dst); err != nil {
		t.Fatal(err)
	}
}

// TestNATPMPMappingsCarryTraffic: natpmpc gets the external address and a
// TCP and a UDP mapping; traffic from the WAN host reaches the LAN host's
// servers through them, and no longer does once they are deleted.
func TestNATPMPMappingsCarryTraffic(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]

	out := natpmpc(t, lab, lan)
	if !strings.Contains(out, "Public IP address : 203.0.113.1") {
		t.Fatalf("natpmpc printed no public address 203.0.113.1:\n%s", out)
	}

	serveTCP(t, lan, 8080, "hello from the LAN host")
	udp := listenUDP(t, lan, ":5000")
	tport := natpmpcMap(t, lab, lan, 8080, 8080, "tcp", 3600)
	uport := natpmpcMap(t, lab, lan, 5000, 5000, "udp", 3600)
	if tport != 8080 || uport != 5000 {
		t.Errorf("suggested ports 8080/tcp and 5000/udp were free, got %d and %d", tport, uport)
	}

	ext := lab.GatewayWANAddr4.String()
	got, err := fetchTCP(lab.WAN, fmt.Sprintf("%s:%d", ext, tport))
	if err != nil || got != "hello from the LAN host" {
		t.Fatalf("WAN host through %s:%d/tcp got %q, %v; want the LAN host's greeting", ext, tport, got, err)
	}
	sendUDP(t, lab.WAN, fmt.Sprintf("%s:%d", ext, uport), "ping over udp")
	if d, ok := udp.receive(5 * time.Second); !ok || d.data != "ping over udp" {
		t.Fatalf("LAN host's UDP server got %+v, %v; want the WAN host's datagram", d, ok)
	}

	natpmpcMap0 := func(private int, proto string) {
		out := natpmpc(t, lab, lan, "-a", "0", fmt.Sprint(private), proto, "0")
		if !strings.Contains(out, "result : 0") && !strings.Contains(out, "Mapped public port") && !strings.Contains(out, "success") {
			t.Logf("natpmpc delete printed:\n%s", out)
		}
	}
	natpmpcMap0(8080, "tcp")
	natpmpcMap0(5000, "udp")

	// New connections, from new source ports, no longer get through.
	if got, err := fetchTCP(lab.WAN, fmt.Sprintf("%s:%d", ext, tport)); err == nil {
		t.Fatalf("after deletion the WAN host still reached the LAN server: %q", got)
	}
	sendUDP(t, lab.WAN, fmt.Sprintf("%s:%d", ext, uport), "after deletion")
	if d, ok := udp.receive(2 * time.Second); ok {
		t.Fatalf("after deletion the LAN host still received %+v", d)
	}
}

// TestOutboundLeavesWithMappedPort: a UDP datagram sent from a mapped
// internal port reaches the WAN host with the mapped external port as its
// source (endpoint-independent mapping).
func TestOutboundLeavesWithMappedPort(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	eport := natpmpcMap(t, lab, lan, 41000, 5001, "udp", 3600)
	if eport == 5001 {
		t.Fatalf("got external port %d equal to the internal one; the test needs them to differ", eport)
	}

	// A port the gateway itself listens on is never handed out.
	own, err := lab.Gateway.Listen("tcp4", ":8443")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if got := natpmpcMap(t, lab, lan, 8443, 8443, "tcp", 3600); got == 8443 {
		t.Fatal("the gateway handed out port 8443, on which it listens itself")
	}

	if from, want := outboundSource(t, lab, lan, 5001), netip.AddrPortFrom(lab.GatewayWANAddr4, uint16(eport)); from != want {
		t.Fatalf("datagram from the mapped port arrived from %v; want %v", from, want)
	}
}

// outboundSource sends a datagram from UDP port iport of host to the WAN
// host and returns the source it arrives from there; the test fails if
// none arrives within 5 s.
func outboundSource(t *testing.T, lab *netlab.Lab, host *netlab.Host, iport int) netip.AddrPort {
	t.Helper()
	wan := listenUDP(t, lab.WAN, ":9999")
	src := listenUDP(t, host, fmt.Sprintf(":%d", iport))
	if _, err := src.conn.WriteTo([]byte("from the mapped port"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.WAN.Addr4, 9999))); err != nil {
		t.Fatal(err)
	}
	d, ok := wan.receive(5 * time.Second)
	if !ok {
		t.Fatalf("the WAN host received nothing from %s:%d", host.Addr4, iport)
	}
	return d.from
}

// TestHairpin: a LAN host reaches another LAN host's mapping through the
// external address.
func TestHairpin(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	serveTCP(t, lab.LAN[0], 8081, "hairpin works")
	eport := natpmpcMap(t, lab, lab.LAN[0], 8081, 8081, "tcp", 3600)
	got, err := fetchTCP(lab.LAN[1], fmt.Sprintf("%s:%d", lab.GatewayWANAddr4, eport))
	if err != nil || got != "hairpin works" {
		t.Fatalf("LAN host 2 through the external address got %q, %v; want LAN host 1's greeting", got, err)
	}
}

// exchange sends req from a socket on host to the gateway's NAT-PMP port
// and returns the answer, or nil if none comes within wait.
func exchange(t *testing.T, host *netlab.Host, gw netip.Addr, req []byte, wait time.Duration) []byte {
	t.Helper()
	pc, err := host.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.WriteTo(req, net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, natpmp.ServerPort))); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = pc.SetReadDeadline(time.Now().Add(wait))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func mappingRequest(op natpmp.Opcode, iport, eport uint16, lifetime uint32) []byte {
	b, err := natpmp.MappingRequest{Opcode: op, InternalPort: iport, SuggestedExternalPort: eport, Lifetime: lifetime}.AppendBinary(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// TestResultCodes: every RFC 6886 error case gives its result code, a flood
// of random packets leaves the daemon serving, and a request from the WAN
// side gets no answer. (Versions other than 0 are PCP's to answer, RFC 6887
// §9: TestPCPMapCarriesTraffic.)
func TestResultCodes(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, ExtraLines: []string{"port range 40000-40001"}})
	lan, gw := lab.LAN[0], lab.GatewayLANAddr4

	const (
		opOffset     = 1
		resultOffset = 2
	)
	tests := []struct {
		name    string
		req     []byte
		wantLen int
		wantOp  byte
		want    natpmp.ResultCode
	}{
		{"opcode 99", []byte{0, 99, 1, 2, 3, 4}, 8, 128 + 99, natpmp.UnsupportedOpcode},
		{"short mapping request", mappingRequest(natpmp.OpMapTCP, 6000, 6000, 60)[:11], natpmp.MappingResponseLen, 130, natpmp.UnsupportedOpcode},
		{"long mapping request", append(mappingRequest(natpmp.OpMapUDP, 6000, 6000, 60), 0), natpmp.MappingResponseLen, 129, natpmp.UnsupportedOpcode},
		{"long address request", []byte{0, 0, 0}, natpmp.ExternalAddressResponseLen, 128, natpmp.UnsupportedOpcode},
		{"denied internal port", mappingRequest(natpmp.OpMapTCP, 80, 40000, 60), natpmp.MappingResponseLen, 130, natpmp.NotAuthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := exchange(t, lan, gw, tt.req, 5*time.Second)
			if len(resp) != tt.wantLen || resp[opOffset] != tt.wantOp {
				t.Fatalf("answer to %x = %x; want %d bytes with opcode %d", tt.req, resp, tt.wantLen, tt.wantOp)
			}
			if got := natpmp.ResultCode(binary.BigEndian.Uint16(resp[resultOffset:])); got != tt.want {
				t.Fatalf("answer to %x has result %v; want %v", tt.req, got, tt.want)
			}
		})
	}

	t.Run("out of resources", func(t *testing.T) {
		for i, iport := range []uint16{7001, 7002, 7003} {
			resp := exchange(t, lan, gw, mappingRequest(natpmp.OpMapUDP, iport, 0, 60), 5*time.Second)
			var m natpmp.MappingResponse
			if err := m.UnmarshalBinary(resp); err != nil {
				t.Fatalf("answer %x: %v", resp, err)
			}
			want := natpmp.Success
			if i == 2 {
				want = natpmp.OutOfResources // the range holds two ports
			}
			if m.ResultCode != want {
				t.Fatalf("mapping %d of a 2-port range: result %v; want %v", i+1, m.ResultCode, want)
			}
		}
	})

	t.Run("flood of random packets", func(t *testing.T) {
		pc, err := lab.LAN[1].ListenPacket("udp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, natpmp.ServerPort))
		rng := rand.New(rand.NewPCG(6886, 1))
		buf := make([]byte, 1200)
		for range 20000 {
			n := rng.IntN(len(buf) + 1)
			for i := range n {
				buf[i] = byte(rng.Uint32())
			}
			if n >= 2 && rng.IntN(2) == 0 {
				buf[0] = 0 // half of them look like version 0
			}
			_, _ = pc.WriteTo(buf[:n], dst)
		}
		out := natpmpc(t, lab, lan)
		if !strings.Contains(out, "Public IP address : 203.0.113.1") {
			t.Fatalf("after the flood natpmpc printed:\n%s", out)
		}
	})

	t.Run("no answer to the WAN side", func(t *testing.T) {
		// A hostile neighbour on the WAN link routes the LAN prefix to
		// the gateway and asks its LAN address and its external one.
		if _, err := lab.WAN.Run(context.Background(), "ip", "route", "replace", "198.51.100.0/24", "via", lab.GatewayWANAddr4.String()); err != nil {
			t.Fatal(err)
		}
		for _, target := range []netip.Addr{gw, lab.GatewayWANAddr4} {
			if resp := exchange(t, lab.WAN, target, []byte{0, 0}, 2*time.Second); resp != nil {
				t.Fatalf("a request from the WAN host to %v was answered: %x", target, resp)
			}
		}
	})
}

// TestShortLeaseLeavesKernel: a 2-second lease is removed from the kernel
// when it ends.
func TestShortLeaseLeavesKernel(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	eport := natpmpcMap(t, lab, lab.LAN[0], 42000, 6100, "tcp", 2)
	element := regexp.MustCompile(fmt.Sprintf(`tcp \. %d [^,}]*: 198\.51\.100\.10 \. 6100`, eport))
	if out := inboundElements(t, lab); !element.MatchString(out) {
		t.Fatalf("the kernel map lacks %v:\n%s", element, out)
	}
	eventually(t, "the 2-second lease leaves the kernel", func() bool { return !element.MatchString(inboundElements(t, lab)) })
}

// TestAnnouncesNewAddress: when the WAN address changes, a listener on the
// LAN host's port 5350 receives the new address.
func TestAnnouncesNewAddress(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	var conn *net.UDPConn
	err := lab.LAN[0].Do(func() error {
		ifi, err := net.InterfaceByName(lab.LAN[0].Link)
		if err != nil {
			return err
		}
		conn, err = net.ListenMulticastUDP("udp4", ifi, net.UDPAddrFromAddrPort(natpmp.AnnounceAddr()))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	newAddr := netip.MustParsePrefix("203.0.113.7/24")
	if err := lab.SetWANAddr(context.Background(), newAddr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_ = conn.SetReadDeadline(deadline)
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no announcement of %v: %v\n%s", newAddr.Addr(), err, d.Log())
		}
		var a natpmp.ExternalAddressResponse
		if err := a.UnmarshalBinary(buf[:n]); err != nil {
			t.Fatalf("announcement %x from %v: %v", buf[:n], from, err)
		}
		if from.Port() != natpmp.ServerPort {
			t.Fatalf("announcement came from port %d; want %d (RFC 6886 §3.2.1)", from.Port(), natpmp.ServerPort)
		}
		if a.Address == newAddr.Addr() {
			break
		}
	}
	// And requests are answered with it.
	if out := natpmpc(t, lab, lab.LAN[0]); !strings.Contains(out, "Public IP address : 203.0.113.7") {
		t.Fatalf("after the change natpmpc printed:\n%s", out)
	}
}

// TestSignals: SIGHUP with a broken file keeps the running configuration;
// SIGHUP with a stricter one removes the leases it no longer allows; SIGTERM
// leaves nothing of portleased in the ruleset and exits 0.
func TestSignals(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	eport := natpmpcMap(t, lab, lan, 43000, 6200, "tcp", 3600)

	if err := d.Reload(t.Context(), "interface wan0", "listen on lan0", "port range 9-8"); err == nil ||
		!strings.Contains(err.Error(), filepath.Base(d.ConfigPath())+":3:") {
		t.Errorf("a reload with a bad port range = %v; want a refusal naming line 3", err)
	}
	if got := natpmpcMap(t, lab, lan, 43000, 6200, "tcp", 3600); got != eport {
		t.Fatalf("after a refused reload the renewal got port %d; want %d", got, eport)
	}

	if err := d.Reload(t.Context(), "interface wan0", "listen on lan0", "allow 1024-65535 198.51.100.99 1024-65535"); err != nil {
		t.Fatal(err)
	}
	if rs := nftRuleset(t, lab); strings.Contains(rs, "198.51.100.10 . 6200") {
		t.Fatalf("the reload denied 198.51.100.10 but its mapping is still in the kernel:\n%s", rs)
	}

	if !strings.Contains(nftRuleset(t, lab), "table inet portleased") {
		t.Fatal("no portleased table while running")
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if rs := nftRuleset(t, lab); strings.Contains(rs, "portleased") {
		t.Fatalf("after SIGTERM the ruleset still holds portleased:\n%s", rs)
	}
}

// TestCheckConfig: portleased -n accepts an OpenBSD natpmpd.conf and rejects
// a bad file naming the line. It runs in the lab's gateway namespace like
// every portleased.
func TestCheckConfig(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	dir := t.TempDir()
	good := filepath.Join(dir, "natpmpd.conf")
	bad := filepath.Join(dir, "bad.conf")
	// The example of OpenBSD's natpmpd.conf(5), with the lab's links.
	if err := os.WriteFile(good, []byte("# natpmpd.conf\ninterface wan0\nlisten on 198.51.100.1\nlisten on lan0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("interface wan0\nlisten on lan0\nlisen on lan1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(file string) (string, error) {
		cmd := lab.Gateway.Command(context.Background(), labpeers.PortleasedBinary(t), "-n", "-f", file)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// The lab's gateway has nf_tables and no iptables-legacy rule.
	if out, err := run(good); err != nil || strings.TrimSpace(out) != "configuration OK\nfirewall: nftables (auto: the kernel has nf_tables and no iptables-legacy rules are loaded)" {
		t.Fatalf("portleased -n on natpmpd.conf = %q, %v; want configuration OK and firewall: nftables", out, err)
	}
	out, err := run(bad)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("portleased -n on a bad file: %v; want exit status 1", err)
	}
	if !strings.HasPrefix(out, bad+":3: ") {
		t.Fatalf("portleased -n on a bad file printed %q; want %s:3: ...", out, bad)
	}
}
