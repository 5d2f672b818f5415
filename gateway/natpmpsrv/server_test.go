package natpmpsrv

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/natpmp"
)

// loopbackIndex is the interface index of lo, where these tests serve.
func loopbackIndex(t testing.TB) int {
	t.Helper()
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no loopback interface:", err)
	}
	return ifi.Index
}

// loopbackSubnet is the on-link prefix of conn's loopback address:
// 127.0.0.0/8 or ::1/128.
func loopbackSubnet(conn *net.UDPConn) netip.Prefix {
	a := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	if a.Is4() {
		return netip.MustParsePrefix("127.0.0.0/8")
	}
	return netip.PrefixFrom(a, 128)
}

// serveOn serves conn with srv on lo and returns a client connected to it.
func serveOn(t testing.TB, srv *Server, conn *net.UDPConn) *net.UDPConn {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(conn, loopbackIndex(t), loopbackSubnet(conn)) }()
	client, err := net.DialUDP(conn.LocalAddr().Network(), nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v; want ErrServerClosed", err)
		}
		conn.Close()
	})
	return client
}

// startServer serves table on 127.0.0.1 and returns a client socket
// connected to it.
func startServer(t testing.TB, table *gateway.Table) (*Server, *net.UDPConn) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Table: table}
	return srv, serveOn(t, srv, conn)
}

// ask sends req and returns the answer, retransmitting as a NAT-PMP client
// does (RFC 6886 §3.1): a packet that arrives before Serve has asked the
// kernel for each packet's interface is dropped.
func ask(t testing.TB, c *net.UDPConn, req []byte) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	var err error
	for range 20 {
		if _, err = c.Write(req); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		var n int
		if n, err = c.Read(buf); err == nil {
			return buf[:n]
		}
	}
	t.Fatalf("no answer to %x: %v", req, err)
	return nil
}

func mapReq(op natpmp.Opcode, iport, eport uint16, lifetime uint32) []byte {
	b, _ := natpmp.MappingRequest{Opcode: op, InternalPort: iport, SuggestedExternalPort: eport, Lifetime: lifetime}.AppendBinary(nil)
	return b
}

func askMapping(t testing.TB, c *net.UDPConn, req []byte) natpmp.MappingResponse {
	t.Helper()
	var m natpmp.MappingResponse
	if err := m.UnmarshalBinary(ask(t, c, req)); err != nil {
		t.Fatalf("answer to %x: %v", req, err)
	}
	return m
}

func newTable() *gateway.Table {
	return gateway.New(gateway.Config{Policy: gateway.Policy{
		MaxLifetime: time.Hour,
		Rules: []gateway.Rule{{Allow: true, ExternalPorts: gateway.DefaultPorts,
			Internal: netip.MustParsePrefix("127.0.0.0/8"), InternalPorts: gateway.DefaultPorts}},
	}})
}

func TestExternalAddress(t *testing.T) {
	table := newTable()
	_, c := startServer(t, table)
	var r natpmp.ExternalAddressResponse
	raw := ask(t, c, []byte{0, 0})
	if err := r.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if r.ResultCode != natpmp.NetworkFailure || binary.BigEndian.Uint32(raw[natpmp.ResponseHeaderLen:]) != 0 {
		t.Fatalf("without an external address: %x; want result 3 and address 0.0.0.0 (RFC 6886 §3.2)", raw)
	}
	table.SetExternalAddress(netip.MustParseAddr("203.0.113.1"))
	if err := r.UnmarshalBinary(ask(t, c, []byte{0, 0})); err != nil {
		t.Fatal(err)
	}
	if r.ResultCode != natpmp.Success || r.Address != netip.MustParseAddr("203.0.113.1") {
		t.Fatalf("with an external address: %+v; want success and 203.0.113.1", r)
	}
}

