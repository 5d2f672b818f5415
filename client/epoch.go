package client

import "time"

// The epoch of a NAT-PMP gateway (RFC 6886 §3.6, "Seconds Since Start of
// Epoch") counts whole seconds since it began or last lost its mappings
// (§3.7). Besides the comparison of §3.6 (natpmp.StateLost), a packet
// bounds when the gateway's current epoch began, by the client's clock.

// latestEpochStart is the latest the epoch can have begun, given a packet
// carrying epoch that arrived at at: it was sent no later than at, and the
// epoch counts down from then whole seconds only.
func latestEpochStart(at time.Time, epoch uint32) time.Time {
	return at.Add(-time.Duration(epoch) * time.Second)
}

// earliestEpochStart is the earliest the epoch can have begun, given an
// answer carrying epoch to a request first sent at sent: the answer was made
// after sent, less than epoch+1 of the gateway's seconds after the epoch
// began, and the gateway's clock may run up to 1/8 slow (the allowance of
// §3.6, whose estimate adds only 7/8 of the client's elapsed time).
func earliestEpochStart(sent time.Time, epoch uint32) time.Time {
	return sent.Add(-time.Second - time.Duration(epoch)*(time.Second*8/7))
}
