package main

import (
	"net/netip"
	"testing"

	"github.com/portlease/portlease/gateway/config"
)

func TestHostLimiterFollowsReloads(t *testing.T) {
	host := netip.MustParseAddr("198.51.100.10")
	h := newHostLimiter("natpmp", config.RequestRate{}, nil)
	for range 1000 {
		if !h.Allow(host) {
			t.Fatal("request rate per host none refused a request")
		}
	}
	one := config.RequestRate{PerSecond: 1, Burst: 1}
	h.set(one)
	if !h.Allow(host) || h.Allow(host) {
		t.Fatal("rate 1 burst 1: want the first request allowed, the second refused")
	}
	h.set(one)
	if h.Allow(host) {
		t.Fatal("a reload that kept the rate gave the host a new bucket")
	}
	h.set(config.RequestRate{})
	if !h.Allow(host) {
		t.Fatal("none after a reload still refuses")
	}
}
