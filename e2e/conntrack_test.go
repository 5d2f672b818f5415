package e2e

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// flowSink notes the datagrams a LAN host receives on one socket.
type flowSink struct {
	mu   sync.Mutex
	n    int
	last time.Time
	from string
	done chan struct{}
}

// sinkUDP receives datagrams on addr of host until the test ends.
func sinkUDP(t *testing.T, host *netlab.Host, addr string) *flowSink {
	t.Helper()
	pc, err := host.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &flowSink{done: make(chan struct{})}
	t.Cleanup(func() { pc.Close(); <-s.done })
	go func() {
		defer close(s.done)
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

// state returns how many datagrams came, when the last one did and from
// where.
func (s *flowSink) state() (int, time.Time, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.last, s.from
}

// sendFlow sends a datagram every 20 ms from local on host to to, always
// from the same socket (the same source port), until the test ends.
func sendFlow(t *testing.T, host *netlab.Host, local, to string) {
	t.Helper()
	pc, err := host.ListenPacket("udp4", local)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := net.ResolveUDPAddr("udp4", to)
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
			// An ICMP error while nothing is mapped does not end the
			// flow.
			_, _ = pc.WriteTo([]byte("flow"), dst)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// TestDeletedMappingFlowsMove is issue 9's conntrack check through the
// whole daemon: LAN host 0 maps a UDP port with natpmpc and a WAN host keeps
// sending to it from one source port; once natpmpc deletes the mapping
// (lifetime 0), the flow stops reaching LAN host 0 within a second; when LAN
// host 1 asks natpmpc for the same external port and gets it, the same flow
// reaches LAN host 1.
func TestDeletedMappingFlowsMove(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan0, lan1 := lab.LAN[0], lab.LAN[1]
	const iport = 5300
	host0 := sinkUDP(t, lan0, fmt.Sprintf(":%d", iport))
	host1 := sinkUDP(t, lan1, fmt.Sprintf(":%d", iport))

	eport := natpmpcMap(t, lab, lan0, 43000, iport, "udp", 3600)
	ext := fmt.Sprintf("%s:%d", lab.GatewayWANAddr4, eport)
	wanSource := lab.WAN.Addr4.String() + ":41000"
	sendFlow(t, lab.WAN, wanSource, ext)
	eventually(t, "the WAN flow reaches LAN host 0", func() bool {
		n, _, _ := host0.state()
		return n > 0
	})

	out := natpmpc(t, lab, lan0, "-a", fmt.Sprint(eport), fmt.Sprint(iport), "udp", "0")
	if !strings.Contains(out, "lifetime 0") && !strings.Contains(out, "liftime 0") {
		t.Fatalf("natpmpc delete printed no zero lifetime:\n%s", out)
	}
	deleted := time.Now()
	time.Sleep(1500 * time.Millisecond)
	if _, last, _ := host0.state(); last.After(deleted.Add(time.Second)) {
		t.Fatalf("LAN host 0 still received the flow %v after natpmpc deleted its mapping", last.Sub(deleted))
	}

	if got := natpmpcMap(t, lab, lan1, eport, iport, "udp", 3600); got != eport {
		t.Fatalf("LAN host 1 asked for the freed external port %d and got %d", eport, got)
	}
	eventually(t, "the same WAN flow reaches LAN host 1", func() bool {
		n, _, _ := host1.state()
		return n > 0
	})
	if _, _, from := host1.state(); from != wanSource {
		t.Errorf("LAN host 1 receives the flow from %s; want %s", from, wanSource)
	}
	before, _, _ := host0.state()
	time.Sleep(300 * time.Millisecond)
	if n, _, _ := host0.state(); n != before {
		t.Errorf("LAN host 0 received %d more datagrams after the port moved to LAN host 1", n-before)
	}
}
