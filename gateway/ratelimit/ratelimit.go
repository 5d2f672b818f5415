// Package ratelimit bounds how many requests one source address may make:
// a token bucket per host (rate per second, burst), a bounded number of
// hosts with the idlest evicted in O(1), and refusals logged once per
// interval per host with the number refused since, never once per packet
// (RefusalLog, which other refusals a host can repeat at will use too: the
// core's fair shares).
//
// The front-ends (NAT-PMP and PCP, UPnP SOAP) each own a narrow interface
// with the one method Allow(netip.Addr) bool, which *Limiter satisfies; a
// service gets its own Limiter, so that a host's NAT-PMP requests and its
// SOAP actions draw from different buckets.
package ratelimit

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// DefaultMaxHosts is how many hosts a Limiter keeps a bucket for when
// Config.MaxHosts is zero. A bucket costs about 100 bytes.
const DefaultMaxHosts = 4096

// DefaultLogInterval is how often at most a host's refusals are logged when
// Config.LogInterval is zero.
const DefaultLogInterval = time.Minute

// Config describes a Limiter.
type Config struct {
	// Rate is the number of requests per second a host may sustain. It
	// must be positive; a service without a limit has no Limiter.
	Rate float64
	// Burst is how many requests a host may make at once after being
	// idle: the bucket's size. Zero or less: 1 (no burst).
	Burst int
	// MaxHosts bounds the number of buckets kept. When a new host comes
	// and the bound is reached, the bucket of the host that has been
	// idle longest is dropped: that host starts again with a full bucket.
	// Zero: DefaultMaxHosts. It bounds the hosts whose refusals are
	// counted for the log too.
	MaxHosts int
	// Service names what is limited in the log ("natpmp", "upnp").
	Service string
	// LogInterval is the least time between two log records of one
	// host's refusals. Zero: DefaultLogInterval.
	LogInterval time.Duration
	// Logger receives the refusals at warn level. Nil discards.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Limiter is a set of per-host token buckets. Its methods are safe for
// concurrent use. A nil *Limiter allows everything.
type Limiter struct {
	rate     float64
	burst    float64
	now      func() time.Time
	refusals *RefusalLog

	mu    sync.Mutex
	hosts *hostTable[bucket]
}

// bucket is one host's token bucket.
type bucket struct {
	tokens float64
	last   time.Time // when tokens was computed
}

// New returns a Limiter configured by cfg.
func New(cfg Config) *Limiter {
	maxHosts := cfg.MaxHosts
	if maxHosts <= 0 {
		maxHosts = DefaultMaxHosts
	}
	log := cfg.Logger
	if log != nil {
		log = log.With("service", cfg.Service)
	}
	l := &Limiter{
		rate:  cfg.Rate,
		burst: float64(max(cfg.Burst, 1)),
		now:   cfg.Now,
		refusals: NewRefusalLog(RefusalLogConfig{
			Message:  "requests over the rate refused",
			Level:    slog.LevelWarn,
			Interval: cfg.LogInterval,
			MaxHosts: maxHosts,
			Logger:   log,
			Now:      cfg.Now,
		}),
		hosts: newHostTable[bucket](maxHosts),
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// Allow takes a token from host's bucket and reports whether there was one.
// A refusal is counted and logged at most once per LogInterval for host
// (RefusalLog). It costs O(1).
func (l *Limiter) Allow(host netip.Addr) bool {
	if l == nil {
		return true
	}
	host = host.Unmap()
	if l.take(host) {
		return true
	}
	l.refusals.Note(host)
	return false
}

// take takes a token from host's bucket, made full if host has none, and
// reports whether there was one.
func (l *Limiter) take(host netip.Addr) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, fresh := l.hosts.use(host, forgetBucket)
	b := &e.val
	if fresh {
		b.tokens, b.last = l.burst, now
	} else if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// forgetBucket is what a Limiter does with the bucket of the idlest host
// when it makes room: nothing; the host starts again with a full one.
func forgetBucket(netip.Addr, *bucket) {}

// Hosts returns the number of hosts that have a bucket.
func (l *Limiter) Hosts() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts.len()
}
