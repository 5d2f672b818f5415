package client

import (
	"math/rand/v2"
	"time"
)

// maxAnnounceWait bounds the wait of RFC 6887 §14.1.1 (quoted by libplum's
// PCP client as "[The client] MUST wait a random amount of time between 0
// and 5 seconds"): a PCP client that hears an unsolicited ANNOUNCE waits
// that long before it renews its mappings, so that the clients of a
// gateway that just restarted do not all ask at once.
const maxAnnounceWait = 5 * time.Second

// randomAnnounceWait draws the wait of §14.1.1, uniform in [0, 5 s).
func randomAnnounceWait() time.Duration { return rand.N(maxAnnounceWait) }

// pcpHoldAfterAnnounce returns when the PCP mappings through g may be asked
// for again after an announcement heard now: one random wait per gateway,
// shared by the announcements of one restart (PCP's ANNOUNCE and NAT-PMP's
// address announcement alike, which a gateway that speaks both sends
// together), so that the second does not push the renewals past the 5 s
// of the first.
//
// The rule is PCP's: RFC 6886 has none, and NAT-PMP mappings are asked for
// again at once. A NAT-PMP announcement from a gateway that holds PCP
// mappings holds them too, or the gateway's NAT-PMP announcement, which
// comes with its ANNOUNCE, would bypass the wait.
func (c *Client) pcpHoldAfterAnnounce(g *gateway, now time.Time) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pcpHold.After(now) {
		return g.pcpHold
	}
	g.pcpHold = now.Add(max(c.announceWait(), 0))
	return g.pcpHold
}
