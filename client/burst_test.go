package client

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// heard is one announcement: when it arrived (seconds after the test's
// origin), its epoch and its address (a when empty).
type heard struct {
	at    float64
	epoch uint32
	addr  string
}

// TestAnnounceBurst checks which announcements begin a burst (RFC 6886
// §3.2.1: up to ten, "the interval between the first two notifications
// SHOULD be 250 ms, and the interval between each subsequent notification
// SHOULD double"); each new burst is one verification.
func TestAnnounceBurst(t *testing.T) {
	// schedule is the RFC's burst from a gateway whose epoch is base at
	// its first announcement, the first arriving at start.
	schedule := func(start float64, base uint32, n int) []heard {
		var hs []heard
		off, gap := 0.0, 0.25
		for i := range n {
			if i > 0 {
				off += gap
				gap *= 2
			}
			hs = append(hs, heard{at: start + off, epoch: base + uint32(off)})
		}
		return hs
	}
	ten := schedule(0, 0, 10)
	tests := []struct {
		name  string
		heard []heard
		want  []bool // new burst, per announcement
	}{
		{"one burst of ten from a gateway that just started", ten,
			[]bool{true, false, false, false, false, false, false, false, false, false}},
		{"one burst from a gateway up for an hour", schedule(0, 3600, 10),
			[]bool{true, false, false, false, false, false, false, false, false, false}},
		{"a burst heard from its middle, some lost", []heard{ten[3], ten[4], ten[6], ten[9]},
			[]bool{true, false, false, false}},
		{"a datagram heard twice", []heard{{0, 5, ""}, {0.001, 5, ""}, {0.25, 5, ""}},
			[]bool{true, false, false}},
		{"an eleventh announcement begins a burst", append(ten[:10:10], heard{128.75, 128, ""}),
			[]bool{true, false, false, false, false, false, false, false, false, false, true}},
		{"a burst after the last one ended", append(ten[:10:10], heard{300, 300, ""}),
			[]bool{true, false, false, false, false, false, false, false, false, false, true}},
		{"a restart that the epoch shows", []heard{{0, 1000, ""}, {0.25, 1000, ""}, {2, 0, ""}, {2.25, 0, ""}},
			[]bool{true, false, true, false}},
		{"epoch one second back", []heard{{0, 3, ""}, {0.25, 3, ""}, {0.75, 2, ""}},
			[]bool{true, false, true}},
		{"a restart 0.75 s into the first burst, told by the shorter gap at its second",
			// 0, 0.25, 0.75 of the first start; the second starts at 1.5,
			// where the first would have sent at 1.75.
			[]heard{{0, 0, ""}, {0.25, 0, ""}, {0.75, 0, ""}, {1.5, 0, ""}, {1.75, 0, ""}, {2.25, 0, ""}},
			[]bool{true, false, false, false, true, false}},
		{"a restart heard after a single announcement, told at its second",
			[]heard{{0.75, 0, ""}, {1.5, 0, ""}, {1.75, 0, ""}, {2.25, 0, ""}},
			[]bool{true, false, true, false}},
		{"a restart within 125 ms of the one announcement heard, told at its first",
			// keep started after the first gateway's first announcement;
			// the gateway started again 63 ms after its second.
			[]heard{{0.25, 0, ""}, {0.313, 0, ""}, {0.563, 0, ""}, {1.063, 0, ""}},
			[]bool{true, true, false, false}},
		{"a new external address", []heard{{0, 50, ""}, {0.25, 50, ""}, {0.5, 50, "203.0.113.9"}, {0.75, 50, "203.0.113.9"}},
			[]bool{true, false, true, false}},
	}
	origin := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b announceBurst
			var got []bool
			for _, h := range tt.heard {
				addr := netip.MustParseAddr("203.0.113.1")
				if h.addr != "" {
					addr = netip.MustParseAddr(h.addr)
				}
				at := origin.Add(time.Duration(h.at * float64(time.Second)))
				got = append(got, b.next(at, h.epoch, addr))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("next(%v) = %v; want %v", tt.heard, got, tt.want)
			}
		})
	}
}

// TestEpochStartBounds checks the bounds an answer puts on the start of the
// gateway's epoch (RFC 6886 §3.6: "Seconds Since Start of Epoch").
func TestEpochStartBounds(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	tests := []struct {
		epoch         uint32
		latest, early time.Duration // before at (earliest: before a request sent at at)
	}{
		{0, 0, time.Second},
		{7, 7 * time.Second, time.Second + 7*(time.Second*8/7)},
		{1<<32 - 1, (1<<32 - 1) * time.Second, time.Second + (1<<32-1)*(time.Second*8/7)},
	}
	for _, tt := range tests {
		if got := latestEpochStart(at, tt.epoch); !got.Equal(at.Add(-tt.latest)) {
			t.Errorf("latestEpochStart(at, %d) = at-%v; want at-%v", tt.epoch, at.Sub(got), tt.latest)
		}
		if got := earliestEpochStart(at, tt.epoch); !got.Equal(at.Add(-tt.early)) {
			t.Errorf("earliestEpochStart(at, %d) = at-%v; want at-%v", tt.epoch, at.Sub(got), tt.early)
		}
	}
}
