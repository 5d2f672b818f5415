package nftfw

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/netlab"
)

// healDeadline bounds the wait for a repair and the traffic after it: the
// issue asks for 1 s; the dials that find the way still shut take part of
// the rest.
const healDeadline = 5 * time.Second

// TestPinholeHeal: when someone deletes the pinholes' elements, the peers
// chain's rules, the table or the whole ruleset, Watch reports it and a
// Reconcile (what portleased's healKernel does) opens the pinholes again:
// the WAN host's connections get through the gateway's default-drop
// forward chain, to the unfiltered pinhole and, from its peer only, to the
// filtered one.
func TestPinholeHeal(t *testing.T) {
	l := newPinholeLab(t)
	ctx := t.Context()
	wan := l.lab.WAN.Addr6
	ln, err := l.lab.LAN[0].Listen("tcp", ":9090")
	if err != nil {
		t.Fatal(err)
	}
	netlab.ServePeerAddr(t, ln)
	server9090 := netip.AddrPortFrom(l.server6.Addr(), 9090)
	open := pinhole(l.server6.String(), time.Hour)
	filtered := pinhole(server9090.String(), time.Hour, filterOf(wan.String()+"/128", 0))
	want := []gateway.Mapping{open, filtered}
	if _, err := l.f.Reconcile(ctx, want); err != nil {
		t.Fatal(err)
	}
	works := func() bool {
		return l.reaches(t, wan, l.server6) && l.reaches(t, wan, server9090)
	}
	if !works() {
		t.Fatal("WAN host does not get through the pinholes")
	}
	if l.reaches(t, l.wan2, server9090) {
		t.Fatal("a second WAN address got through a filtered pinhole")
	}

	repaired := make(chan error, 10)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- l.f.Watch(wctx, func() {
			_, err := l.f.Reconcile(wctx, want)
			repaired <- err
		}, nil)
	}()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch = %v; want context.Canceled", err)
		}
	}()
	time.Sleep(200 * time.Millisecond) // the monitor socket opens

	for _, cmd := range []string{
		fmt.Sprintf("delete element inet %s %s { %v . tcp . 8080 }", DefaultTable, pinhole6Name, l.server6.Addr()),
		fmt.Sprintf("flush set inet %s %s", DefaultTable, filtered6Name),
		fmt.Sprintf("flush chain inet %s %s", DefaultTable, peers6Chain),
		"delete table inet " + DefaultTable,
		"flush ruleset\n" + netlab.Firewall6,
	} {
		l.gw.nftInput(t, cmd)
		select {
		case err := <-repaired:
			if err != nil {
				t.Fatalf("Reconcile after nft %q: %v", cmd, err)
			}
		case <-time.After(healDeadline):
			t.Fatalf("no repair after nft %q", cmd)
		}
		waitFor(t, healDeadline, "the pinholes to work again after nft "+cmd, works)
		if l.reaches(t, l.wan2, server9090) {
			t.Errorf("after nft %q, a second WAN address got through the filtered pinhole", cmd)
		}
		got, err := l.f.PinholeElements(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !samePinholes(got, want) {
			t.Errorf("after nft %q, the kernel holds pinholes %v; want %v", cmd, got, want)
		}
	}
}

// samePinholes reports whether got, read back by PinholeElements, holds
// the pinholes of want: the same endpoints and filters, any order, any
// lifetime.
func samePinholes(got, want []gateway.Mapping) bool {
	key := func(m gateway.Mapping) string { return fmt.Sprint(m.Protocol, m.Internal, m.Filters) }
	g, w := make([]string, len(got)), make([]string, len(want))
	for i, m := range got {
		g[i] = key(m)
		if !m.Pinhole || m.ExternalPort != m.Internal.Port() || m.Lifetime <= 0 || m.Lifetime > time.Hour {
			return false
		}
	}
	for i, m := range want {
		w[i] = key(m)
	}
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}
