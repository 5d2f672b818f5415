package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/natpmpsrv"
	"github.com/portlease/portlease/gateway/pcpsrv"
	"github.com/portlease/portlease/gateway/upnpsrv"
)

// extAddr is the external address of the test gateways (RFC 5737).
var extAddr = netip.MustParseAddr("203.0.113.1")

// loopbackIndex is the interface index of lo, the only link natpmpsrv
// answers on in these tests.
func loopbackIndex(t testing.TB) int {
	t.Helper()
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no loopback interface:", err)
	}
	return ifi.Index
}

// newTable returns a lease table of policy with extAddr as its address.
func newTable(t testing.TB, policy gateway.Policy) *gateway.Table {
	t.Helper()
	table := gateway.New(gateway.Config{Policy: policy})
	table.SetExternalAddress(extAddr)
	t.Cleanup(table.Close)
	return table
}

// startNATPMP serves table over NAT-PMP and PCP (one port, as portleased
// does) on 127.0.0.1 and returns the port.
func startNATPMP(t testing.TB, table *gateway.Table) int {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := &natpmpsrv.Server{Table: table, PCP: &pcpsrv.Server{Table: table}}
	idx := loopbackIndex(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(conn, idx, netip.MustParsePrefix("127.0.0.0/8")) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-done
		conn.Close()
	})
	return conn.LocalAddr().(*net.UDPAddr).Port
}

// startUPnP serves table as a UPnP IGD on 127.0.0.1 and returns the URL of
// its description.
func startUPnP(t testing.TB, table *gateway.Table) string {
	t.Helper()
	srv, err := upnpsrv.New(upnpsrv.Config{
		Table:   table,
		UUID:    "5e1f0c2a-8d3b-4c6e-9f70-0123456789ab",
		Clients: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-done
	})
	return "http://" + ln.Addr().String() + upnpsrv.DescriptionPath
}

// plbench runs the command with args and -json -quiet and returns its exit
// status, the decoded result (nil without one) and its standard error.
func plbench(t *testing.T, args ...string) (int, map[string]any, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(args, "-json", "-quiet"), &stdout, &stderr)
	if stdout.Len() == 0 {
		return code, nil, stderr.String()
	}
	var res map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("plbench %v printed %q: %v", args, stdout.String(), err)
	}
	return code, res, stderr.String()
}

// jsonKeys are the keys the lab reads, all of them always present.
var jsonKeys = []string{"protocol", "op", "requests", "ok", "errors", "errors_by_kind", "seconds", "rate",
	"p50_ms", "p90_ms", "p99_ms", "max_ms", "clients", "stopped_early"}

// checkRun checks a run that must have had n successful requests and
// nothing else.
func checkRun(t *testing.T, args []string, n int) map[string]any {
	t.Helper()
	code, res, stderr := plbench(t, args...)
	if code != 0 || res == nil {
		t.Fatalf("plbench %v = exit %d, %v, stderr %q; want 0 and a result", args, code, res, stderr)
	}
	if len(res) != len(jsonKeys) {
		t.Errorf("plbench %v printed %d keys; want %d: %v", args, len(res), len(jsonKeys), res)
	}
	for _, k := range jsonKeys {
		if _, ok := res[k]; !ok {
			t.Errorf("plbench %v: no key %q in %v", args, k, res)
		}
	}
	if res["ok"] != float64(n) || res["requests"] != float64(n) || res["errors"] != float64(0) || res["stopped_early"] != false {
		t.Fatalf("plbench %v = %v; want %d requests, all ok", args, res, n)
	}
	if p50, max := res["p50_ms"].(float64), res["max_ms"].(float64); p50 <= 0 || max < p50 {
		t.Errorf("plbench %v: p50 %v ms, max %v ms; want 0 < p50 <= max", args, p50, max)
	}
	return res
}

