package nftfw

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// watchQuietWindow is how long a test waits to conclude that Watch did not
// report a change: far beyond its 200 ms bound.
const watchQuietWindow = 1500 * time.Millisecond

// calls counts the calls of a Watch's changed function.
type calls chan struct{}

// within returns the number of calls until none came for d.
func (c calls) within(d time.Duration) int {
	n := 0
	for {
		select {
		case <-c:
			n++
		case <-time.After(d):
			return n
		}
	}
}

// TestWatch checks that Watch reports what nft does to the table, once per
// change, and nothing of the Firewall's own changes.
func TestWatch(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{})
	ctx := context.Background()
	want := []gateway.Mapping{tcpMapping(8080, "198.51.100.10:80"), udpMapping(5000, "198.51.100.10:5001")}
	if _, err := f.Reconcile(ctx, want); err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithCancel(ctx)
	changed := make(calls, 100)
	done := make(chan error, 1)
	go func() { done <- f.Watch(wctx, func() { changed <- struct{}{} }, nil) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Watch = %v; want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Watch did not return after its context was cancelled")
		}
	}()

	// A foreign element until Watch reports it: then it is listening.
	deadline := time.Now().Add(10 * time.Second)
	for changed.within(300*time.Millisecond) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Watch reports no foreign change")
		}
		ns.nft(t, "add", "element", "inet", DefaultTable, inboundName, "{ tcp . 1 : 198.51.100.1 . 1 }")
	}
	changed.within(watchQuietWindow)

	// Our own changes, a burst of them, are not reported.
	ext := netip.MustParseAddr("203.0.113.1")
	for i := range 20 {
		m := tcpMapping(uint16(9000+i), "198.51.100.11:90")
		if err := f.Apply(ctx, []gateway.Mapping{m}, nil); err != nil {
			t.Fatal(err)
		}
		if err := f.Apply(ctx, nil, []gateway.Mapping{m}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.SetExternalAddress(ctx, ext); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reconcile(ctx, want); err != nil { // removes tcp 1
		t.Fatal(err)
	}
	if n := changed.within(watchQuietWindow); n != 0 {
		t.Errorf("Watch reported %d changes after the Firewall's own; want none", n)
	}

	for _, cmd := range [][]string{
		{"delete", "element", "inet", DefaultTable, inboundName, "{ tcp . 8080 }"},
		{"flush", "map", "inet", DefaultTable, outboundName},
		{"delete", "rule", "inet", DefaultTable, forwardName, "handle", forwardHandle(t, ns)},
		{"delete", "table", "inet", DefaultTable},
		{"flush", "ruleset"},
	} {
		ns.nft(t, cmd...)
		if n := changed.within(watchQuietWindow); n != 1 {
			t.Errorf("Watch reported nft %v %d times; want once", cmd, n)
		}
		// As the daemon does: repair, which must not be reported.
		if _, err := f.Reconcile(ctx, want); err != nil {
			t.Fatal(err)
		}
		if n := changed.within(watchQuietWindow); n != 0 {
			t.Errorf("Watch reported the repair after nft %v %d times; want none", cmd, n)
		}
	}
}

// forwardHandle returns the handle of the rule of the forward chain.
func forwardHandle(t *testing.T, ns testNS) string {
	t.Helper()
	for key, obj := range nftObjects(t, ns, DefaultTable) {
		if obj["chain"] == forwardName && len(key) > 5 && key[:5] == "rule " {
			return fmtNumber(obj["handle"])
		}
	}
	t.Fatal("no rule in chain forward")
	return ""
}

// fmtNumber formats a JSON number as an integer.
func fmtNumber(v any) string {
	f, _ := v.(float64)
	return strconv.FormatInt(int64(f), 10)
}

// TestGeneration: the generation ID stays while nothing is committed, and
// moves on with a transaction of ours and with one of nft's.
func TestGeneration(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{})
	g1, err := f.Generation()
	if err != nil {
		t.Fatal(err)
	}
	if g2, err := f.Generation(); err != nil || g2 != g1 {
		t.Fatalf("Generation() = %d, %v with nothing committed; want %d", g2, err, g1)
	}
	if err := f.Apply(context.Background(), []gateway.Mapping{tcpMapping(8080, "198.51.100.10:80")}, nil); err != nil {
		t.Fatal(err)
	}
	g3, err := f.Generation()
	if err != nil || g3 == g1 {
		t.Fatalf("Generation() = %d, %v after an Apply; want other than %d", g3, err, g1)
	}
	ns.nft(t, "add", "table", "inet", "other")
	if g4, err := f.Generation(); err != nil || g4 == g3 {
		t.Fatalf("Generation() = %d, %v after nft add table; want other than %d", g4, err, g3)
	}
}
