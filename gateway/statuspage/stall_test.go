package statuspage

import (
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// TestStalledStreamEnds: a page that opens the event stream and stops
// reading loses it once a write has waited Config.StreamWrite, and its
// place among MaxStreams is free again; it does not hold it forever.
func TestStalledStreamEnds(t *testing.T) {
	f := newFake()
	desc := strings.Repeat("x", 1000)
	for i := range 2000 {
		f.leases = append(f.leases, gateway.Lease{Protocol: gateway.TCP, ExternalPort: uint16(10000 + i),
			Internal: netip.AddrPortFrom(netip.MustParseAddr("198.51.100.2"), uint16(10000+i)), Origin: gateway.OriginUPnP,
			Description: desc, Created: time.Unix(1000, 0)})
	}
	h := newHandler(t, Config{Table: f, MaxStreams: 1, Coalesce: time.Millisecond, StreamWrite: 200 * time.Millisecond})
	srv := httptest.NewServer(h)
	defer srv.Close()

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", EventsPath, srv.Listener.Addr()); err != nil {
		t.Fatal(err)
	}
	// Never read: every change makes a snapshot of some 2 MB, which soon
	// fills the sockets' buffers.
	deadline := time.Now().Add(20 * time.Second)
	for f.watching() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f.watching() == 0 {
		t.Fatal("the stream never started")
	}
	for f.watching() != 0 && time.Now().Before(deadline) {
		f.change(func(*fakeTable) {})
		time.Sleep(20 * time.Millisecond)
	}
	if n := f.watching(); n != 0 {
		t.Fatalf("a stream that nobody reads still runs after 20 s (%d watching)", n)
	}
	if n := len(h.streams); n != 0 {
		t.Errorf("%d places among MaxStreams still taken; want 0", n)
	}
}