func TestNATPMPLifecycle(t *testing.T) {
	table := newTable(t, gateway.Policy{})
	port := strconv.Itoa(startNATPMP(t, table))
	base := []string{"natpmp", "-gateway", "127.0.0.1", "-port", port, "-n", "500", "-c", "8"}
	tests := []struct {
		op     string
		leases int
	}{
		{"map", 500},
		{"renew", 500},
		{"delete", 0},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			res := checkRun(t, append(base, "-op", tt.op), 500)
			if res["protocol"] != "natpmp" || res["op"] != tt.op || res["clients"] != float64(8) {
				t.Errorf("result %v; want protocol natpmp, op %s, 8 clients", res, tt.op)
			}
			if n := table.Len(); n != tt.leases {
				t.Fatalf("after %s the table holds %d leases; want %d", tt.op, n, tt.leases)
			}
		})
	}
}

// TestPCPLifecycle: plbench pcp maps, renews (the same nonces: the table
// keeps the leases) and deletes (with those nonces) over PCP.
func TestPCPLifecycle(t *testing.T) {
	table := newTable(t, gateway.Policy{})
	port := strconv.Itoa(startNATPMP(t, table))
	base := []string{"pcp", "-gateway", "127.0.0.1", "-port", port, "-n", "500", "-c", "8"}
	for _, tt := range []struct {
		op     string
		leases int
	}{
		{"map", 500},
		{"renew", 500},
		{"delete", 0},
	} {
		t.Run(tt.op, func(t *testing.T) {
			res := checkRun(t, append(base, "-op", tt.op), 500)
			if res["protocol"] != "pcp" || res["op"] != tt.op {
				t.Errorf("result %v; want protocol pcp, op %s", res, tt.op)
			}
			if n := table.Len(); n != tt.leases {
				t.Fatalf("after %s the table holds %d leases; want %d", tt.op, n, tt.leases)
			}
			for _, l := range table.Leases() {
				if l.Origin != gateway.OriginPCP || l.Nonce == ([12]byte{}) {
					t.Fatalf("lease %+v; want a PCP lease with a nonce", l)
				}
			}
		})
	}
}

func TestUPnPLifecycle(t *testing.T) {
	table := newTable(t, gateway.Policy{})
	u := startUPnP(t, table)
	base := []string{"upnp", "-url", u, "-n", "200", "-c", "8"}
	for _, tt := range []struct {
		op     string
		leases int
	}{{"map", 200}, {"renew", 200}, {"delete", 0}} {
		t.Run(tt.op, func(t *testing.T) {
			res := checkRun(t, append(base, "-op", tt.op), 200)
			if res["protocol"] != "upnp" {
				t.Errorf("protocol = %v; want upnp", res["protocol"])
			}
			if n := table.Len(); n != tt.leases {
				t.Fatalf("after %s the table holds %d leases; want %d", tt.op, n, tt.leases)
			}
		})
	}
	// A mapping for another host's address is refused in secure mode:
	// the UPnP error code is counted by kind.
	code, res, stderr := plbench(t, append(base, "-n", "4", "-internal", "127.0.0.2")...)
	if code != 0 || res["errors"] != float64(4) {
		t.Fatalf("mapping for another host = exit %d, %v, %q; want 4 errors", code, res, stderr)
	}
	kinds := res["errors_by_kind"].(map[string]any)
	if len(kinds) != 1 || !strings.HasPrefix(firstKey(kinds), "upnp ") {
		t.Errorf("errors_by_kind = %v; want one UPnP error code", kinds)
	}
}

// firstKey returns a key of m.
func firstKey(m map[string]any) string {
	for k := range m {
		return k
	}
	return ""
}

func TestOutOfResources(t *testing.T) {
	table := newTable(t, gateway.Policy{Ports: gateway.PortRange{Low: 20000, High: 20009}})
	port := strconv.Itoa(startNATPMP(t, table))
	// 20 internal ports per protocol for 10 external ports per protocol.
	code, res, stderr := plbench(t, "natpmp", "-gateway", "127.0.0.1", "-port", port, "-n", "40", "-c", "4")
	if code != 0 || res == nil {
		t.Fatalf("exit %d, %v, %q; want 0 and a result", code, res, stderr)
	}
	kinds := res["errors_by_kind"].(map[string]any)
	if res["ok"] != float64(20) || res["errors"] != float64(20) || kinds["result 4"] != float64(20) {
		t.Fatalf("result %v; want 20 ok and 20 errors under \"result 4\"", res)
	}
	if n := table.Len(); n != 20 {
		t.Fatalf("the table holds %d leases; want 20", n)
	}
}

