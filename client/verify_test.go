package client

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// noEvent fails the test if an event other than those of kinds is waiting.
func noEvent(t *testing.T, c *Client, kinds ...EventKind) {
	t.Helper()
	for {
		select {
		case ev := <-c.Events():
			ok := false
			for _, k := range kinds {
				ok = ok || ev.Kind == k
			}
			if !ok {
				t.Fatalf("unexpected event %v", ev)
			}
		default:
			return
		}
	}
}

// announceBurst sends n announcements on the schedule of RFC 6886 §3.2.1
// (the first at once, then 250 ms, 500 ms, ... apart).
func announceSchedule(t *testing.T, f *fakePMP, to netip.AddrPort, n int) {
	t.Helper()
	gap := 250 * time.Millisecond
	for i := range n {
		if i > 0 {
			time.Sleep(gap)
			gap *= 2
		}
		f.announce(t, loopback, to)
	}
}

// TestAnnouncementBurstVerifiesOnce: a burst of announcements from a
// gateway that kept its mappings, whether it had just started when the
// client mapped (the first burst of a gateway it has just mapped with) or
// had been up for long, asks for each NAT-PMP mapping once more, quietly:
// no event, no warning, and no more requests for the rest of the burst.
func TestAnnouncementBurstVerifiesOnce(t *testing.T) {
	for _, young := range []bool{false, true} {
		name := "gateway up for long"
		if young {
			name = "gateway that has just started"
		}
		t.Run(name, func(t *testing.T) {
			f := newFakePMP(t)
			if young {
				f.restart() // epoch 0
			}
			c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
			for _, r := range []Request{{Protocol: TCP, InternalPort: 4662}, {Protocol: UDP, InternalPort: 4672}} {
				if _, err := c.Keep(t.Context(), r); err != nil {
					t.Fatal(err)
				}
			}
			waitEvent(t, c.Client, ExternalAddressChanged)
			noEvent(t, c.Client, Mapped)
			before := len(f.mapRequests())
			announceSchedule(t, f, c.announce, 4)
			eventually(t, "both mappings verified", func() bool {
				return strings.Count(c.log.String(), "verified: the gateway holds the mapping") == 2
			})
			time.Sleep(200 * time.Millisecond) // room for wrong extra requests
			if got := len(f.mapRequests()) - before; got != 2 {
				t.Errorf("%d mapping requests after one burst of 4 announcements; want 2 (one per mapping)", got)
			}
			noEvent(t, c.Client)
			if log := c.log.String(); strings.Contains(log, "level=WARN") {
				t.Errorf("a verification that found everything in place warned:\n%s", log)
			}
		})
	}
}

