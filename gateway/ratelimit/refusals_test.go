package ratelimit

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func newTestRefusalLog(c *clock, maxHosts int) (*RefusalLog, *bytes.Buffer) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	r := NewRefusalLog(RefusalLogConfig{
		Message:  "refused: host at its share",
		Level:    slog.LevelInfo,
		Interval: time.Minute,
		MaxHosts: maxHosts,
		Logger:   log,
		Now:      c.now,
	})
	return r, &buf
}

func TestRefusalLogOncePerIntervalPerHost(t *testing.T) {
	c := newClock()
	r, buf := newTestRefusalLog(c, 0)
	a, b := addr("198.51.100.10"), addr("198.51.100.11")
	for i := range 1000 {
		r.Note(a, "n", i)
	}
	want := `level=INFO msg="refused: host at its share" host=198.51.100.10 refused=1 n=0` + "\n"
	if buf.String() != want {
		t.Fatalf("log after 1000 refusals in an instant:\n%s\nwant the first alone:\n%s", buf.String(), want)
	}
	buf.Reset()
	r.Note(b)
	want = `level=INFO msg="refused: host at its share" host=198.51.100.11 refused=1` + "\n"
	if buf.String() != want {
		t.Fatalf("another host's first refusal, while the first host is held back:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	c.advance(59 * time.Second)
	r.Note(a)
	if buf.Len() != 0 {
		t.Fatalf("logged again within the interval:\n%s", buf.String())
	}
	c.advance(time.Second)
	r.Note(a, "n", "last")
	want = `level=INFO msg="refused: host at its share" host=198.51.100.10 refused=1001 n=last` + "\n" // 999 + 1 + 1
	if buf.String() != want {
		t.Fatalf("log once the interval has passed:\n%s\nwant the count since the last record:\n%s", buf.String(), want)
	}
}

func TestRefusalLogMappedIPv4IsTheSameHost(t *testing.T) {
	c := newClock()
	r, buf := newTestRefusalLog(c, 0)
	r.Note(addr("198.51.100.10"))
	r.Note(addr("::ffff:198.51.100.10"))
	if got := strings.Count(buf.String(), "\n"); got != 1 {
		t.Fatalf("198.51.100.10 and ::ffff:198.51.100.10 logged as two hosts:\n%s", buf.String())
	}
}

func TestRefusalLogBoundedHosts(t *testing.T) {
	c := newClock()
	r, buf := newTestRefusalLog(c, 2)
	a := addr("2001:db8::1")
	for range 5 {
		r.Note(a) // the first logged, 4 kept
	}
	r.Note(addr("2001:db8::2"))
	buf.Reset()
	r.Note(addr("2001:db8::3")) // makes room: a is the idlest
	if got := strings.Count(buf.String(), "host=2001:db8::1 refused=4\n"); got != 1 {
		t.Fatalf("log:\n%s\nwant the idlest host's 4 refusals not logged yet reported when it is dropped", buf.String())
	}
	for i := range 10_000 {
		r.Note(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}))
	}
	if r.Hosts() != 2 {
		t.Fatalf("Hosts() = %d after 10,000 hosts; want the bound, 2", r.Hosts())
	}
}

func TestNilRefusalLog(t *testing.T) {
	var r *RefusalLog
	r.Note(addr("198.51.100.10"))
	if r.Hosts() != 0 {
		t.Fatalf("nil RefusalLog: Hosts() = %d", r.Hosts())
	}
}
