package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// refusalRecords returns the log's records of refusals, one a line, without
// their time.
func refusalRecords(buf *bytes.Buffer) []string {
	var out []string
	for line := range strings.Lines(buf.String()) {
		if strings.Contains(line, `msg=refused`) || strings.Contains(line, `msg="refused`) {
			out = append(out, strings.TrimSuffix(line, "\n"))
		}
	}
	buf.Reset()
	return out
}

func newLoggedTable(t *testing.T, p Policy) (tab *Table, buf *bytes.Buffer, advance func(time.Duration)) {
	t.Helper()
	now := time.Unix(1_000_000, 0)
	buf = new(bytes.Buffer)
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	tab = New(Config{Policy: p, Firewall: newRecordingFirewall(), Logger: log, Now: func() time.Time { return now },
		Rand: rand.New(rand.NewPCG(1, 2))})
	return tab, buf, func(d time.Duration) { now = now.Add(d) }
}

// TestShareRefusalsLoggedOncePerInterval: a host at its share that keeps
// asking gets one record a minute with the count refused since, not one a
// request; another host's refusals have records of their own.
func TestShareRefusalsLoggedOncePerInterval(t *testing.T) {
	p := defaultPolicy()
	p.MaxPerHost = 1
	tab, buf, advance := newLoggedTable(t, p)
	ctx := context.Background()
	mustMap(t, tab, mapReq(TCP, client1, 4000, 0))
	mustMap(t, tab, mapReq(TCP, client2, 4000, 0))
	buf.Reset()
	for port := range uint16(500) {
		if _, err := tab.Map(ctx, mapReq(UDP, client1, 5000+port, 0)); err == nil {
			t.Fatal("Map beyond the host's share granted")
		}
	}
	recs := refusalRecords(buf)
	if len(recs) != 1 || !strings.HasPrefix(recs[0], `level=INFO msg="refused: host at its share" host=198.51.100.10 refused=1 proto=udp internal=198.51.100.10:5000`) {
		t.Fatalf("records of 500 refusals in an instant:\n%s\nwant the first alone, with its count and request", strings.Join(recs, "\n"))
	}
	if _, err := tab.Map(ctx, mapReq(UDP, client2, 5000, 0)); err == nil {
		t.Fatal("Map beyond the second host's share granted")
	}
	if recs := refusalRecords(buf); len(recs) != 1 || !strings.Contains(recs[0], "host=198.51.100.11 refused=1 ") {
		t.Fatalf("records of another host's first refusal:\n%s\nwant one of its own", strings.Join(recs, "\n"))
	}
	advance(59 * time.Second)
	tab.Map(ctx, mapReq(UDP, client1, 6000, 0))
	if recs := refusalRecords(buf); len(recs) != 0 {
		t.Fatalf("logged again within the minute:\n%s", strings.Join(recs, "\n"))
	}
	advance(time.Second)
	tab.Map(ctx, mapReq(UDP, client1, 6001, 0))
	if recs := refusalRecords(buf); len(recs) != 1 || !strings.Contains(recs[0], "host=198.51.100.10 refused=501 proto=udp internal=198.51.100.10:6001") {
		t.Fatalf("records once the minute has passed:\n%s\nwant one with the 501 refusals since the last (499 + 1 + 1)", strings.Join(recs, "\n"))
	}
}

// TestShareRefusalsCountedByRequester: a third party (UPnP InternalClient,
// PCP THIRD_PARTY) asking for full hosts is one host in the log, whatever
// internal addresses it names.
func TestShareRefusalsCountedByRequester(t *testing.T) {
	p := defaultPolicy()
	p.MaxLeases = 1
	tab, buf, _ := newLoggedTable(t, p)
	ctx := context.Background()
	mustMap(t, tab, mapReq(TCP, client1, 4000, 0))
	buf.Reset()
	requester := netip.MustParseAddr("198.51.100.20")
	for i := range 100 {
		req := upnpReq(TCP, netip.AddrFrom4([4]byte{198, 51, 100, byte(30 + i)}), 4000, 4001)
		req.Requester = requester
		if _, err := tab.Map(ctx, req); err == nil {
			t.Fatal("Map on a full table granted")
		}
	}
	recs := refusalRecords(buf)
	if len(recs) != 1 || !strings.HasPrefix(recs[0], `level=INFO msg="refused: out of resources" host=198.51.100.20 refused=1 `) {
		t.Fatalf("records of a third party's 100 refusals on a full table:\n%s\nwant one, naming the requester", strings.Join(recs, "\n"))
	}
}

// TestOtherRefusalsLoggedEach: refusals that name a rule or a conflict to
// fix, not a share, are logged one by one as before.
func TestOtherRefusalsLoggedEach(t *testing.T) {
	tab, buf, _ := newLoggedTable(t, defaultPolicy())
	ctx := context.Background()
	mustMap(t, tab, upnpReq(TCP, client1, 4000, 4000))
	buf.Reset()
	outside := netip.MustParseAddr("203.0.113.9")
	for range 3 {
		tab.Map(ctx, mapReq(TCP, outside, 4000, 0))     // no rule allows it
		tab.Map(ctx, upnpReq(TCP, client2, 4000, 4000)) // the port is client1's
	}
	recs := refusalRecords(buf)
	var denied, conflicts int
	for _, r := range recs {
		if !strings.HasPrefix(r, "level=INFO msg=refused ") {
			t.Fatalf("record %q; want msg=refused", r)
		}
		switch {
		case strings.Contains(r, "not authorized"):
			denied++
		case strings.Contains(r, "held by another"):
			conflicts++
		}
	}
	if denied != 3 || conflicts != 3 {
		t.Fatalf("records:\n%s\nwant 3 not authorized and 3 conflicts, each logged", strings.Join(recs, "\n"))
	}
}
