package nftfw

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	nfct "github.com/ti-mo/conntrack"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/netlab"
)

// forgetDeadline is how soon after its deletion a mapping's flows must stop
// reaching their old host (issue 9).
const forgetDeadline = time.Second

// entryID returns the id of the conntrack entry of the gateway whose
// original direction goes from src to dst over UDP; it fails the test when
// there is none or the dump fails.
func entryID(t *testing.T, gw testNS, src, dst string) uint32 {
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
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	for _, f := range flows {
		o := f.TupleOrig
		if o.Proto.Protocol == uint8(gateway.UDP) && o.IP.SourceAddress == s.Addr() && o.Proto.SourcePort == s.Port() &&
			o.IP.DestinationAddress == d.Addr() && o.Proto.DestinationPort == d.Port() {
			return f.ID
		}
	}
	t.Fatalf("no conntrack entry udp %v -> %v", src, dst)
	return 0
}

// TestForgetFlows is issue 9's conntrack check against the real kernel: a
// UDP flow from the WAN host to a mapped port stops reaching the LAN host
// within a second of the mapping's deletion, and reaches a second LAN host
// once the port is granted to it, while the WAN host keeps sending from the
// same source port throughout. The flows of another mapping and unmapped
// traffic keep their conntrack entries; an outbound flow of a deleted
// mapping loses its external port.
func TestForgetFlows(t *testing.T) {
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	gw := labGateway(t, lab)
	f := newFirewall(t, gw, Config{ExternalInterface: lab.GatewayWANLink})
	ctx := context.Background()
	if err := f.SetExternalAddress(ctx, lab.GatewayWANAddr4); err != nil {
		t.Fatal(err)
	}
	lan0, lan1, wan := lab.LAN[0], lab.LAN[1], lab.WAN
	ext := lab.GatewayWANAddr4.String()
	wanAddr := wan.Addr4.String()

	held := udpMapping(15000, "198.51.100.10:5001")
	other := udpMapping(15001, "198.51.100.10:5002")
	out := udpMapping(25000, "198.51.100.10:5003")
	if err := f.Apply(ctx, []gateway.Mapping{held, other, out}, nil); err != nil {
		t.Fatal(err)
	}
	host0, host1 := netlab.ListenUDPSink(t, lan0, ":5001"), netlab.ListenUDPSink(t, lan1, ":5001")
	otherSink := netlab.ListenUDPSink(t, lan0, ":5002")
	outSink := netlab.ListenUDPSink(t, wan, wanAddr+":9998")
	unmappedSink := netlab.ListenUDPSink(t, wan, wanAddr+":9999")
	netlab.SendUDPFlow(t, wan, wanAddr+":40000", ext+":15000")
	netlab.SendUDPFlow(t, wan, wanAddr+":40001", ext+":15001")
	netlab.SendUDPFlow(t, lan0, "198.51.100.10:5003", wanAddr+":9998")
	netlab.SendUDPFlow(t, lan1, "198.51.100.11:6000", wanAddr+":9999")

	waitFor(t, 5*time.Second, "the flows to arrive", func() bool {
		return host0.Count() > 0 && otherSink.Count() > 0 && outSink.Count() > 0 && unmappedSink.Count() > 0
	})
	if got, want := outSink.From(), ext+":25000"; got != want {
		t.Fatalf("outbound flow of a mapped endpoint arrives from %s; want %s", got, want)
	}
	otherID := entryID(t, gw, wanAddr+":40001", ext+":15001")
	unmappedID := entryID(t, gw, "198.51.100.11:6000", wanAddr+":9999")

	if err := f.Apply(ctx, nil, []gateway.Mapping{held, out}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	time.Sleep(forgetDeadline + 500*time.Millisecond)
	if last := host0.Last(); last.After(deleted.Add(forgetDeadline)) {
		t.Errorf("LAN host 0 still received the flow %v after its mapping was deleted", last.Sub(deleted))
	}
	if got := outSink.From(); got == ext+":25000" {
		t.Errorf("outbound flow still leaves from %s after its mapping was deleted", got)
	}
	if got := entryID(t, gw, wanAddr+":40001", ext+":15001"); got != otherID {
		t.Errorf("conntrack entry of another mapping's flow replaced (id %d, was %d)", got, otherID)
	}
	if got := entryID(t, gw, "198.51.100.11:6000", wanAddr+":9999"); got != unmappedID {
		t.Errorf("conntrack entry of an unmapped flow replaced (id %d, was %d)", got, unmappedID)
	}

	// The same port to LAN host 1: the flow, still sent from the same
	// source port, reaches it.
	if err := f.Apply(ctx, []gateway.Mapping{udpMapping(15000, "198.51.100.11:5001")}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the flow to reach LAN host 1", func() bool { return host1.Count() > 0 })
	if got, want := host1.From(), wanAddr+":40000"; got != want {
		t.Errorf("LAN host 1 receives the flow from %s; want %s", got, want)
	}
	before := host0.Count()
	time.Sleep(200 * time.Millisecond)
	if n := host0.Count(); n != before {
		t.Errorf("LAN host 0 received %d more datagrams after the port moved to LAN host 1", n-before)
	}
	if got := entryID(t, gw, wanAddr+":40001", ext+":15001"); got != otherID {
		t.Errorf("conntrack entry of another mapping's flow replaced by the grant (id %d, was %d)", got, otherID)
	}
	if otherSink.Last().Before(time.Now().Add(-time.Second)) {
		t.Errorf("another mapping's flow stopped arriving")
	}
}

// TestForgetTCPFlow: a TCP connection from the WAN host through a mapping
// stops reaching the LAN host within a second of the mapping's deletion:
// its next segments find no translation, and the gateway resets it.
func TestForgetTCPFlow(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	gw := labGateway(t, lab)
	f := newFirewall(t, gw, Config{ExternalInterface: lab.GatewayWANLink})
	ctx := context.Background()
	if err := f.SetExternalAddress(ctx, lab.GatewayWANAddr4); err != nil {
		t.Fatal(err)
	}
	m := tcpMapping(18080, "198.51.100.10:8080")
	if err := f.Apply(ctx, []gateway.Mapping{m}, nil); err != nil {
		t.Fatal(err)
	}

	// The LAN server notes when it last read from its one connection.
	ln, err := lab.LAN[0].Listen("tcp4", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	var last atomic.Int64
	served, stop := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); ln.Close(); <-served })
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		go func() { <-stop; c.Close() }()
		buf := make([]byte, 100)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			last.Store(time.Now().UnixNano())
		}
	}()

	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := lab.WAN.Dial(dctx, "tcp4", lab.GatewayWANAddr4.String()+":18080")
	if err != nil {
		t.Fatalf("WAN dial through the mapping: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the LAN server to read", func() bool { return last.Load() != 0 })

	if err := f.Apply(ctx, nil, []gateway.Mapping{m}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	// Keep writing until the connection fails: the gateway answers the
	// untranslated segments with a reset.
	var werr error
	for time.Since(deleted) < 5*time.Second && werr == nil {
		_, werr = c.Write([]byte("b"))
		time.Sleep(50 * time.Millisecond)
	}
	if werr == nil {
		t.Errorf("the WAN host's connection still works 5 s after its mapping was deleted")
	}
	if at := time.Unix(0, last.Load()); at.After(deleted.Add(forgetDeadline)) {
		t.Errorf("the LAN server still read from the connection %v after its mapping was deleted", at.Sub(deleted))
	}
}

// TestKeepFlows: with Config.KeepFlows, a mapping's established flow
// keeps reaching its host (its conntrack entry keeps the translation) when
// Apply removes the mapping, and when Reconcile does.
func TestKeepFlows(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	gw := labGateway(t, lab)
	f := newFirewall(t, gw, Config{ExternalInterface: lab.GatewayWANLink, KeepFlows: true})
	ctx := context.Background()
	if err := f.SetExternalAddress(ctx, lab.GatewayWANAddr4); err != nil {
		t.Fatal(err)
	}
	ext, wanAddr := lab.GatewayWANAddr4.String(), lab.WAN.Addr4.String()
	for i, remove := range []func(m gateway.Mapping) error{
		func(m gateway.Mapping) error { return f.Apply(ctx, nil, []gateway.Mapping{m}) },
		func(gateway.Mapping) error { _, err := f.Reconcile(ctx, nil); return err },
	} {
		eport := uint16(15000 + i)
		m := udpMapping(eport, fmt.Sprintf("198.51.100.10:%d", 5001+i))
		if err := f.Apply(ctx, []gateway.Mapping{m}, nil); err != nil {
			t.Fatal(err)
		}
		sink := netlab.ListenUDPSink(t, lab.LAN[0], fmt.Sprintf(":%d", 5001+i))
		netlab.SendUDPFlow(t, lab.WAN, fmt.Sprintf("%s:%d", wanAddr, 40000+i), fmt.Sprintf("%s:%d", ext, eport))
		waitFor(t, 5*time.Second, "the flow to arrive", func() bool { return sink.Count() > 0 })
		if err := remove(m); err != nil {
			t.Fatal(err)
		}
		removed := time.Now()
		time.Sleep(forgetDeadline + 500*time.Millisecond)
		if last := sink.Last(); last.Before(removed.Add(forgetDeadline)) {
			t.Errorf("removal %d: the flow stopped reaching the LAN host %v after the removal, with KeepFlows", i, last.Sub(removed))
		}
	}
}