// TestAnnouncementRepairsQuickRestart: a gateway that restarts, losing its
// table, less than a second after it started and granted: its epoch cannot
// show the restart (RFC 6886 §3.6 allows 2 s of slack), its announcement
// has the mappings made again all the same, within 2 s.
func TestAnnouncementRepairsQuickRestart(t *testing.T) {
	f := newFakePMP(t)
	f.restart()
	c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
	for _, r := range []Request{{Protocol: TCP, InternalPort: 4662}, {Protocol: UDP, InternalPort: 4672}} {
		if _, err := c.Keep(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	waitEvent(t, c.Client, ExternalAddressChanged)
	f.restart()
	if f.has(TCP, 4662) || f.has(UDP, 4672) {
		t.Fatal("restart kept the table")
	}
	f.announce(t, loopback, c.announce)
	deadline := time.Now().Add(2 * time.Second)
	for !f.has(TCP, 4662) || !f.has(UDP, 4672) {
		if time.Now().After(deadline) {
			t.Fatal("the mappings are not on the gateway 2 s after its announcement")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAnnouncementLaterRestartRecreates: a gateway that restarts a few
// seconds after granting, its epoch from 0 again: told by the epoch of the
// verification's answers even where §3.6's slack hides it, the mappings
// are made again and reported Recreated.
func TestAnnouncementLaterRestartRecreates(t *testing.T) {
	f := newFakePMP(t)
	f.restart()
	c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
	if _, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c.Client, ExternalAddressChanged)
	time.Sleep(1500 * time.Millisecond)
	f.restart()
	f.announce(t, loopback, c.announce)
	if ev := waitEvent(t, c.Client, Recreated, Failed); ev.Kind != Recreated {
		t.Fatalf("event %v; want Recreated", ev)
	}
	if !f.has(TCP, 4662) {
		t.Fatal("the mapping is not on the gateway again")
	}
	waitLog(t, c.log, "the gateway had lost a mapping: made again")
}

// TestAnnouncementNewAddress: an announcement of another external address
// updates the kept mappings' external address and tells the application.
func TestAnnouncementNewAddress(t *testing.T) {
	f := newFakePMP(t)
	c := newTestClient(t, f, nil, func(cfg *Config) { cfg.Method = NATPMP })
	m, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c.Client, ExternalAddressChanged)
	moved := netip.MustParseAddr("203.0.113.9")
	f.set(func(f *fakePMP) { f.ext = moved })
	f.announce(t, loopback, c.announce)
	if ev := waitEvent(t, c.Client, ExternalAddressChanged); ev.ExternalAddress != moved {
		t.Fatalf("ExternalAddressChanged to %v; want %v", ev.ExternalAddress, moved)
	}
	if res, ok := m.Current(); !ok || res.External != netip.AddrPortFrom(moved, 4662) {
		t.Fatalf("Current() = %v, %v; want %v", res.External, ok, netip.AddrPortFrom(moved, 4662))
	}
}

// TestNotifyByeByeThenAlive: an IGD that says ssdp:byebye and comes back
// with the same BOOTID (miniupnpd restarted within a second) has its
// mappings checked and made again; the NOTIFYs of one boot from its
// several devices make one GatewayRestarted.
func TestNotifyByeByeThenAlive(t *testing.T) {
	d := newFakeIGD("http://127.0.0.1:5000/rootDesc.xml")
	f := newFakeFinder(d)
	c := newTestClient(t, nil, f, func(cfg *Config) { cfg.Method = UPnP })
	if _, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c.Client, Mapped)
	from := netip.MustParseAddrPort("127.0.0.1:1900")
	wan := "uuid:wan-device"
	f.notify(t, from, notice{nts: "ssdp:alive", usn: wan + "::urn:schemas-upnp-org:device:WANDevice:2", bootID: 1})

	d.set(func(d *fakeIGD) { clear(d.table) })
	f.notify(t, from, notice{nts: "ssdp:byebye", usn: d.uuid + "::upnp:rootdevice", bootID: 1})
	f.notify(t, from, notice{nts: "ssdp:byebye", usn: wan + "::urn:schemas-upnp-org:device:WANDevice:2", bootID: 1})
	f.notify(t, from, notice{nts: "ssdp:alive", usn: d.uuid + "::upnp:rootdevice", bootID: 1})
	f.notify(t, from, notice{nts: "ssdp:alive", usn: wan + "::urn:schemas-upnp-org:device:WANDevice:2", bootID: 1})
	if ev := waitEvent(t, c.Client, Recreated, Failed); ev.Kind != Recreated {
		t.Fatalf("event %v; want Recreated", ev)
	}
	if _, ok := d.entry(TCP, 4662); !ok {
		t.Fatal("the mapping is not on the IGD again")
	}

	d.set(func(d *fakeIGD) { clear(d.table) })
	f.notify(t, from, notice{nts: "ssdp:alive", usn: wan + "::urn:schemas-upnp-org:device:WANDevice:2", bootID: 2})
	f.notify(t, from, notice{nts: "ssdp:alive", usn: d.uuid + "::upnp:rootdevice", bootID: 2})
	// The restart is reported, and the mapping made again: the
	// verification the restart starts may report its Recreated before the
	// GatewayRestarted event is sent, so either order.
	for seen := map[EventKind]bool{}; !seen[GatewayRestarted] || !seen[Recreated]; {
		ev := waitEvent(t, c.Client, GatewayRestarted, Recreated, Failed)
		if ev.Kind == Failed {
			t.Fatalf("event %v; want Recreated", ev)
		}
		seen[ev.Kind] = true
	}
	time.Sleep(100 * time.Millisecond)
	noEvent(t, c.Client, ExternalAddressChanged)
}
