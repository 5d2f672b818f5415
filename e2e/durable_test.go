package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// Issue 9's "Done when": the leases survive a restart (this file), a crash
// (durable_crash_test.go), a damaged state file (durable_damage_test.go)
// and a flushed ruleset (durable_heal_test.go), against the real daemon,
// kernel and peers.

const (
	restartNATPMPLines = 500
	restartUPnPLines   = 500
)

// restartCSV returns keep's file of n lines from port first up: TCP and UDP
// in turn, each with a lifetime of its own (base+i seconds) and, over UPnP,
// a description of its own.
func restartCSV(n, first, base int, desc string) string {
	var b strings.Builder
	b.WriteString("address;port;protocol;duration;comment\n")
	for i := range n {
		proto := "TCP"
		if i%2 == 1 {
			proto = "UDP"
		}
		fmt.Fprintf(&b, ";%d;%s;%d;%s %03d\n", first+i, proto, base+i, desc, i)
	}
	return b.String()
}

// TestRestartKeepsLeases: 1,000 leases made over NAT-PMP and UPnP (with
// portlease keep, and a few with natpmpc and upnpc), then SIGTERM and a
// start: every lease is back with the same external port, internal
// endpoint, description and expiry (±1 s), the kernel holds exactly them,
// the NAT-PMP epoch continued (RFC 6886 §3.6), and the WAN host reaches a
// LAN server through a restored mapping with no client acting.
func TestRestartKeepsLeases(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	// No request rate: keep makes its hundreds of mappings at once, far
	// above the default burst.
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{StateFile: filepath.Join(labpeers.StateDir(t), "leases"),
		ExtraLines: []string{"request rate per host none"}})
	lan0, lan1 := lab.LAN[0], lab.LAN[1]

	keepOneShot(t, lan0, d, "natpmp", restartCSV(restartNATPMPLines, 20000, 1200, "natpmp"))
	keepOneShot(t, lan1, d, "upnp", restartCSV(restartUPnPLines, 30000, 1800, "upnp lease"))
	natpmpcMap(t, lab, lan0, 25000, 25000, "tcp", 2400)
	natpmpcMap(t, lab, lan0, 25001, 25001, "udp", 2500)
	out := labpeers.UPnPC(t, lan1, "-u", d.DescriptionURL(), "-e", "upnpc restart one", "-a", lan1.Addr4.String(), "35000", "35000", "TCP", "2600")
	if !strings.Contains(out, "is redirected to internal") {
		t.Fatalf("upnpc -a printed:\n%s", out)
	}
	out = labpeers.UPnPC(t, lan1, "-u", d.DescriptionURL(), "-e", "upnpc restart two", "-a", lan1.Addr4.String(), "35001", "35001", "UDP", "2700")
	if !strings.Contains(out, "is redirected to internal") {
		t.Fatalf("upnpc -a printed:\n%s", out)
	}
	const want = restartNATPMPLines + restartUPnPLines + 4

	before := readTable(t, lan1, d)
	if len(before.entries) != want {
		t.Fatalf("the table holds %d mappings; want %d:\n%s", len(before.entries), want, before.description)
	}
	kernelMatchesTable(t, kernelInbound(t, lab), before)
	const served = "reached through a restored mapping"
	serveTCP(t, lan0, 20000, served)
	ext := fmt.Sprintf("%s:%d", lab.GatewayWANAddr4, 20000)
	if got, err := fetchTCP(lab.WAN, ext); err != nil || got != served {
		t.Fatalf("before the restart the WAN host through %s got %q, %v", ext, got, err)
	}

	// An epoch of at least 3 s, so that one started again at 0 could not
	// pass for a continued one.
	epoch, epochAt := natpmpEpoch(t, lab, lan0)
	if epoch < 3 {
		time.Sleep(time.Duration(3-epoch) * time.Second)
		epoch, epochAt = natpmpEpoch(t, lab, lan0)
	}

	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if got, err := fetchTCP(lab.WAN, ext); err != nil || got != served {
		t.Errorf("while portleased was stopped the WAN host through %s got %q, %v; the mappings should stay in the kernel", ext, got, err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "leases restored")
	if line := logLine(d, "leases restored"); !strings.Contains(line, fmt.Sprintf("restored=%d ", want)) {
		t.Errorf("the start logged %q; want restored=%d", line, want)
	}

	after := readTable(t, lan1, d)
	compareRestored(t, before, after)
	kernelMatchesTable(t, kernelInbound(t, lab), after)

	epoch2, epoch2At := natpmpEpoch(t, lab, lan0)
	if !epochContinued(epoch, epochAt, epoch2, epoch2At) {
		t.Errorf("epoch %d, then %d %v later: a client concludes the gateway lost its state (RFC 6886 §3.6)", epoch, epoch2, epoch2At.Sub(epochAt).Round(time.Millisecond))
	}
	if got, err := fetchTCP(lab.WAN, ext); err != nil || got != served {
		t.Fatalf("after the restart the WAN host through %s got %q, %v", ext, got, err)
	}
}

// compareRestored fails the test unless after holds every mapping of before
// and no other, each with the same internal endpoint and description and
// an expiry within 1 s of the one before. A remaining lifetime is read in
// whole seconds, rounded down, while the table was walked: the expiry lies
// in [begin+lifetime, end+lifetime+1].
func compareRestored(t *testing.T, before, after tableReading) {
	t.Helper()
	var diffs []string
	for _, k := range sortedKeys(before.entries) {
		b := before.entries[k]
		a, ok := after.entries[k]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%v -> %s %q: gone after the restart", k, b.Internal, b.Description))
			continue
		}
		if a.Internal != b.Internal || a.Description != b.Description {
			diffs = append(diffs, fmt.Sprintf("%v: %s %q before, %s %q after", k, b.Internal, b.Description, a.Internal, a.Description))
		}
		if (a.Lifetime == 0) != (b.Lifetime == 0) {
			diffs = append(diffs, fmt.Sprintf("%v: lifetime %d s before, %d s after", k, b.Lifetime, a.Lifetime))
			continue
		}
		if b.Lifetime == 0 {
			continue
		}
		lifetime := func(s int) time.Duration { return time.Duration(s) * time.Second }
		bLow, bHigh := before.begin.Add(lifetime(b.Lifetime)), before.end.Add(lifetime(b.Lifetime+1))
		aLow, aHigh := after.begin.Add(lifetime(a.Lifetime)), after.end.Add(lifetime(a.Lifetime+1))
		if gap := max(aLow.Sub(bHigh), bLow.Sub(aHigh)); gap > time.Second {
			diffs = append(diffs, fmt.Sprintf("%v: expiry moved by at least %v (lifetime %d s read in a walk of %v, then %d s read %v later in one of %v)",
				k, gap.Round(time.Millisecond), b.Lifetime, before.end.Sub(before.begin).Round(time.Millisecond),
				a.Lifetime, after.begin.Sub(before.begin).Round(time.Millisecond), after.end.Sub(after.begin).Round(time.Millisecond)))
		}
	}
	for _, k := range sortedKeys(after.entries) {
		if _, ok := before.entries[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%v -> %s: new after the restart", k, after.entries[k].Internal))
		}
	}
	if len(diffs) > 0 {
		t.Fatalf("%d of %d leases not restored as they were:\n%s", len(diffs), len(before.entries), strings.Join(diffs, "\n"))
	}
}
