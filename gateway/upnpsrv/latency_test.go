package upnpsrv

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portlease/portlease/upnp"
)

// countingLatency counts what it observes.
type countingLatency struct{ n atomic.Int64 }

func (c *countingLatency) ObserveDuration(time.Duration) { c.n.Add(1) }

// TestLatencyObserved: each control action is observed, answered with its
// response or a fault; a description's retrieval is not.
func TestLatencyObserved(t *testing.T) {
	cfg := testConfig(t)
	lat := &countingLatency{}
	cfg.Latency = lat
	s := startServer(t, cfg, nil, nil)
	mustCall(t, s, hostA, ctlIP, upnp.GetStatusInfo(upnp.ServiceWANIP2))
	if _, err := call(t, s, hostA, ctlIP, upnp.DeletePortMapping(upnp.ServiceWANIP2, "", 40000, "TCP")); codeOf(err) != 714 {
		t.Fatalf("DeletePortMapping of nothing: %v; want 714", err)
	}
	if w := serve(s, hostA, http.MethodGet, DescriptionPath, nil, nil); w.Code != http.StatusOK {
		t.Fatalf("GET of the description: HTTP %d", w.Code)
	}
	if got := lat.n.Load(); got != 2 {
		t.Errorf("observed %d; want the 2 control actions", got)
	}
}
