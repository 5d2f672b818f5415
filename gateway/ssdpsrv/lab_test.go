package ssdpsrv

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/upnp"
)

// Every test here that opens a socket does it inside a lab namespace
// (internal/netlab): SSDP is multicast, and the machine's own network is
// not ours to send to.

// waitLimit bounds every wait for something that should arrive; no test
// depends on how fast it does.
const waitLimit = 20 * time.Second

var (
	gatewayLAN  = netip.MustParseAddr("198.51.100.1")
	gatewayWAN  = netip.MustParseAddr("203.0.113.1")
	gatewayFrom = netip.AddrPortFrom(gatewayLAN, upnp.SSDPPort)
	ssdpGroup   = upnp.SSDPMulticastAddr()
)

// datagram is one packet a test socket received.
type datagram struct {
	from netip.AddrPort
	data []byte
}

// peer is a UDP socket in a lab host's namespace that keeps every
// datagram it receives, for the test to look through.
type peer struct {
	conn *net.UDPConn
	pc   *ipv4.PacketConn

	mu   sync.Mutex
	got  []datagram
	more chan struct{} // closed and replaced at each datagram
}

// newPeer opens a UDP socket on port (0: any) in h's namespace, with
// multicast sent through ifname without loopback, joined to the SSDP group
// on ifname when join is set. Its reader ends when the test's cleanup
// closes it.
func newPeer(t *testing.T, h *netlab.Host, ifname string, port int, join bool) *peer {
	t.Helper()
	p := &peer{more: make(chan struct{})}
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		p.conn, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		if err != nil {
			return err
		}
		p.pc = ipv4.NewPacketConn(p.conn)
		if err := p.pc.SetMulticastInterface(ifi); err != nil {
			return err
		}
		if err := p.pc.SetMulticastLoopback(false); err != nil {
			return err
		}
		if join {
			return p.pc.JoinGroup(ifi, &net.UDPAddr{IP: net.IP(ssdpGroup.Addr().AsSlice())})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: socket: %v", h.Name, err)
	}
	p.start(t)
	return p
}

// start runs p's reader until the test's cleanup closes it.
func (p *peer) start(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := p.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.got = append(p.got, datagram{from: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), data: slices.Clone(buf[:n])})
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.conn.Close()
		<-done
	})
}

func (p *peer) send(t *testing.T, to netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatalf("send to %v: %v", to, err)
	}
}