func TestUnreachable(t *testing.T) {
	// A socket nobody reads: requests vanish without an ICMP error.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port := strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port)
	code, res, stderr := plbench(t, "natpmp", "-gateway", "127.0.0.1", "-port", port, "-n", "10", "-c", "2",
		"-timeout", "20ms", "-tries", "2")
	if code != 1 || !strings.Contains(stderr, "unreachable") || !strings.Contains(stderr, "127.0.0.1:"+port) {
		t.Fatalf("silent gateway = exit %d, stderr %q; want 1 and a message naming it", code, stderr)
	}
	if res == nil || res["errors_by_kind"].(map[string]any)["timeout"] != float64(10) {
		t.Errorf("silent gateway result %v; want 10 timeouts", res)
	}

	// A UPnP URL where nothing listens.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, _, stderr = plbench(t, "upnp", "-url", "http://"+addr+"/rootDesc.xml", "-n", "10")
	if code != 1 || !strings.Contains(stderr, "unreachable") {
		t.Fatalf("absent IGD = exit %d, stderr %q; want 1 and a clear message", code, stderr)
	}
}

func TestUsage(t *testing.T) {
	tests := [][]string{
		{},
		{"pcp"},
		{"natpmp"},
		{"natpmp", "-gateway", "nowhere"},
		{"natpmp", "-gateway", "127.0.0.1", "-op", "sweep"},
		{"natpmp", "-gateway", "127.0.0.1", "-proto", "sctp"},
		{"natpmp", "-gateway", "127.0.0.1", "-n", "0"},
		{"natpmp", "-gateway", "127.0.0.1", "-c", "0"},
		{"natpmp", "-gateway", "127.0.0.1", "-first", "65000", "-n", "2000", "-proto", "tcp"},
		{"natpmp", "-gateway", "127.0.0.1", "-bogus"},
		{"natpmp", "-gateway", "127.0.0.1", "extra"},
		{"upnp"},
		{"upnp", "-url", "ftp://x/"},
	}
	for _, args := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "plbench -h") {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q; want 1, a message and a pointer to -h", args, code, stdout.String(), stderr.String())
		}
	}
	for _, args := range [][]string{{"-h"}, {"natpmp", "-h"}, {"upnp", "-help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "EXIT STATUS") {
			t.Errorf("run(%q) = %d, stdout %.40q; want 0 and the manual", args, code, stdout.String())
		}
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 200; i++ {
		s = append(s, time.Duration(i))
	}
	tests := []struct {
		samples []time.Duration
		p       int
		want    time.Duration
	}{
		{nil, 50, 0},
		{s[:1], 99, 1},
		{s[:10], 50, 5},
		{s[:10], 90, 9},
		{s[:10], 99, 10},
		{s, 50, 100},
		{s, 99, 198},
	}
	for _, tt := range tests {
		if got := percentile(tt.samples, tt.p); got != tt.want {
			t.Errorf("percentile(%d samples, %d) = %v; want %v", len(tt.samples), tt.p, got, tt.want)
		}
	}
}

func TestRequestSet(t *testing.T) {
	tests := []struct {
		proto string
		i     int
		tcp   bool
		port  uint16
	}{
		{"both", 0, true, 20000},
		{"both", 1, false, 20000},
		{"both", 5, false, 20002},
		{"tcp", 5, true, 20005},
		{"udp", 5, false, 20005},
	}
	for _, tt := range tests {
		c := config{proto: tt.proto, first: 20000}
		if tcp, port := c.request(tt.i); tcp != tt.tcp || port != tt.port {
			t.Errorf("request(%d) with -proto %s = %v, %d; want %v, %d", tt.i, tt.proto, tcp, port, tt.tcp, tt.port)
		}
	}
}

