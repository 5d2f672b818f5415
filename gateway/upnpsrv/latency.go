package upnpsrv

import (
	"net/http"
	"net/netip"
	"time"
)

// Latency observes how long control actions take (gateway/metrics.Histogram).
// It must not block; it is called on the request's path.
type Latency interface {
	ObserveDuration(d time.Duration)
}

// timedControl serves a control request as control does and reports its
// duration to Config.Latency: from the call of the handler, once the
// request's header is read, to the answer's write into w (the server sends
// it when the handler returns).
func (s *Server) timedControl(w http.ResponseWriter, r *http.Request, svc *service, client netip.Addr) {
	if s.cfg.Latency == nil {
		s.control(w, r, svc, client)
		return
	}
	start := time.Now()
	s.control(w, r, svc, client)
	s.cfg.Latency.ObserveDuration(time.Since(start))
}