// received returns a copy of what arrived so far.
func (p *peer) received() []datagram {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// waitUntil calls done with what arrived so far, each time more arrives,
// until it returns true; every resend it calls again (nil: never), which
// sends the request again, as a control point repeats a search over UDP.
// It fails the test after waitLimit.
func (p *peer) waitUntil(t *testing.T, what string, again func(), done func([]datagram) bool) []datagram {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	resend := time.NewTicker(2 * time.Second)
	defer resend.Stop()
	for {
		p.mu.Lock()
		got, more := slices.Clone(p.got), p.more
		p.mu.Unlock()
		if done(got) {
			return got
		}
		select {
		case <-more:
		case <-resend.C:
			if again != nil {
				again()
			}
		case <-limit.C:
			t.Fatalf("%s: not seen after %v; got %d datagrams", what, waitLimit, len(got))
		}
	}
}

// responses parses the search responses in got; others are skipped.
func responses(got []datagram) []upnp.SearchResponse {
	var rs []upnp.SearchResponse
	for _, d := range got {
		if r, err := upnp.ParseSearchResponse(d.data); err == nil {
			rs = append(rs, r)
		}
	}
	return rs
}

// notifies parses the advertisements in got that came from the gateway.
func notifies(got []datagram) []upnp.Notify {
	var ns []upnp.Notify
	for _, d := range got {
		if d.from.Addr() != gatewayLAN {
			continue
		}
		if n, err := upnp.ParseNotify(d.data); err == nil {
			ns = append(ns, n)
		}
	}
	return ns
}

// hasResponse reports whether got holds a response for st from from.
func hasResponse(got []datagram, st string, from netip.AddrPort) bool {
	for _, d := range got {
		if r, err := upnp.ParseSearchResponse(d.data); err == nil && r.ST == st && d.from == from {
			return true
		}
	}
	return false
}

// logRecords keeps the messages and client addresses the server logs.
type logRecords struct {
	mu   sync.Mutex
	seen []string // "message client err"
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "client" || a.Key == "err" {
			line += " " + a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	l.seen = append(l.seen, line)
	l.mu.Unlock()
	return nil
}

// count returns how many records hold every one of parts.
func (l *logRecords) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.seen {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// serveDescription serves a minimal IGD:2 description with the UDNs of
// embeddedDevice at testLocation, from the gateway's namespace, for upnpc
// to fetch.
func serveDescription(t *testing.T, lab *netlab.Lab) {
	t.Helper()
	serveDescriptionAt(t, lab, "198.51.100.1:5000")
}

// serveDescriptionAt is serveDescription on addr, port 5000 (path
// /rootDesc.xml).
func serveDescriptionAt(t *testing.T, lab *netlab.Lab, addr string) {
	t.Helper()
	d := testDevice()
	desc := upnp.Description{SpecMajor: 1, SpecMinor: 1, ConfigID: d.ConfigID, Device: upnp.Device{
		DeviceType: upnp.DeviceIGD2, FriendlyName: "portleased", Manufacturer: "portlease", ModelName: "portleased",
		UDN: testUDN,
		Devices: []upnp.Device{{
			DeviceType: upnp.DeviceWAN2, FriendlyName: "WAN", Manufacturer: "portlease", ModelName: "portleased",
			UDN: wanUDN,
			Devices: []upnp.Device{{
				DeviceType: upnp.DeviceWANConnection2, FriendlyName: "WAN connection", Manufacturer: "portlease", ModelName: "portleased",
				UDN: wcdUDN,
				Services: []upnp.Service{{
					ServiceType: upnp.ServiceWANIP2, ServiceID: "urn:upnp-org:serviceId:WANIPConn1",
					SCPDURL: "/WANIPCn.xml", ControlURL: "/ctl/IPConn", EventSubURL: "/evt/IPConn",
				}},
			}},
		}},
	}}
	body, err := desc.AppendXML(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := lab.Gateway.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rootDesc.xml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		w.Write(body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// labConfig serves embeddedDevice on the gateway's LAN bridge.
func labConfig(lab *netlab.Lab, log *slog.Logger) Config {
	return Config{
		Device: embeddedDevice(),
		Links: []Link{{
			Name:     lab.GatewayLANLink,
			Addr:     lab.GatewayLANAddr4,
			Prefix:   netip.PrefixFrom(lab.GatewayLANAddr4, 24),
			Location: testLocation,
		}},
		Logger:         log,
		NotifyInterval: 3 * time.Second,
	}
}

// listenIn runs Listen in the gateway's namespace.
func listenIn(t *testing.T, lab *netlab.Lab, cfg Config) *Server {
	t.Helper()
	var srv *Server
	err := lab.Gateway.Do(func() error {
		var err error
		srv, err = Listen(cfg)
		return err
	})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	return srv
}

// TestLab runs the server in a lab gateway and talks to it from the LAN
// hosts and the WAN host, with test sockets and with upnpc.
func TestLab(t *testing.T) {
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	if _, err := lab.WAN.Run(t.Context(), "ip", "route", "add", "198.51.100.0/24", "via", gatewayWAN.String()); err != nil {
		t.Fatal(err)
	}
	serveDescription(t, lab)

	// Listeners on port 1900 before the server starts: LAN host 1 sees
	// every advertisement, the WAN host must see nothing.
	lan1 := newPeer(t, lab.LAN[1], "eth0", upnp.SSDPPort, true)
	wan := newPeer(t, lab.WAN, "eth0", upnp.SSDPPort, true)

	log := &logRecords{}
	srv := listenIn(t, lab, labConfig(lab, slog.New(log)))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		err := <-served
		if cerr := srv.Close(); cerr != nil {
			t.Errorf("Close: %v", cerr)
		}
		return err
	}
	t.Cleanup(func() { stop() })

	t.Run("alive at start", func(t *testing.T) {
		got := lan1.waitUntil(t, "ssdp:alive for every target", nil, func(got []datagram) bool {
			nts := map[string]bool{}
			for _, n := range notifies(got) {
				if n.NTS == upnp.NTSAlive {
					nts[n.NT] = true
				}
			}
			return len(nts) == len(embeddedTargets)
		})
		ns := notifies(got)
		// WANIPConnection:2 §1.2: a byebye opens the start, before any alive.
		if ns[0].NTS != upnp.NTSByeBye {
			t.Errorf("first advertisement %s %s; want ssdp:byebye", ns[0].NTS, ns[0].NT)
		}
		for _, n := range ns {
			if n.NTS != upnp.NTSAlive {
				continue
			}
			want := upnp.Notify{Host: "239.255.255.250:1900", NT: n.NT, NTS: upnp.NTSAlive, USN: usnOf(n.NT),
				Location: testLocation, Server: testServer, MaxAge: 1800, BootID: 7, ConfigID: 3, NextBootID: -1}
			if n != want {
				t.Errorf("alive = %+v; want %+v", n, want)
			}
		}
	})

	lan0 := newPeer(t, lab.LAN[0], "eth0", 0, false)
	search := func(t *testing.T, p *peer, to netip.AddrPort, st string, mx int) []datagram {
		t.Helper()
		host := ""
		if !to.Addr().IsMulticast() {
			host = to.String()
		}
		// A multicast search is answered from the gateway's LAN
		// address, a unicast one from the address searched.
		from := to
		if to.Addr().IsMulticast() {
			from = gatewayFrom
		}
		req := msearch(t, host, st, mx)
		p.send(t, to, req)
		return p.waitUntil(t, "response for "+st, func() { p.send(t, to, req) }, func(got []datagram) bool {
			return hasResponse(got, st, from)
		})
	}

	searches := []struct {
		name string
		to   netip.AddrPort
		st   string
		mx   int
	}{
		{"multicast IGD:2", ssdpGroup, upnp.DeviceIGD2, 1},
		{"multicast IGD:1", ssdpGroup, upnp.DeviceIGD1, 1},
		{"multicast WANIPConnection:1", ssdpGroup, upnp.ServiceWANIP1, 1},
		{"multicast root device", ssdpGroup, upnp.SearchRootDevice, 1},
		{"multicast uuid", ssdpGroup, testUDN, 2},
		{"multicast embedded uuid", ssdpGroup, wcdUDN, 1},
		{"unicast IGD:2", gatewayFrom, upnp.DeviceIGD2, 0},
		{"unicast to the WAN address", netip.AddrPortFrom(gatewayWAN, upnp.SSDPPort), upnp.ServiceWANIP2, 0},
	}
	for _, tt := range searches {
		t.Run(tt.name, func(t *testing.T) {
			got := search(t, lan0, tt.to, tt.st, tt.mx)
			for _, r := range responses(got) {
				if r.ST != tt.st {
					continue
				}
				want := upnp.SearchResponse{ST: tt.st, USN: usnOf(tt.st), Location: testLocation, Server: testServer,
					MaxAge: 1800, BootID: 7, ConfigID: 3}
				if r != want {
					t.Errorf("response = %+v; want %+v", r, want)
				}
			}
		})
	}

	t.Run("ssdp:all", func(t *testing.T) {
		p := newPeer(t, lab.LAN[0], "eth0", 0, false)
		req := msearch(t, "", upnp.SearchAll, 2)
		p.send(t, ssdpGroup, req)
		want := map[string]string{}
		for _, tg := range embeddedTargets {
			want[tg.nt] = tg.usn
		}
		p.waitUntil(t, "a response for every target", func() { p.send(t, ssdpGroup, req) }, func(got []datagram) bool {
			seen := map[string]bool{}
			for _, r := range responses(got) {
				if want[r.ST] != r.USN || r.Location != testLocation {
					t.Fatalf("response %+v is not one of %v", r, want)
				}
				seen[r.ST] = true
			}
			return len(seen) == len(want)
		})
	})

	t.Run("unknown target", func(t *testing.T) {
		// Unicast searches are answered at once and in order: once the
		// second one's answer is in, the first one's would be too.
		p := newPeer(t, lab.LAN[0], "eth0", 0, false)
		p.send(t, gatewayFrom, msearch(t, gatewayFrom.String(), "urn:schemas-upnp-org:device:MediaServer:1", 0))
		got := search(t, p, gatewayFrom, upnp.SearchRootDevice, 0)
		if rs := responses(got); len(rs) != 1 {
			t.Errorf("got %d responses (%+v); want 1, for upnp:rootdevice", len(rs), rs)
		}
	})

	t.Run("WAN searches ignored", func(t *testing.T) {
		wan.send(t, netip.AddrPortFrom(gatewayWAN, upnp.SSDPPort), msearch(t, "203.0.113.1:1900", upnp.SearchAll, 0))
		wan.send(t, gatewayFrom, msearch(t, gatewayFrom.String(), upnp.SearchAll, 0))
		wan.send(t, ssdpGroup, msearch(t, "", upnp.SearchAll, 1))
		// The server read the two unicast ones and dropped them for
		// coming through wan0. (The multicast one does not reach it at
		// all: the gateway is no member of the group on wan0.) The WAN
		// host's socket is checked for silence at the end.
		limit := time.Now().Add(waitLimit)
		for log.count("packet ignored", "203.0.113.2:1900", errNotLink.Error()) < 2 {
			if time.Now().After(limit) {
				t.Fatalf("the server did not report the WAN searches ignored")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("update", func(t *testing.T) {
		if err := srv.Update(8, 4); err != nil {
			t.Fatal(err)
		}
		if err := srv.Update(6, 4); err == nil {
			t.Errorf("Update to a lower BOOTID succeeded")
		}
		got := lan1.waitUntil(t, "ssdp:alive with the new BOOTID", nil, func(got []datagram) bool {
			for _, n := range notifies(got) {
				if n.NTS == upnp.NTSAlive && n.BootID == 8 && n.ConfigID == 4 {
					return true
				}
			}
			return false
		})
		updates, alive8 := 0, false
		for _, n := range notifies(got) {
			switch {
			case n.NTS == upnp.NTSUpdate:
				if alive8 {
					t.Errorf("ssdp:update %s after an alive with the new BOOTID", n.NT)
				}
				if n.BootID != 7 || n.NextBootID != 8 || n.Location != testLocation || n.USN != usnOf(n.NT) {
					t.Errorf("ssdp:update = %+v; want BOOTID 7, NEXTBOOTID 8", n)
				}
				updates++
			case n.NTS == upnp.NTSAlive && n.BootID == 8:
				alive8 = true
			}
		}
		if updates != len(embeddedTargets) {
			t.Errorf("saw %d ssdp:update; want %d", updates, len(embeddedTargets))
		}
		got = search(t, newPeer(t, lab.LAN[0], "eth0", 0, false), gatewayFrom, upnp.DeviceIGD2, 0)
		if r := responses(got)[0]; r.BootID != 8 || r.ConfigID != 4 {
			t.Errorf("response after Update = %+v; want BOOTID 8, CONFIGID 4", r)
		}
	})

	t.Run("upnpc", func(t *testing.T) {
		for _, args := range [][]string{
			{"-i", "-p", t.TempDir() + "/no-minissdpd.sock", "-l"},
			{"-i", "-p", t.TempDir() + "/no-minissdpd.sock", "-m", "eth0", "-l"},
		} {
			ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
			out, err := lab.LAN[0].Run(ctx, "upnpc", args...)
			cancel()
			// Only discovery counts: the listing fails, as nothing
			// serves the control URL. upnpc searches for IGD:1 first,
			// which an IGD:2 answers.
			if !strings.Contains(out, "desc: "+testLocation) || !strings.Contains(out, "st: "+upnp.DeviceIGD1) {
				t.Errorf("upnpc %s did not discover %s as an IGD:1 (err %v):\n%s", strings.Join(args, " "), testLocation, err, out)
			}
		}
	})

	t.Run("flood", func(t *testing.T) {
		flood := newPeer(t, lab.LAN[0], "eth0", 0, false)
		msearchAll := msearch(t, "", upnp.SearchAll, 5)
		unicastAll := msearch(t, gatewayFrom.String(), upnp.SearchAll, 0)
		junk := make([]byte, 512)
		for i := range 10000 {
			switch i % 4 {
			case 0:
				flood.send(t, ssdpGroup, msearchAll)
			case 1:
				flood.send(t, gatewayFrom, unicastAll)
			case 2:
				b := junk[:1+i%len(junk)]
				rand.Read(b)
				flood.send(t, ssdpGroup, b)
			case 3:
				flood.send(t, gatewayFrom, msearch(t, gatewayFrom.String(), "urn:x:device:"+rand.Text()+":1", 0))
			}
		}
		// Another host's multicast search is still answered, and so is
		// the flooding host's unicast one. (Its multicast searches may
		// wait until its share of the queue drains: the flood runs
		// last, after upnpc, which runs on the same host.)
		search(t, newPeer(t, lab.LAN[1], "eth0", 0, false), ssdpGroup, upnp.DeviceIGD1, 1)
		search(t, newPeer(t, lab.LAN[0], "eth0", 0, false), gatewayFrom, upnp.DeviceIGD2, 0)
	})

	t.Run("byebye at the end", func(t *testing.T) {
		if err := stop(); err != nil {
			t.Fatalf("Serve = %v; want nil", err)
		}
		got := lan1.waitUntil(t, "ssdp:byebye for every target", nil, func(got []datagram) bool {
			ns := notifies(got)
			bye := map[string]bool{}
			for _, n := range ns[len(ns)-min(len(ns), len(embeddedTargets)):] {
				if n.NTS == upnp.NTSByeBye {
					bye[n.NT] = true
				}
			}
			return len(bye) == len(embeddedTargets)
		})
		ns := notifies(got)
		for _, n := range ns[len(ns)-len(embeddedTargets):] {
			want := upnp.Notify{Host: "239.255.255.250:1900", NT: n.NT, NTS: upnp.NTSByeBye, USN: usnOf(n.NT),
				MaxAge: -1, BootID: 8, ConfigID: 4, NextBootID: -1}
			if n != want {
				t.Errorf("byebye = %+v; want %+v", n, want)
			}
		}
	})

	t.Run("WAN heard nothing", func(t *testing.T) {
		for _, d := range wan.received() {
			if d.from.Addr() != lab.WAN.Addr4 {
				t.Errorf("WAN host received %q from %v", d.data, d.from)
			}
		}
	})
}

// usnOf is the USN embeddedDevice, which the lab serves, gives target nt.
func usnOf(nt string) string {
	for _, t := range embeddedTargets {
		if t.nt == nt {
			return t.usn
		}
	}
	switch nt {
	case upnp.DeviceIGD1:
		return testUDN + "::" + nt
	case upnp.ServiceWANIP1:
		return wcdUDN + "::" + nt
	}
	return "no USN for " + nt
}

// TestLabClose checks Close: Serve returns ErrServerClosed, a second Close
// is harmless, Update and Serve refuse to run after it.
func TestLabClose(t *testing.T) {
	lab := netlab.New(t, netlab.Config{LANHosts: 1})
	srv := listenIn(t, lab, labConfig(lab, nil))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	// Serve is running once a unicast search gets an answer.
	p := newPeer(t, lab.LAN[0], "eth0", 0, false)
	req := msearch(t, gatewayFrom.String(), upnp.DeviceIGD2, 0)
	p.send(t, gatewayFrom, req)
	p.waitUntil(t, "a response", func() { p.send(t, gatewayFrom, req) }, func(got []datagram) bool {
		return hasResponse(got, upnp.DeviceIGD2, gatewayFrom)
	})
	if err := srv.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close = %v; want ErrServerClosed", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
	if err := srv.Update(8, 3); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Update after Close = %v; want ErrServerClosed", err)
	}
	if err := srv.Serve(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close = %v; want ErrServerClosed", err)
	}
}

// TestLabListenErrors checks that Listen refuses links it cannot serve.
func TestLabListenErrors(t *testing.T) {
	lab := netlab.New(t, netlab.Config{LANHosts: 1})
	tests := []struct {
		name   string
		change func(*Link)
	}{
		{"no such interface", func(l *Link) { l.Name = "nosuch0" }},
		{"index and name disagree", func(l *Link) { l.Index = 1 }},
		{"address not on the gateway", func(l *Link) { l.Addr = netip.MustParseAddr("198.51.100.99") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := labConfig(lab, nil)
			tt.change(&cfg.Links[0])
			err := lab.Gateway.Do(func() error {
				srv, err := Listen(cfg)
				if err == nil {
					srv.Close()
				}
				return err
			})
			if err == nil || !strings.HasPrefix(err.Error(), "ssdpsrv: ") {
				t.Errorf("Listen = %v; want an ssdpsrv error", err)
			}
		})
	}
}

// TestLabSharedPort runs the server beside another SSDP listener bound to
// 0.0.0.0:1900 with the same socket options (as minissdpd or a media server
// would be): both get the multicast searches, and every unicast search to
// the gateway's LAN address reaches the server, none the other listener.
// It also checks SEARCHPORT.UPNP.ORG.
func TestLabSharedPort(t *testing.T) {
	lab := netlab.New(t, netlab.Config{LANHosts: 1})
	var rival *net.UDPConn
	err := lab.Gateway.Do(func() error {
		lc := net.ListenConfig{Control: controlShared}
		c, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:1900")
		if err != nil {
			return err
		}
		rival = c.(*net.UDPConn)
		ifi, err := net.InterfaceByName(lab.GatewayLANLink)
		if err != nil {
			return err
		}
		return ipv4.NewPacketConn(rival).JoinGroup(ifi, &net.UDPAddr{IP: net.IP(ssdpGroup.Addr().AsSlice())})
	})
	if err != nil {
		t.Fatalf("rival listener: %v", err)
	}
	rivalGot := make(chan []byte, 64)
	rivalDone := make(chan struct{})
	go func() {
		defer close(rivalDone)
		buf := make([]byte, 64<<10)
		for {
			n, _, err := rival.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			select {
			case rivalGot <- slices.Clone(buf[:n]):
			default:
			}
		}
	}()
	t.Cleanup(func() {
		rival.Close()
		<-rivalDone
	})

	cfg := labConfig(lab, nil)
	cfg.Device.SearchPort = 49200
	srv := listenIn(t, lab, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve = %v", err)
		}
		srv.Close()
	})

	// Unicast searches from many source ports, which a port shared by
	// SO_REUSEPORT alone would spread over both listeners.
	req := msearch(t, gatewayFrom.String(), upnp.DeviceIGD2, 0)
	for i := range 16 {
		p := newPeer(t, lab.LAN[0], "eth0", 0, false)
		p.send(t, gatewayFrom, req)
		got := p.waitUntil(t, fmt.Sprintf("answer to unicast search %d", i), nil, func(got []datagram) bool {
			return hasResponse(got, upnp.DeviceIGD2, gatewayFrom)
		})
		if r := responses(got)[0]; r.SearchPort != 49200 {
			t.Errorf("response SEARCHPORT.UPNP.ORG = %d; want 49200", r.SearchPort)
		}
	}
	for len(rivalGot) > 0 {
		if b := <-rivalGot; bytes.HasPrefix(b, []byte("M-SEARCH")) {
			t.Errorf("the other listener received a unicast search: %q", b)
		}
	}

	// A multicast search reaches both.
	p := newPeer(t, lab.LAN[0], "eth0", 0, false)
	mreq := msearch(t, "", upnp.DeviceIGD2, 1)
	p.send(t, ssdpGroup, mreq)
	p.waitUntil(t, "answer to a multicast search", func() { p.send(t, ssdpGroup, mreq) }, func(got []datagram) bool {
		return hasResponse(got, upnp.DeviceIGD2, gatewayFrom)
	})
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	for seen := false; !seen; {
		select {
		case b := <-rivalGot:
			seen = bytes.Equal(b, mreq)
		case <-limit.C:
			t.Fatalf("the other listener did not receive the multicast search")
		}
	}

	// Unicast searches on SEARCHPORT.UPNP.ORG are answered from it.
	searchPort := netip.AddrPortFrom(gatewayLAN, 49200)
	req = msearch(t, searchPort.String(), upnp.SearchRootDevice, 0)
	p.send(t, searchPort, req)
	p.waitUntil(t, "answer on the search port", func() { p.send(t, searchPort, req) }, func(got []datagram) bool {
		return hasResponse(got, upnp.SearchRootDevice, searchPort)
	})
}
