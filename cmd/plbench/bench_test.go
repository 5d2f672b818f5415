package main

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/natpmp"
)

// benchSet is how many mappings the benchmarks renew over and over.
const benchSet = 20000

// natpmpConfig is a NAT-PMP run of n requests of op against 127.0.0.1:port.
func natpmpConfig(port, n, clients int, op string) config {
	return config{protocol: protoNATPMP, op: op, gateway: netip.MustParseAddr("127.0.0.1"), port: uint16(port),
		n: n, clients: clients, first: 20000, proto: "both", lifetime: 3600, timeout: 250 * time.Millisecond, tries: 4}
}

// startEcho runs a minimal NAT-PMP responder on 127.0.0.1 that grants
// every mapping request at once, so that a benchmark against it measures
// the generator, not a gateway. It returns the port.
func startEcho(tb testing.TB) int {
	tb.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var in [natpmp.MappingRequestLen]byte
		var out [natpmp.MappingResponseLen]byte
		for {
			n, from, err := conn.ReadFromUDPAddrPort(in[:])
			if err != nil {
				return
			}
			var req natpmp.MappingRequest
			if n != len(in) || req.UnmarshalBinary(in[:n]) != nil {
				continue
			}
			resp := natpmp.MappingResponse{Opcode: req.Opcode, InternalPort: req.InternalPort,
				ExternalPort: req.SuggestedExternalPort, Lifetime: req.Lifetime}
			b, _ := resp.AppendBinary(out[:0])
			_, _ = conn.WriteToUDPAddrPort(b, from)
		}
	}()
	tb.Cleanup(func() {
		conn.Close()
		<-done
	})
	return conn.LocalAddr().(*net.UDPAddr).Port
}

// benchNATPMP renews benchSet mappings b.N times in all with 16 clients
// and reports the requests per second.
func benchNATPMP(b *testing.B, port int) {
	pre := natpmpConfig(port, benchSet, 16, opMap)
	if res, err := runNATPMP(context.Background(), pre, nil); err != nil || res.OK != benchSet {
		b.Fatalf("mapping %d: %v, %+v", benchSet, err, res)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; {
		cfg := natpmpConfig(port, min(b.N-done, benchSet), 16, opRenew)
		res, err := runNATPMP(context.Background(), cfg, nil)
		if err != nil || res.Errors != 0 {
			b.Fatalf("renewal: %v, %+v", err, res)
		}
		done += cfg.n
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkNATPMPGateway measures plbench and the loopback natpmpsrv
// together, sharing the machine's cores.
func BenchmarkNATPMPGateway(b *testing.B) {
	table := newTable(b, gateway.Policy{})
	benchNATPMP(b, startNATPMP(b, table))
}

// BenchmarkNATPMPGenerator measures plbench alone against a responder that
// does no work: the generator's ceiling.
func BenchmarkNATPMPGenerator(b *testing.B) {
	benchNATPMP(b, startEcho(b))
}

// TestNATPMPNoAlloc checks that a NAT-PMP request allocates nothing once
// the client is set up.
func TestNATPMPNoAlloc(t *testing.T) {
	port := startEcho(t)
	cfg := natpmpConfig(port, 100, 1, opMap)
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.gateway, cfg.port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &natpmpClient{cfg: &cfg, conn: conn}
	if kind, _, _ := c.do(0); kind != "" {
		t.Fatalf("first request: %q", kind)
	}
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		i++
		if kind, _, _ := c.do(i % cfg.n); kind != "" {
			t.Fatalf("request %d: %q", i, kind)
		}
	})
	if allocs != 0 {
		t.Errorf("a NAT-PMP request allocates %v times; want 0", allocs)
	}
}

// TestNATPMPIgnoresStrays checks that an answer to another request, as a
// late duplicate is, does not end the wait for the right one.
func TestNATPMPIgnoresStrays(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		var in [64]byte
		for {
			n, from, err := conn.ReadFromUDPAddrPort(in[:])
			if err != nil {
				return
			}
			var req natpmp.MappingRequest
			if req.UnmarshalBinary(in[:n]) != nil {
				continue
			}
			good, _ := natpmp.MappingResponse{Opcode: req.Opcode, InternalPort: req.InternalPort, ExternalPort: 1, Lifetime: 7}.AppendBinary(nil)
			other, _ := natpmp.MappingResponse{Opcode: req.Opcode, InternalPort: req.InternalPort + 1, ExternalPort: 1, Lifetime: 7}.AppendBinary(nil)
			wrongOp := append([]byte(nil), good...)
			wrongOp[1] ^= 3 // 129 <-> 130: the other protocol
			for _, b := range [][]byte{other, wrongOp, {0xff}, good} {
				_, _ = conn.WriteToUDPAddrPort(b, from)
			}
		}
	}()
	cfg := natpmpConfig(conn.LocalAddr().(*net.UDPAddr).Port, 1, 1, opMap)
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.gateway, cfg.port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := &natpmpClient{cfg: &cfg, conn: c}
	kind, answered, _ := cl.do(0)
	if kind != "" || !answered {
		t.Fatalf("do = %q, %v; want success after the strays", kind, answered)
	}
	// The buffer holds the last packet read: the matching answer.
	if binary.BigEndian.Uint16(cl.buf[natpmp.ResponseHeaderLen:]) != 20000 {
		t.Errorf("matched answer for port %d; want 20000", binary.BigEndian.Uint16(cl.buf[natpmp.ResponseHeaderLen:]))
	}
}

// BenchmarkUPnPGateway measures plbench and the loopback upnpsrv together:
// renewals of 2000 mappings by AddPortMapping, 16 clients.
func BenchmarkUPnPGateway(b *testing.B) {
	const set = 2000
	table := newTable(b, gateway.Policy{})
	u := startUPnP(b, table)
	cfg := config{protocol: protoUPnP, op: opMap, url: u, n: set, clients: 16, first: 20000, proto: "both",
		lifetime: 3600, timeout: time.Second, tries: 4}
	if res, err := runUPnP(context.Background(), cfg, nil); err != nil || res.OK != set {
		b.Fatalf("mapping %d: %v, %+v", set, err, res)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; {
		cfg.op, cfg.n = opRenew, min(b.N-done, set)
		res, err := runUPnP(context.Background(), cfg, nil)
		if err != nil || res.Errors != 0 {
			b.Fatalf("renewal: %v, %+v", err, res)
		}
		done += cfg.n
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
