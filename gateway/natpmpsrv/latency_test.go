package natpmpsrv

import (
	"net"
	"sync"
	"testing"
	"time"
)

// countingLatency counts what it observes.
type countingLatency struct {
	mu sync.Mutex
	n  int
}

func (c *countingLatency) ObserveDuration(d time.Duration) {
	if d < 0 {
		panic("negative duration")
	}
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *countingLatency) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestLatencyObserved: each answered NAT-PMP request is observed by
// Latency and each answered PCP one by PCPLatency; a packet without an
// answer is observed by neither.
func TestLatencyObserved(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	natpmpLat, pcpLat := &countingLatency{}, &countingLatency{}
	c := serveOn(t, &Server{Table: newTable(), PCP: &fakePCP{}, Latency: natpmpLat, PCPLatency: pcpLat}, conn)
	ask(t, c, []byte{0, 0}) // until Serve reads: retransmitted ones may be observed
	before := natpmpLat.count()

	ask(t, c, []byte{0, 0})
	ask(t, c, mapReq(2, 8080, 8080, 3600))
	ask(t, c, []byte{2, 1, 0, 0})
	if _, err := c.Write([]byte{0}); err != nil { // too short: ignored, no answer
		t.Fatal(err)
	}
	ask(t, c, []byte{2, 1, 0, 0})
	if got := natpmpLat.count() - before; got != 2 {
		t.Errorf("NAT-PMP requests observed: %d; want 2", got)
	}
	if got := pcpLat.count(); got != 2 {
		t.Errorf("PCP requests observed: %d; want 2", got)
	}
}
