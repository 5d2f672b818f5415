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

// pcpStateLost is the client's check of a PCP server's Epoch Time (RFC
// 6887 §8.5): given the last epoch received (prev), the time elapsed on the
// client's clock since it arrived and the epoch just received (curr), it
// reports whether the epoch is invalid, which means that the server may have
// lost its state. "If the current PCP server Epoch time (curr_server_time)
// is less than the previously received PCP server Epoch time
// (prev_server_time) by more than one second, then the client treats the
// Epoch time as obviously invalid"; otherwise "If client_delta+2 <
// server_delta - server_delta/16 or server_delta+2 < client_delta -
// client_delta/16, then the client treats the Epoch time value as invalid".
func pcpStateLost(prev uint32, elapsed time.Duration, curr uint32) bool {
	server := int64(curr) - int64(prev)
	if server < -1 {
		return true
	}
	client := int64(max(elapsed, 0) / time.Second)
	return client+2 < server-server/16 || server+2 < client-client/16
}

// pcpEpochState is what a client keeps of a PCP server's epoch (§8.5:
// prev_server_time and prev_client_time).
type pcpEpochState struct {
	have  bool
	epoch uint32
	at    time.Time
}

// observe takes an epoch received at at and reports whether it shows that
// the server lost its state. An answer that arrives out of order (older
// than the last one) is checked but not kept.
func (s *pcpEpochState) observe(epoch uint32, at time.Time) bool {
	lost := s.have && pcpStateLost(s.epoch, at.Sub(s.at), epoch)
	if !s.have || !at.Before(s.at) {
		s.have, s.epoch, s.at = true, epoch, at
	}
	return lost
}
