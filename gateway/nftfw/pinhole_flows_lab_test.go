package nftfw

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	nfct "github.com/ti-mo/conntrack"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/netlab"
)

// hasUDPEntry reports whether the gateway holds a conntrack entry whose
// original direction goes from src to dst over UDP, with its id; it fails
// the test when the dump fails.
func hasUDPEntry(t *testing.T, gw testNS, src, dst netip.AddrPort) (uint32, bool) {
	t.Helper()
	c, err := nfct.Dial(&netlink.Config{NetNS: gw.fd})
	if err != nil {
		t.Fatalf("conntrack dial: %v", err)
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		t.Fatalf("conntrack dump: %v", err)
	}
	for _, f := range flows {
		o := f.TupleOrig
		if o.Proto.Protocol == uint8(gateway.UDP) && o.IP.SourceAddress == src.Addr() && o.Proto.SourcePort == src.Port() &&
			o.IP.DestinationAddress == dst.Addr() && o.Proto.DestinationPort == dst.Port() {
			return f.ID, true
		}
	}
	return 0, false
}

// TestForgetPinholeFlows is issue 9's conntrack check for IPv6 pinholes:
// through the gateway's default-drop forward chain, which accepts
// established connections whatever made them, a UDP flow from the WAN host
// stops reaching the LAN host within a second of its pinhole's removal;
// when a pinhole's filters change, the flow of the peer they no longer
// admit loses its conntrack entry, that of the peer they admit keeps it;
// the LAN host's own outbound flow from a removed pinhole's port keeps it.
func TestForgetPinholeFlows(t *testing.T) {
	l := newPinholeLab(t)
	ctx := t.Context()
	lan, wanHost := l.lab.LAN[0], l.lab.WAN
	wan0 := netip.AddrPortFrom(wanHost.Addr6, 40000) // to the unfiltered pinhole
	wan1, wan2 := netip.AddrPortFrom(wanHost.Addr6, 40002), netip.AddrPortFrom(l.wan2, 40001)
	held := netip.AddrPortFrom(lan.Addr6, 5001)
	filtered := netip.AddrPortFrom(lan.Addr6, 5002)
	udpPinhole := func(ep netip.AddrPort, filters ...gateway.Filter) gateway.Mapping {
		m := pinhole(ep.String(), time.Hour, filters...)
		m.Protocol = gateway.UDP
		return m
	}
	both := udpPinhole(filtered, filterOf(wan1.Addr().String()+"/128", 0), filterOf(wan2.Addr().String()+"/128", 0))
	if err := l.f.Apply(ctx, []gateway.Mapping{udpPinhole(held), both}, nil); err != nil {
		t.Fatal(err)
	}
	heldSink := netlab.ListenUDPSink(t, lan, held.String())
	filteredSink := netlab.ListenUDPSink(t, lan, filtered.String())
	outSink := netlab.ListenUDPSink(t, wanHost, "[::]:9998")
	netlab.SendUDPFlow(t, wanHost, wan0.String(), held.String())
	netlab.SendUDPFlow(t, wanHost, wan1.String(), filtered.String())
	netlab.SendUDPFlow(t, wanHost, wan2.String(), filtered.String())
	out := netip.AddrPortFrom(lan.Addr6, 5003)
	netlab.SendUDPFlow(t, lan, out.String(), netip.AddrPortFrom(wanHost.Addr6, 9998).String())
	waitFor(t, 5*time.Second, "the flows to arrive", func() bool {
		return heldSink.Count() > 0 && filteredSink.Count() > 0 && outSink.Count() > 0
	})
	outTo := netip.AddrPortFrom(wanHost.Addr6, 9998)
	for _, e := range [][2]netip.AddrPort{{wan0, held}, {wan1, filtered}, {wan2, filtered}, {out, outTo}} {
		if _, ok := hasUDPEntry(t, l.gw, e[0], e[1]); !ok {
			t.Fatalf("no conntrack entry udp %v -> %v", e[0], e[1])
		}
	}
	admittedID, _ := hasUDPEntry(t, l.gw, wan1, filtered)
	outID, _ := hasUDPEntry(t, l.gw, out, outTo)

	// The filters narrow to the first peer.
	one := udpPinhole(filtered, filterOf(wan1.Addr().String()+"/128", 0))
	if err := l.f.Apply(ctx, []gateway.Mapping{one}, nil); err != nil {
		t.Fatal(err)
	}
	// Its entry goes in the background, within the deadline of a deletion.
	waitFor(t, forgetDeadline, "the conntrack entry of a peer the filters no longer admit to go", func() bool {
		_, ok := hasUDPEntry(t, l.gw, wan2, filtered)
		return !ok
	})
	if id, ok := hasUDPEntry(t, l.gw, wan1, filtered); !ok || id != admittedID {
		t.Errorf("the admitted peer's conntrack entry was replaced (id %d, was %d, held %v)", id, admittedID, ok)
	}

	// The pinhole goes (as when it expires): its flow stops at once.
	if err := l.f.Apply(ctx, nil, []gateway.Mapping{udpPinhole(held)}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	time.Sleep(forgetDeadline + 500*time.Millisecond)
	if last := heldSink.Last(); last.After(deleted.Add(forgetDeadline)) {
		t.Errorf("the LAN host still received the flow %v after its pinhole was removed", last.Sub(deleted))
	}
	if id, ok := hasUDPEntry(t, l.gw, out, outTo); !ok || id != outID {
		t.Errorf("the LAN host's outbound flow lost its conntrack entry (id %d, was %d, held %v)", id, outID, ok)
	}
	if filteredSink.Last().Before(time.Now().Add(-time.Second)) {
		t.Error("the admitted peer's flow to the filtered pinhole stopped arriving")
	}
}
