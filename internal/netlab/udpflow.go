package netlab

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// UDPSink notes the datagrams one socket of a lab host receives: how many,
// when the last came and from where. Tests use it to see where a flow goes.
type UDPSink struct {
	mu   sync.Mutex
	n    int
	last time.Time
	from string
}

// ListenUDPSink receives datagrams on addr of h until the test ends.
func ListenUDPSink(t testing.TB, h *Host, addr string) *UDPSink {
	t.Helper()
	pc, err := h.ListenPacket(udpNetwork(addr), addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &UDPSink{}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.n++
			s.last = time.Now()
			s.from = from.String()
			s.mu.Unlock()
		}
	}()
	return s
}

// Count returns how many datagrams came.
func (s *UDPSink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Last returns when the last datagram came, the zero time for none.
func (s *UDPSink) Last() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// From returns where the last datagram came from, "" for none.
func (s *UDPSink) From() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.from
}

// SendUDPFlow sends a datagram every 20 ms from local on h to to, always
// from the same socket (so the same source port: one flow for conntrack),
// until the test ends.
func SendUDPFlow(t testing.TB, h *Host, local, to string) {
	t.Helper()
	pc, err := h.ListenPacket(udpNetwork(to), local)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := net.ResolveUDPAddr(udpNetwork(to), to)
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); <-done; pc.Close() })
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			// An ICMP error (port unreachable while nothing is mapped)
			// does not end the flow.
			_, _ = pc.WriteTo([]byte("flow"), dst)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// udpNetwork returns "udp6" for an address of an IPv6 literal ("[...]:port"),
// "udp4" for any other.
func udpNetwork(addr string) string {
	if strings.HasPrefix(addr, "[") {
		return "udp6"
	}
	return "udp4"
}
