package natpmpsrv

import (
	"time"

	"github.com/portlease/portlease/natpmp"
)

// Latency observes how long requests take, from a request's read to its
// answer's write (gateway/metrics.Histogram). It must not block; it is
// called on the request's path.
type Latency interface {
	ObserveDuration(d time.Duration)
}

// observing reports whether a request's read time is needed.
func (s *Server) observing() bool { return s.Latency != nil || s.PCPLatency != nil }

// observe reports the time since the read of j to the observer of the
// protocol of the answer just written, reply: NAT-PMP's answers carry its
// version 0 (RFC 6886 §3.1); every other answer is the PCP handler's (RFC
// 6887 §9). A request that got no answer (reply empty) is not observed.
func (s *Server) observe(j *job, reply []byte) {
	if len(reply) == 0 || j.read.IsZero() {
		return
	}
	o := s.PCPLatency
	if reply[0] == natpmp.Version {
		o = s.Latency
	}
	if o != nil {
		o.ObserveDuration(time.Since(j.read))
	}
}