func TestRateAndDuration(t *testing.T) {
	table := newTable(t, gateway.Policy{})
	port := strconv.Itoa(startNATPMP(t, table))
	base := []string{"natpmp", "-gateway", "127.0.0.1", "-port", port, "-c", "4"}

	res := checkRun(t, append(base, "-n", "50", "-rate", "200"), 50)
	if s := res["seconds"].(float64); s < 0.2 {
		t.Errorf("50 requests at 200/s took %v s; want at least 0.245", s)
	}

	code, res, stderr := plbench(t, append(base, "-n", "1000", "-rate", "100", "-duration", "200ms", "-op", "delete")...)
	if code != 0 || res == nil {
		t.Fatalf("exit %d, %v, %q; want 0", code, res, stderr)
	}
	if n := res["requests"].(float64); res["stopped_early"] != true || n < 10 || n > 30 {
		t.Errorf("-rate 100 -duration 200ms: %v; want about 20 requests and stopped_early", res)
	}
}

// slowFirewall takes d over every change, like a kernel that lags.
type slowFirewall struct{ d time.Duration }

func (f slowFirewall) Apply(context.Context, []gateway.Mapping, []gateway.Mapping) error {
	time.Sleep(f.d)
	return nil
}

func (slowFirewall) Reconcile(context.Context, []gateway.Mapping) (gateway.Reconciled, error) {
	return gateway.Reconciled{}, nil
}

func (slowFirewall) List(context.Context) ([]gateway.Mapping, error)       { return nil, nil }
func (slowFirewall) SetExternalAddress(context.Context, netip.Addr) error  { return nil }
func (slowFirewall) SetInterfaces(context.Context, string, []string) error { return nil }
func (slowFirewall) Watch(ctx context.Context, _, _ func()) error          { <-ctx.Done(); return ctx.Err() }
func (slowFirewall) Release() error                                        { return nil }
func (slowFirewall) Close() error                                          { return nil }

// TestRateLatencyCountsTheBacklog: under -rate, a request that goes out
// late because its client still waited for the one before has that wait
// in its latency (no coordinated omission). One client, ten requests due a
// millisecond apart, a gateway that takes at least 20 ms each: the last
// goes out no sooner than 180 ms after the start, 171 ms after its turn,
// and its latency is at least 191 ms; measured from its send it would be
// about 20 ms.
func TestRateLatencyCountsTheBacklog(t *testing.T) {
	table := gateway.New(gateway.Config{Firewall: slowFirewall{20 * time.Millisecond}})
	table.SetExternalAddress(extAddr)
	t.Cleanup(table.Close)
	port := strconv.Itoa(startNATPMP(t, table))
	base := []string{"natpmp", "-gateway", "127.0.0.1", "-port", port, "-c", "1"}
	// The server may drop what arrives before it set its socket up: one
	// request first, answered once it serves.
	checkRun(t, append(base, "-n", "1", "-op", "delete", "-timeout", "100ms", "-tries", "50"), 1)
	res := checkRun(t, append(base, "-n", "10", "-rate", "1000", "-timeout", "5s"), 10)
	if max := res["max_ms"].(float64); max < 191 {
		t.Errorf("max_ms = %v; want at least 191, the backlog of a gateway slower than the rate", max)
	}
	if p50 := res["p50_ms"].(float64); p50 < 20+4*19 {
		t.Errorf("p50_ms = %v; want at least %d: the fifth request is due at 4 ms and goes out after 80 ms", p50, 20+4*19)
	}
}

func TestTextOutput(t *testing.T) {
	table := newTable(t, gateway.Policy{Ports: gateway.PortRange{Low: 20000, High: 20000}})
	port := strconv.Itoa(startNATPMP(t, table))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"natpmp", "-gateway", "127.0.0.1", "-port", port, "-n", "3", "-proto", "tcp", "-quiet"}, &stdout, &stderr)
	out := stdout.String()
	for _, want := range []string{"natpmp map: 3 requests, 1 ok, 2 errors", "latency ms: p50", "\n  result 4: 2\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if code != 0 || stderr.Len() != 0 {
		t.Errorf("exit %d, stderr %q; want 0 and nothing", code, stderr.String())
	}
	t.Log("\n" + out)
}
