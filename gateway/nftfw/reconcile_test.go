package nftfw

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/benchmaps"
	"github.com/portlease/portlease/internal/netlab"
)

// TestReconcile checks that Reconcile adopts, replaces, adds and removes
// elements of a table left by an earlier Firewall, and that Apply works on
// from the index it leaves.
func TestReconcile(t *testing.T) {
	ns := newNS(t)
	ctx := context.Background()
	hour := func(m gateway.Mapping) gateway.Mapping { m.Lifetime = time.Hour; return m }
	kept := hour(tcpMapping(8080, "198.51.100.10:80"))
	moved := tcpMapping(8081, "198.51.100.10:81")
	orphan := udpMapping(9000, "198.51.100.12:90")
	// Two mappings of one endpoint, made newest first: the outbound
	// element holds 7001.
	shared1, shared0 := tcpMapping(7001, "198.51.100.10:70"), tcpMapping(7000, "198.51.100.10:70")
	f := newFirewall(t, ns, Config{})
	if err := f.Apply(ctx, []gateway.Mapping{kept, moved, orphan, shared1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(ctx, []gateway.Mapping{shared0}, nil); err != nil {
		t.Fatal(err)
	}

	g := newFirewall(t, ns, Config{})
	added := udpMapping(5000, "198.51.100.11:5001")
	movedNow := tcpMapping(8081, "198.51.100.11:81")
	want := []gateway.Mapping{kept, movedNow, added, shared0, shared1}
	r, err := g.Reconcile(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if wantR := (gateway.Reconciled{Adopted: 3, Added: 2, Removed: 2}); r != wantR {
		t.Errorf("Reconcile = %+v; want %+v", r, wantR)
	}
	wantIn := []string{
		"tcp 7000 -> 198.51.100.10:70", "tcp 7001 -> 198.51.100.10:70",
		"tcp 8080 -> 198.51.100.10:80", "tcp 8081 -> 198.51.100.11:81", "udp 5000 -> 198.51.100.11:5001",
	}
	wantOut := []string{
		"tcp 198.51.100.10:70 -> 7000", "tcp 198.51.100.10:80 -> 8080",
		"tcp 198.51.100.11:81 -> 8081", "udp 198.51.100.11:5001 -> 5000",
	}
	check := func(when string, wantIn, wantOut []string) {
		t.Helper()
		if got := inboundElements(t, g); !slices.Equal(got, wantIn) {
			t.Errorf("%s: inbound %v; want %v", when, got, wantIn)
		}
		if got := outboundElements(t, g); !slices.Equal(got, wantOut) {
			t.Errorf("%s: outbound %v; want %v", when, got, wantOut)
		}
		checkState(t, g)
	}
	check("after Reconcile", wantIn, wantOut)
	if g.Len() != len(wantIn) {
		t.Errorf("Len = %d; want %d", g.Len(), len(wantIn))
	}

	// Nothing to do: no transaction at all.
	mon := startMonitor(t, ns)
	r, err = g.Reconcile(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if wantR := (gateway.Reconciled{Adopted: 5}); r != wantR {
		t.Errorf("second Reconcile = %+v; want %+v", r, wantR)
	}
	if n := mon.waitGenerations(t, time.Second); n != 0 {
		t.Errorf("a Reconcile with nothing to do committed %d transactions; want 0", n)
	}

	// A kernel timeout far from the one wanted is set again.
	want[0].Lifetime = 2 * time.Hour
	if r, err = g.Reconcile(ctx, want); err != nil {
		t.Fatal(err)
	}
	if wantR := (gateway.Reconciled{Adopted: 5}); r != wantR {
		t.Errorf("Reconcile with a longer lifetime = %+v; want %+v", r, wantR)
	}
	ms, err := g.Elements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ExternalPort == 8080 && (m.Lifetime < 2*time.Hour-time.Minute || m.Lifetime > 2*time.Hour) {
			t.Errorf("lifetime of tcp 8080 after Reconcile = %v; want about 2h", m.Lifetime)
		}
	}

	// Apply works on from the index.
	if err := g.Apply(ctx, []gateway.Mapping{tcpMapping(8082, "198.51.100.10:70")}, []gateway.Mapping{shared0, added}); err != nil {
		t.Fatal(err)
	}
	check("after Apply", []string{
		"tcp 7001 -> 198.51.100.10:70", "tcp 8080 -> 198.51.100.10:80",
		"tcp 8081 -> 198.51.100.11:81", "tcp 8082 -> 198.51.100.10:70",
	}, []string{
		"tcp 198.51.100.10:70 -> 7001", "tcp 198.51.100.10:80 -> 8080", "tcp 198.51.100.11:81 -> 8081",
	})
}

// checkState checks that the Firewall's State agrees with the kernel's
// maps: as many mappings as inbound elements, and the owner of each
// outbound element.
func checkState(t *testing.T, f *Firewall) {
	t.Helper()
	in := inboundElements(t, f)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st.Len() != len(in) {
		t.Errorf("State holds %d mappings; the kernel %d", f.st.Len(), len(in))
	}
	elems, err := f.conn.GetSetElements(f.rs.outbound)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range elems {
		ep, err := decodeOutboundKey(e.Key)
		if err != nil {
			t.Fatal(err)
		}
		port := uint16(e.Val[0])<<8 | uint16(e.Val[1])
		if owner, ok := f.st.Owner(ep.proto, ep.internal()); !ok || owner != port {
			t.Errorf("State: owner of %v %v = %d, %v; the kernel's element holds %d", ep.proto, ep.internal(), owner, ok, port)
		}
	}
}

// TestReconcileMany reconciles a table with more elements than one
// transaction carries.
func TestReconcileMany(t *testing.T) {
	ns := newNS(t)
	ctx := context.Background()
	f := newFirewall(t, ns, Config{})
	const n = 40000
	want := make([]gateway.Mapping, n)
	for i := range want {
		want[i] = benchmaps.Mapping(i)
	}
	r, err := f.Reconcile(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if r != (gateway.Reconciled{Added: n}) {
		t.Errorf("Reconcile into an empty table = %+v; want %d added", r, n)
	}
	ns.nft(t, "flush", "map", "inet", DefaultTable, inboundName)
	r, err = f.Reconcile(ctx, want[:n/2])
	if err != nil {
		t.Fatal(err)
	}
	if r != (gateway.Reconciled{Added: n / 2}) {
		t.Errorf("Reconcile after a flush of the inbound map = %+v; want %d added", r, n/2)
	}
	ms, err := f.Elements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != n/2 || len(outboundElements(t, f)) != n/2 {
		t.Errorf("kernel holds %d inbound and %d outbound elements; want %d each", len(ms), len(outboundElements(t, f)), n/2)
	}
}

// gatewayLab is a lab whose gateway runs a Firewall with a TCP server
// behind mapping tcp 18080 on LAN host 0.
type gatewayLab struct {
	lab *netlab.Lab
	gw  testNS
	ext string
	m   gateway.Mapping
}

func newGatewayLab(t *testing.T) *gatewayLab {
	t.Helper()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	gw := labGateway(t, lab)
	ln, err := lab.LAN[0].Listen("tcp4", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	netlab.ServePeerAddr(t, ln)
	m := tcpMapping(18080, "198.51.100.10:8080")
	m.Lifetime = time.Hour
	return &gatewayLab{
		lab: lab,
		gw:  gw,
		ext: lab.GatewayWANAddr4.String(),
		m:   m,
	}
}

// firewall makes a Firewall in the lab's gateway, with its external
// address set when setExt.
func (l *gatewayLab) firewall(t *testing.T, setExt bool) *Firewall {
	t.Helper()
	f := newFirewall(t, l.gw, Config{ExternalInterface: l.lab.GatewayWANLink})
	if setExt {
		if err := f.SetExternalAddress(context.Background(), l.lab.GatewayWANAddr4); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// reaches checks that the WAN host and LAN host 1 (hairpin) reach the
// server through the mapping.
func (l *gatewayLab) reaches(t *testing.T, when string) {
	t.Helper()
	if _, err := netlab.AskPeerAddr(l.lab.WAN, l.ext+":18080"); err != nil {
		t.Errorf("%s: WAN dial %s:18080: %v", when, l.ext, err)
	}
	if _, err := netlab.AskPeerAddr(l.lab.LAN[1], l.ext+":18080"); err != nil {
		t.Errorf("%s: LAN host 1 dial %s:18080 (hairpin): %v", when, l.ext, err)
	}
}

// TestNewKeepsTraffic checks that a New over the table of an earlier run
// leaves its mappings forwarding before any Reconcile.
func TestNewKeepsTraffic(t *testing.T) {
	l := newGatewayLab(t)
	f := l.firewall(t, true)
	if err := f.Apply(context.Background(), []gateway.Mapping{l.m}, nil); err != nil {
		t.Fatal(err)
	}
	l.reaches(t, "before the restart")
	g := l.firewall(t, false)
	l.reaches(t, "after New")
	if r, err := g.Reconcile(context.Background(), []gateway.Mapping{l.m}); err != nil || r != (gateway.Reconciled{Adopted: 1}) {
		t.Errorf("Reconcile after New = %+v, %v; want 1 adopted", r, err)
	}
	l.reaches(t, "after Reconcile")
}

// TestReconcileHeals checks that Reconcile installs the table again after
// someone removed it, with the external address and every mapping.
func TestReconcileHeals(t *testing.T) {
	l := newGatewayLab(t)
	f := l.firewall(t, true)
	ctx := context.Background()
	want := []gateway.Mapping{l.m, udpMapping(15000, "198.51.100.10:5001")}
	if _, err := f.Reconcile(ctx, want); err != nil {
		t.Fatal(err)
	}
	l.reaches(t, "before")
	for _, c := range []struct {
		cmd  []string
		want gateway.Reconciled
	}{
		{[]string{"delete", "table", "inet", DefaultTable}, gateway.Reconciled{Added: 2}},
		{[]string{"flush", "ruleset"}, gateway.Reconciled{Added: 2}},
		{[]string{"delete", "chain", "inet", DefaultTable, forwardName}, gateway.Reconciled{Adopted: 2}},
		{[]string{"flush", "set", "inet", DefaultTable, extaddrName}, gateway.Reconciled{Adopted: 2}},
	} {
		l.gw.nft(t, c.cmd...)
		r, err := f.Reconcile(ctx, want)
		if err != nil {
			t.Fatalf("Reconcile after nft %v: %v", c.cmd, err)
		}
		if r != c.want {
			t.Errorf("Reconcile after nft %v = %+v; want %+v", c.cmd, r, c.want)
		}
		l.reaches(t, "after nft "+strings.Join(c.cmd, " ")+" and Reconcile")
	}
	if err := f.Apply(ctx, nil, want); err != nil {
		t.Fatalf("Apply after the repairs: %v", err)
	}
}