func TestMappingLifecycle(t *testing.T) {
	table := newTable()
	table.SetExternalAddress(netip.MustParseAddr("203.0.113.1"))
	_, c := startServer(t, table)
	self := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr()

	m := askMapping(t, c, mapReq(natpmp.OpMapTCP, 8080, 9090, 7200))
	if m.ResultCode != natpmp.Success || m.ExternalPort != 9090 || m.InternalPort != 8080 || m.Lifetime != 3600 {
		t.Fatalf("map = %+v; want success, 8080 -> 9090, lifetime capped at 3600", m)
	}
	if l, ok := table.Lookup(gateway.TCP, netip.AddrPortFrom(self, 8080)); !ok || l.ExternalPort != 9090 {
		t.Fatalf("the table holds %+v, %v; want a lease for the requester's own address", l, ok)
	}
	// The same internal port over UDP gets the same external port.
	if u := askMapping(t, c, mapReq(natpmp.OpMapUDP, 8080, 0, 60)); u.ExternalPort != 9090 {
		t.Fatalf("UDP mapping of the same port = %+v; want external port 9090", u)
	}
	// A renewal asking for another port keeps the first one.
	if r := askMapping(t, c, mapReq(natpmp.OpMapTCP, 8080, 1234, 60)); r.ExternalPort != 9090 || r.Lifetime != 60 {
		t.Fatalf("renewal = %+v; want port 9090 for 60 s", r)
	}
	// Deletion: external port and lifetime zero in the answer (§3.4).
	if d := askMapping(t, c, mapReq(natpmp.OpMapTCP, 8080, 0, 0)); d.ResultCode != natpmp.Success || d.ExternalPort != 0 || d.Lifetime != 0 || d.InternalPort != 8080 {
		t.Fatalf("delete = %+v; want success with port and lifetime 0", d)
	}
	if _, ok := table.Lookup(gateway.TCP, netip.AddrPortFrom(self, 8080)); ok {
		t.Fatal("the lease is still there after deletion")
	}
	// Deleting what does not exist succeeds too.
	if d := askMapping(t, c, mapReq(natpmp.OpMapTCP, 8080, 0, 0)); d.ResultCode != natpmp.Success {
		t.Fatalf("second delete = %+v; want success", d)
	}
	// Internal port 0, lifetime 0: every UDP mapping of this client goes.
	for _, p := range []uint16{3000, 3001} {
		askMapping(t, c, mapReq(natpmp.OpMapUDP, p, 0, 60))
	}
	if d := askMapping(t, c, mapReq(natpmp.OpMapUDP, 0, 0, 0)); d.ResultCode != natpmp.Success {
		t.Fatalf("delete all = %+v", d)
	}
	if n := table.Len(); n != 0 {
		t.Fatalf("%d leases left after delete all; want 0", n)
	}
}

func TestRefusals(t *testing.T) {
	table := newTable()
	table.SetExternalAddress(netip.MustParseAddr("203.0.113.1"))
	_, c := startServer(t, table)
	tests := []struct {
		name string
		req  []byte
		want natpmp.ResultCode
	}{
		{"internal port below the allowed range", mapReq(natpmp.OpMapTCP, 80, 0, 60), natpmp.NotAuthorized},
		{"version 1", []byte{1, 0}, natpmp.UnsupportedVersion},
		{"opcode 99", []byte{0, 99}, natpmp.UnsupportedOpcode},
		{"short", mapReq(natpmp.OpMapUDP, 5000, 0, 60)[:10], natpmp.UnsupportedOpcode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ask(t, c, tt.req)
			if got := natpmp.ResultCode(binary.BigEndian.Uint16(resp[2:4])); got != tt.want {
				t.Fatalf("answer to %x = %x, result %v; want %v", tt.req, resp, got, tt.want)
			}
		})
	}
}

// TestQuotas: a host at its quota and a full table are both result 4, Out
// of resources (RFC 6886 §3.5); a renewal passes.
func TestQuotas(t *testing.T) {
	for _, tt := range []struct {
		name   string
		policy gateway.Policy
	}{
		{"host quota", gateway.Policy{MaxPerHost: 1}},
		{"table full", gateway.Policy{MaxLeases: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.Rules = newTable().Policy().Rules
			table := gateway.New(gateway.Config{Policy: tt.policy})
			table.SetExternalAddress(netip.MustParseAddr("203.0.113.1"))
			_, c := startServer(t, table)
			if m := askMapping(t, c, mapReq(natpmp.OpMapTCP, 8080, 0, 60)); m.ResultCode != natpmp.Success {
				t.Fatalf("first mapping = %+v; want success", m)
			}
			if m := askMapping(t, c, mapReq(natpmp.OpMapUDP, 8080, 0, 60)); m.ResultCode != natpmp.OutOfResources {
				t.Fatalf("second mapping = %+v; want Out of resources", m)
			}
			if m := askMapping(t, c, mapReq(natpmp.OpMapTCP, 8080, 0, 60)); m.ResultCode != natpmp.Success {
				t.Fatalf("renewal = %+v; want success", m)
			}
		})
	}
}

func TestNoAnswerOnOtherInterface(t *testing.T) {
	table := newTable()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv := &Server{Table: table}
	done := make(chan error, 1)
	// Serve as if the listener's interface were another one than lo: the
	// packet arrives on lo, which is then not the served link.
	go func() { done <- srv.Serve(conn, loopbackIndex(t)+1000, loopbackSubnet(conn)) }()
	c, err := net.DialUDP("udp4", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0, 0}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	n, err := c.Read(make([]byte, 64))
	if err == nil {
		t.Fatalf("a packet from another interface was answered (%d bytes)", n)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read of the answer: %v; want no answer until the deadline", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	// Serve ran until Shutdown: the silence was its choice.
	if err := <-done; err != ErrServerClosed {
		t.Errorf("Serve returned %v; want ErrServerClosed", err)
	}
}

// BenchmarkMapRequest measures a NAT-PMP mapping request and its deletion
// through the server over loopback, without a kernel firewall.
func BenchmarkMapRequest(b *testing.B) {
	table := newTable()
	table.SetExternalAddress(netip.MustParseAddr("203.0.113.1"))
	_, c := startServer(b, table)
	ask(b, c, []byte{0, 0}) // until the server is up
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 64)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		port := uint16(1024 + i%60000)
		i++
		for _, lifetime := range []uint32{60, 0} {
			if _, err := c.Write(mapReq(natpmp.OpMapUDP, port, port, lifetime)); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
