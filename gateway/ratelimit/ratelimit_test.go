package ratelimit

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Unix(1_000_000, 0)} }
func addr(s string) netip.Addr           { return netip.MustParseAddr(s) }
func allowN(l *Limiter, a netip.Addr, n int) (allowed int) {
	for range n {
		if l.Allow(a) {
			allowed++
		}
	}
	return allowed
}

func TestBurstThenRate(t *testing.T) {
	c := newClock()
	l := New(Config{Rate: 10, Burst: 20, Now: c.now})
	a := addr("198.51.100.10")
	if got := allowN(l, a, 50); got != 20 {
		t.Fatalf("50 requests at once: %d allowed; want the burst, 20", got)
	}
	c.advance(time.Second)
	if got := allowN(l, a, 50); got != 10 {
		t.Fatalf("50 requests a second later: %d allowed; want the rate, 10", got)
	}
	c.advance(100 * time.Millisecond)
	if got := allowN(l, a, 5); got != 1 {
		t.Fatalf("5 requests 100 ms later: %d allowed; want 1", got)
	}
	c.advance(time.Hour)
	if got := allowN(l, a, 50); got != 20 {
		t.Fatalf("50 requests after an hour idle: %d allowed; want the burst, 20 (the bucket never holds more)", got)
	}
}

func TestHostsHaveTheirOwnBuckets(t *testing.T) {
	c := newClock()
	l := New(Config{Rate: 1, Burst: 3, Now: c.now})
	a, b := addr("198.51.100.10"), addr("198.51.100.11")
	if got := allowN(l, a, 100); got != 3 {
		t.Fatalf("host a: %d allowed; want 3", got)
	}
	if got := allowN(l, b, 3); got != 3 {
		t.Fatalf("host b after a emptied its bucket: %d of 3 allowed; want all", got)
	}
}

func TestMappedIPv4IsTheSameHost(t *testing.T) {
	c := newClock()
	l := New(Config{Rate: 1, Burst: 2, Now: c.now})
	if got := allowN(l, addr("198.51.100.10"), 2) + allowN(l, addr("::ffff:198.51.100.10"), 2); got != 2 {
		t.Fatalf("198.51.100.10 and ::ffff:198.51.100.10: %d allowed; want 2 (one bucket)", got)
	}
}

func TestZeroBurstIsOne(t *testing.T) {
	c := newClock()
	l := New(Config{Rate: 1, Now: c.now})
	if got := allowN(l, addr("198.51.100.10"), 5); got != 1 {
		t.Fatalf("burst 0: %d allowed; want 1", got)
	}
}

func TestNilLimiterAllows(t *testing.T) {
	var l *Limiter
	if got := allowN(l, addr("198.51.100.10"), 1000); got != 1000 {
		t.Fatalf("nil limiter: %d of 1000 allowed", got)
	}
	if l.Hosts() != 0 {
		t.Fatalf("nil limiter: Hosts() = %d", l.Hosts())
	}
}

func TestIdlestHostEvicted(t *testing.T) {
	c := newClock()
	l := New(Config{Rate: 1, Burst: 2, MaxHosts: 3, Now: c.now})
	h := []netip.Addr{addr("198.51.100.1"), addr("198.51.100.2"), addr("198.51.100.3"), addr("198.51.100.4")}
	for _, a := range h[:3] {
		allowN(l, a, 2) // empty each bucket
	}
	l.Allow(h[0]) // h[0] is now the most recently used, h[1] the idlest
	allowN(l, h[3], 1)
	if l.Hosts() != 3 {
		t.Fatalf("Hosts() = %d after a fourth host; want the bound, 3", l.Hosts())
	}
	if l.Allow(h[0]) || l.Allow(h[2]) {
		t.Fatal("a host that kept its bucket got a token back without waiting")
	}
	if !l.Allow(h[1]) {
		t.Fatal("the idlest host was not evicted: its bucket is still empty")
	}
	for i := range 10_000 {
		l.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if l.Hosts() != 3 {
		t.Fatalf("Hosts() = %d after 10,000 hosts; want 3", l.Hosts())
	}
}

func TestRefusalsLoggedOncePerInterval(t *testing.T) {
	c := newClock()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	l := New(Config{Rate: 1, Burst: 1, Service: "natpmp", LogInterval: 10 * time.Second, Logger: log, Now: c.now})
	a := addr("198.51.100.10")
	allowN(l, a, 1001) // 1 allowed, 1000 refused: the first logged at once, 999 kept
	want := `level=WARN msg="requests over the rate refused" service=natpmp host=198.51.100.10 refused=1` + "\n"
	if buf.String() != want {
		t.Fatalf("log after 1000 refusals in an instant:\n%s\nwant one record:\n%s", buf.String(), want)
	}
	buf.Reset()
	for range 9 {
		c.advance(time.Second)
		allowN(l, a, 11) // 1 allowed, 10 refused each second
	}
	if buf.Len() != 0 {
		t.Fatalf("logged again within the interval:\n%s", buf.String())
	}
	c.advance(time.Second)
	allowN(l, a, 2)                                                                                                // 1 allowed, 1 refused: the interval has passed
	want = `level=WARN msg="requests over the rate refused" service=natpmp host=198.51.100.10 refused=1090` + "\n" // 999 + 9×10 + 1
	if buf.String() != want {
		t.Fatalf("log after the interval:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestEvictionLogsPendingRefusals(t *testing.T) {
	c := newClock()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	l := New(Config{Rate: 1, Burst: 1, MaxHosts: 1, Logger: log, Now: c.now})
	allowN(l, addr("198.51.100.10"), 6) // 5 refused, the first logged
	allowN(l, addr("198.51.100.11"), 2) // evicts .10's bucket, and its count with .11's refusal
	if got := strings.Count(buf.String(), "host=198.51.100.10 refused=4"); got != 1 {
		t.Fatalf("log:\n%s\nwant the 4 refusals not logged yet reported at eviction", buf.String())
	}
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func TestConcurrentUse(t *testing.T) {
	l := New(Config{Rate: 1e9, Burst: 1 << 30, MaxHosts: 16})
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 1000 {
				l.Allow(netip.AddrFrom4([4]byte{198, 51, 100, byte(g*32 + i%32)}))
			}
		}()
	}
	for range 8 {
		<-done
	}
	if l.Hosts() > 16 {
		t.Fatalf("Hosts() = %d; want at most 16", l.Hosts())
	}
}
