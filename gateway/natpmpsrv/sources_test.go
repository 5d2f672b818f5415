package natpmpsrv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portlease/portlease/natpmp"
	"github.com/portlease/portlease/pcp"
	"golang.org/x/net/ipv6"
)

// switchLimiter refuses every request while refuse is set, and records the
// last host asked about.
type switchLimiter struct {
	refuse atomic.Bool
	last   atomic.Value // netip.Addr
}

func (l *switchLimiter) Allow(host netip.Addr) bool {
	l.last.Store(host)
	return !l.refuse.Load()
}

func TestOnLink(t *testing.T) {
	v4 := &listener{subnet: netip.MustParsePrefix("198.51.100.1/24").Masked()}
	v6 := &listener{subnet: netip.MustParsePrefix("2001:db8:1::1/64").Masked(), v6: new(ipv6.PacketConn)}
	tests := []struct {
		l    *listener
		src  string
		want bool
	}{
		{v4, "198.51.100.10", true},
		{v4, "::ffff:198.51.100.10", true},
		{v4, "198.51.101.10", false},
		{v4, "203.0.113.5", false},
		{v4, "169.254.1.1", false},
		{v6, "2001:db8:1::10", true},
		{v6, "2001:db8:2::10", false},
		{v6, "fe80::1%lan0", true},
		{v6, "198.51.100.10", false},
	}
	for _, tt := range tests {
		if got := tt.l.onLink(netip.MustParseAddr(tt.src)); got != tt.want {
			t.Errorf("onLink(%s) on %s = %v; want %v", tt.src, tt.l.subnet, got, tt.want)
		}
	}
}

// TestOffLinkSourceGetsNoAnswer: a request from an address outside the
// served subnet is dropped, never answered (the client here is 127.0.0.1,
// the subnet 127.0.0.2/32).
func TestOffLinkSourceGetsNoAnswer(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv := &Server{Table: newTable(), PCP: &fakePCP{}}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(conn, loopbackIndex(t), netip.MustParsePrefix("127.0.0.2/32")) }()
	c, err := net.DialUDP("udp4", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for range 4 { // more than one, in case the first arrives before Serve reads
		for _, req := range [][]byte{{0, 0}, mapReq(natpmp.OpMapUDP, 5000, 5000, 60), make([]byte, pcp.HeaderLen)} {
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			t.Fatalf("a request from outside the subnet was answered: %x", buf[:n])
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read of the answer: %v; want no answer until the deadline", err)
		}
	}
	// The same server answers a host of the subnet: the silence above is
	// the source check's, not a server that is not serving.
	on, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer on.Close()
	if _, err := on.Write([]byte{0, 0}); err != nil {
		t.Fatal(err)
	}
	_ = on.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := on.Read(buf); err != nil {
		t.Fatalf("a request from inside the subnet: %v; want an answer", err)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-done; err != ErrServerClosed {
		t.Errorf("Serve returned %v; want ErrServerClosed", err)
	}
}

func TestServeNeedsSubnet(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := (&Server{Table: newTable()}).Serve(conn, loopbackIndex(t), netip.Prefix{}); err == nil {
		t.Fatal("Serve without a subnet returned nil")
	}
}

// TestOverRateRefused: a request over its host's rate is refused with
// NAT-PMP's Out of resources or PCP's NO_RESOURCES and a short lifetime,
// and reaches neither the core nor the PCP handler; other packets get no
// answer.
func TestOverRateRefused(t *testing.T) {
	table := newTable()
	table.SetExternalAddress(netip.MustParseAddr("203.0.113.1"))
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	lim := &switchLimiter{}
	c := serveOn(t, &Server{Table: table, PCP: &fakePCP{}, Limiter: lim}, conn)
	ask(t, c, []byte{0, 0}) // until the server is up
	if got := lim.last.Load(); got != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("limiter asked about %v; want the client, 127.0.0.1", got)
	}
	lim.refuse.Store(true)

	var ext natpmp.ExternalAddressResponse
	if err := ext.UnmarshalBinary(ask(t, c, []byte{0, 0})); err != nil || ext.ResultCode != natpmp.OutOfResources {
		t.Fatalf("external address over the rate: %+v, %v; want result %v", ext, err, natpmp.OutOfResources)
	}
	m := askMapping(t, c, mapReq(natpmp.OpMapTCP, 5000, 5000, 60))
	if m.ResultCode != natpmp.OutOfResources || m.InternalPort != 5000 || m.ExternalPort != 0 {
		t.Fatalf("mapping over the rate: %+v; want result %v for internal port 5000", m, natpmp.OutOfResources)
	}
	if n := len(table.Leases()); n != 0 {
		t.Fatalf("the core holds %d leases after a refused request", n)
	}

	req, err := pcp.Request{Opcode: pcp.OpAnnounce, Client: netip.MustParseAddr("127.0.0.1")}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := ask(t, c, req)
	if bytes.HasPrefix(resp, []byte("pcp:")) {
		t.Fatal("a PCP request over the rate reached the PCP handler")
	}
	var r pcp.Response
	if err := r.UnmarshalBinary(resp); err != nil || r.Result != pcp.NoResources || r.Lifetime != pcp.ShortErrorLifetime {
		t.Fatalf("PCP over the rate: %+v, %v; want %v with lifetime %d", r, err, pcp.NoResources, pcp.ShortErrorLifetime)
	}

	for _, junk := range [][]byte{{2, 1, 0, 0}, {0, 0x80}, {0}} {
		if _, err := c.Write(junk); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 64)
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("a malformed packet over the rate was answered: %x (result %d)", buf[:n], binary.BigEndian.Uint16(buf[2:4]))
	}
}
