package main

import (
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/gateway/metrics"
	"github.com/portlease/portlease/gateway/ratelimit"
)

// hostLimiter is the "request rate per host" limit of one service (NAT-PMP
// and PCP together, or UPnP's SOAP actions), as the front-ends' Limiter
// fields take it. A reload that changes the directive replaces the buckets
// whole; one that does not keeps them. set is called from the daemon's main
// loop only; Allow from any goroutine.
type hostLimiter struct {
	service string
	log     *slog.Logger
	rate    config.RequestRate
	cur     atomic.Pointer[ratelimit.Limiter] // nil: no limit
	// refused counts the requests refused (metrics.Gateway.RateRefused);
	// nil: not counted.
	refused *metrics.Counter
}

func newHostLimiter(service string, r config.RequestRate, log *slog.Logger) *hostLimiter {
	h := &hostLimiter{service: service, log: log}
	h.apply(r)
	return h
}

// set puts the limit r in force, unless it is the one in force.
func (h *hostLimiter) set(r config.RequestRate) {
	if r != h.rate {
		h.apply(r)
	}
}

func (h *hostLimiter) apply(r config.RequestRate) {
	h.rate = r
	if r.PerSecond == 0 {
		h.cur.Store(nil)
		return
	}
	h.cur.Store(ratelimit.New(ratelimit.Config{Rate: float64(r.PerSecond), Burst: r.Burst, Service: h.service, Logger: h.log}))
}

// Allow reports whether host may make one more request now.
func (h *hostLimiter) Allow(host netip.Addr) bool {
	if h.cur.Load().Allow(host) {
		return true
	}
	if h.refused != nil {
		h.refused.Inc()
	}
	return false
}
