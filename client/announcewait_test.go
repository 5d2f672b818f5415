package client

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestRandomAnnounceWait(t *testing.T) {
	for range 1000 {
		if d := randomAnnounceWait(); d < 0 || d >= maxAnnounceWait {
			t.Fatalf("randomAnnounceWait() = %v; want [0, %v)", d, maxAnnounceWait)
		}
	}
}

// holdTestClient keeps one PCP mapping of f with a client whose wait after
// an announcement (RFC 6887 §14.1.1) is wait, and counts the draws.
func holdTestClient(t *testing.T, f *fakePCP, pmp *fakePMP, wait time.Duration) (*testClient, *Mapping, *atomic.Int32) {
	t.Helper()
	var draws atomic.Int32
	c := pcpTestClient(t, f, pmp, func(cfg *Config) {
		cfg.Method = PCP
		cfg.announceWait = func() time.Duration { draws.Add(1); return wait }
	})
	m, err := c.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 4662, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c.Client, Mapped)
	return c, m, &draws
}

// heldUntil returns when the keeper works on m next and whether m is
// marked lost.
func heldUntil(c *Client, m *Mapping) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.next, m.lost
}

// TestAnnounceWaitsBeforeRemap: a PCP ANNOUNCE that shows the gateway lost
// its state holds the re-creation for the random wait of RFC 6887
// §14.1.1 (here an hour: nothing is sent meanwhile), and Close ends the
// wait with nothing sent.
func TestAnnounceWaitsBeforeRemap(t *testing.T) {
	f := newFakePCP(t)
	c, m, draws := holdTestClient(t, f, nil, time.Hour)
	before := len(f.maps())

	heard := time.Now()
	f.restart()
	f.announce(t, c.announce)
	waitLog(t, c.log, "gateway restarted: mapping again")
	next, lost := heldUntil(c.Client, m)
	if !lost || next.Before(heard.Add(59*time.Minute)) {
		t.Fatalf("after the announcement: next attempt %v, lost %v; want lost, held an hour", next.Sub(heard), lost)
	}
	if n := draws.Load(); n != 1 {
		t.Errorf("%d waits drawn; want 1", n)
	}
	if got := len(f.maps()); got != before {
		t.Fatalf("%d MAP requests during the wait", got-before)
	}

	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the announcement's wait")
	}
	if got := len(f.maps()); got != before {
		t.Errorf("%d MAP requests at or after Close", got-before)
	}
}

// TestAnnounceWaitEnds: once the wait is over the mapping is made again.
func TestAnnounceWaitEnds(t *testing.T) {
	f := newFakePCP(t)
	c, _, _ := holdTestClient(t, f, nil, 200*time.Millisecond)
	f.restart()
	f.announce(t, c.announce)
	if ev := waitEvent(t, c.Client, Recreated); ev.Result.External.Port() != 4662 {
		t.Errorf("Recreated %+v", ev.Result)
	}
	if _, ok := f.lease(6, netip.MustParseAddrPort("127.0.0.1:4662")); !ok {
		t.Error("the gateway lacks the mapping after the wait")
	}
}

// TestAnnounceBurstWaits: an ANNOUNCE of a gateway that kept its state
// (its epoch is fine) still has the mappings verified, after the wait.
func TestAnnounceBurstWaits(t *testing.T) {
	f := newFakePCP(t)
	c, m, _ := holdTestClient(t, f, nil, time.Hour)
	heard := time.Now()
	f.announce(t, c.announce)
	waitLog(t, c.log, "verifying the mappings on the gateway")
	if next, _ := heldUntil(c.Client, m); next.Before(heard.Add(59 * time.Minute)) {
		t.Fatalf("verification after the announcement due in %v; want held an hour", next.Sub(heard))
	}
}

// TestNATPMPAnnounceHoldsPCP: the same gateway's NAT-PMP announcement
// showing a restart does not bypass the wait of PCP's rule (a gateway
// that speaks both sends both), and draws no second wait.
func TestNATPMPAnnounceHoldsPCP(t *testing.T) {
	f := newFakePCP(t)
	pmp := newFakePMP(t)
	c, m, draws := holdTestClient(t, f, pmp, time.Hour)
	before := len(f.maps())
	pmp.announce(t, loopback, c.announce) // the first epoch heard
	waitLog(t, c.log, "NAT-PMP announcement")
	heard := time.Now()
	pmp.restart()
	f.restart()
	pmp.announce(t, loopback, c.announce)
	waitLog(t, c.log, "gateway restarted: mapping again")
	f.announce(t, c.announce)
	waitLog(t, c.log, "PCP announcement")
	if next, lost := heldUntil(c.Client, m); !lost || next.Before(heard.Add(59*time.Minute)) {
		t.Fatalf("after the NAT-PMP announcement: next attempt in %v, lost %v; want lost, held an hour", next.Sub(heard), lost)
	}
	if n := draws.Load(); n != 1 {
		t.Errorf("%d waits drawn for one restart; want 1", n)
	}
	if got := len(f.maps()); got != before {
		t.Errorf("%d MAP requests during the wait", got-before)
	}
}

// TestOwnAnswerRemapsAtOnce: an epoch that shows a loss in the answer to
// the client's own request (the periodic check's ANNOUNCE request) has the
// mappings made again at once (RFC 6887 §8.5), with no wait.
func TestOwnAnswerRemapsAtOnce(t *testing.T) {
	f := newFakePCP(t)
	c, _, draws := holdTestClient(t, f, nil, time.Hour)
	f.restart()
	c.checkGateways(t.Context())
	waitEvent(t, c.Client, Recreated)
	if n := draws.Load(); n != 0 {
		t.Errorf("%d waits drawn for an answer to the client's own request; want 0", n)
	}
}
