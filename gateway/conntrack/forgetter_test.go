package conntrack

import (
	"net/netip"
	"testing"

	"github.com/portlease/portlease/gateway"
)

// TestForgetterIdle checks, without a kernel, that a Forgetter starts no
// round for empty changes nor for changes added after Close, and that
// Close is safe twice.
func TestForgetterIdle(t *testing.T) {
	w := NewForgetter(0, nil)
	w.Add(Changes{})
	if w.running {
		t.Error("a round started for empty changes")
	}
	w.Close()
	w.Add(Changes{Ended: []gateway.Mapping{{Protocol: gateway.UDP, ExternalPort: 15000,
		Internal: netip.MustParseAddrPort("198.51.100.10:5001")}}})
	if w.running || len(w.pending.Ended) != 0 {
		t.Error("changes added after Close were kept")
	}
	w.Close()
}
