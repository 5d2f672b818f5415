package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

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
	host0 := netlab.ListenUDPSink(t, lan0, fmt.Sprintf(":%d", iport))
	host1 := netlab.ListenUDPSink(t, lan1, fmt.Sprintf(":%d", iport))

	eport := natpmpcMap(t, lab, lan0, 43000, iport, "udp", 3600)
	ext := fmt.Sprintf("%s:%d", lab.GatewayWANAddr4, eport)
	wanSource := lab.WAN.Addr4.String() + ":41000"
	netlab.SendUDPFlow(t, lab.WAN, wanSource, ext)
	eventually(t, "the WAN flow reaches LAN host 0", func() bool {
		n := host0.Count()
		return n > 0
	})

	natpmpcDelete(t, lab, lan0, eport, iport, "udp")
	deleted := time.Now()
	time.Sleep(1500 * time.Millisecond)
	if last := host0.Last(); last.After(deleted.Add(time.Second)) {
		t.Fatalf("LAN host 0 still received the flow %v after natpmpc deleted its mapping", last.Sub(deleted))
	}

	if got := natpmpcMap(t, lab, lan1, eport, iport, "udp", 3600); got != eport {
		t.Fatalf("LAN host 1 asked for the freed external port %d and got %d", eport, got)
	}
	eventually(t, "the same WAN flow reaches LAN host 1", func() bool {
		n := host1.Count()
		return n > 0
	})
	if from := host1.From(); from != wanSource {
		t.Errorf("LAN host 1 receives the flow from %s; want %s", from, wanSource)
	}
	before := host0.Count()
	time.Sleep(300 * time.Millisecond)
	if n := host0.Count(); n != before {
		t.Errorf("LAN host 0 received %d more datagrams after the port moved to LAN host 1", n-before)
	}
}
