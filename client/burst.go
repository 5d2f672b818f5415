package client

import (
	"net/netip"
	"time"

	"github.com/portlease/portlease/natpmp"
)

// A gateway announces its address in bursts (RFC 6886 §3.2.1): "Upon
// boot, acquisition of an external IPv4 address, subsequent change of the
// external IPv4 address, reboot, or any other event that may indicate
// possible loss or change of NAT mapping state, the NAT gateway MUST send a
// gratuitous response to the link-local multicast address 224.0.0.1, port
// 5350", "up to 10 times", "the interval between the first two
// notifications SHOULD be 250 ms, and the interval between each subsequent
// notification SHOULD double". The client verifies its mappings once per
// burst, not once per announcement.
const (
	// burstStartSlack is how far apart two announcements may put the start
	// of the gateway's epoch and still be of one burst: the epoch counts
	// whole seconds, plus the packets' transit.
	burstStartSlack = 2 * time.Second
	// burstDuplicate is how soon an announcement identical to the last one
	// is taken for a copy of it (a datagram heard twice).
	burstDuplicate = 50 * time.Millisecond
	// burstMinGap is the shortest gap between two announcements of one
	// burst: half the schedule's first interval (250 ms), for jitter. A
	// shorter one is a gateway that started again.
	burstMinGap = 125 * time.Millisecond
)

// burstSpan is the time from the first announcement of a burst to its last:
// 127.75 s on the RFC's schedule.
func burstSpan() time.Duration {
	var d time.Duration
	for _, gap := range natpmp.AnnounceIntervals() {
		d += gap
	}
	return d
}

// announceBurst is the burst of announcements last heard from a gateway.
// The zero value has heard none.
type announceBurst struct {
	count int           // announcements heard in the burst
	first time.Time     // arrival of its first announcement
	last  time.Time     // arrival of its last one
	gap   time.Duration // between its last two; 0 after one
	epoch uint32        // Seconds Since Start of Epoch of its last one
	start time.Time     // the epoch's start by its first: first - epoch
	addr  netip.Addr    // the external address it announces
}

// next takes an announcement that arrived at at and reports whether it
// begins a new burst. It continues the current one only when everything
// fits one run of the schedule: the same address, an epoch that does not
// go back and puts the epoch's start where the burst's first did (within
// burstStartSlack), no more than natpmp.AnnounceCount announcements within
// the schedule's span, and a gap since the last one at least 1.5 times the
// gap before it (the intervals double; a lost announcement only makes the
// gap longer), and never shorter than burstMinGap. A gateway that restarts
// within a burst of its own, too soon for the epoch to show it, begins a
// burst whose gaps start again at 250 ms: that shorter gap tells it at its
// second announcement, or at its first when that comes sooner than
// burstMinGap after the last one heard.
func (b *announceBurst) next(at time.Time, epoch uint32, addr netip.Addr) bool {
	gap := at.Sub(b.last)
	if b.count > 0 && epoch == b.epoch && addr == b.addr && gap >= 0 && gap < burstDuplicate {
		return false // the last one again
	}
	start := latestEpochStart(at, epoch)
	d := start.Sub(b.start)
	same := b.count > 0 &&
		b.count < natpmp.AnnounceCount &&
		addr == b.addr &&
		epoch >= b.epoch &&
		d >= -burstStartSlack && d <= burstStartSlack &&
		gap >= 0 && at.Sub(b.first) <= burstSpan()+burstStartSlack &&
		gap >= burstMinGap && (b.gap == 0 || gap >= b.gap*3/2)
	if !same {
		*b = announceBurst{count: 1, first: at, last: at, epoch: epoch, start: start, addr: addr}
		return true
	}
	b.count++
	b.gap, b.last, b.epoch = gap, at, epoch
	return false
}
