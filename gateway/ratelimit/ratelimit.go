// Package ratelimit bounds how many requests one source address may make:
// a token bucket per host (rate per second, burst), a bounded number of
// hosts with the idlest evicted in O(1), and refusals logged once per
// interval per host with the number refused since, never once per packet.
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
	// Zero: DefaultMaxHosts.
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
	maxHosts int
	service  string
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu    sync.Mutex
	hosts map[netip.Addr]*bucket
	// lru is the sentinel of a circular list of the buckets, most
	// recently used first: the idlest is lru.prev.
	lru bucket
}

// bucket is one host's token bucket and the refusals not logged yet.
type bucket struct {
	host       netip.Addr
	tokens     float64
	last       time.Time // when tokens was computed
	refused    int       // refusals since the last log record
	loggedAt   time.Time // when the last log record was written
	prev, next *bucket
}

// New returns a Limiter configured by cfg.
func New(cfg Config) *Limiter {
	l := &Limiter{
		rate:     cfg.Rate,
		burst:    float64(max(cfg.Burst, 1)),
		maxHosts: cfg.MaxHosts,
		service:  cfg.Service,
		interval: cfg.LogInterval,
		log:      cfg.Logger,
		now:      cfg.Now,
		hosts:    make(map[netip.Addr]*bucket),
	}
	if l.maxHosts <= 0 {
		l.maxHosts = DefaultMaxHosts
	}
	if l.interval <= 0 {
		l.interval = DefaultLogInterval
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.lru.prev, l.lru.next = &l.lru, &l.lru
	return l
}

// Allow takes a token from host's bucket and reports whether there was one.
// A refusal is counted and logged at most once per LogInterval for host.
// It costs O(1).
func (l *Limiter) Allow(host netip.Addr) bool {
	if l == nil {
		return true
	}
	host = host.Unmap()
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.hosts[host]
	if b == nil {
		b = l.add(host, now)
	} else {
		l.unlink(b)
		l.pushFront(b)
		if elapsed := now.Sub(b.last); elapsed > 0 {
			b.tokens = min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
			b.last = now
		}
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	b.refused++
	if b.loggedAt.IsZero() || now.Sub(b.loggedAt) >= l.interval {
		l.flush(b, now)
	}
	return false
}

// Hosts returns the number of hosts that have a bucket.
func (l *Limiter) Hosts() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hosts)
}

// add makes a full bucket for host, dropping the idlest one if the bound is
// reached.
func (l *Limiter) add(host netip.Addr, now time.Time) *bucket {
	var b *bucket
	if len(l.hosts) >= l.maxHosts {
		b = l.lru.prev
		l.unlink(b)
		delete(l.hosts, b.host)
		if b.refused > 0 {
			l.flush(b, now)
		}
		*b = bucket{}
	} else {
		b = new(bucket)
	}
	b.host, b.tokens, b.last = host, l.burst, now
	l.hosts[host] = b
	l.pushFront(b)
	return b
}

// flush logs b's refusals not logged yet.
func (l *Limiter) flush(b *bucket, now time.Time) {
	l.log.Warn("requests over the rate refused", "service", l.service, "host", b.host, "refused", b.refused)
	b.refused = 0
	b.loggedAt = now
}

func (l *Limiter) unlink(b *bucket) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}

func (l *Limiter) pushFront(b *bucket) {
	b.prev, b.next = &l.lru, l.lru.next
	l.lru.next.prev = b
	l.lru.next = b
}
