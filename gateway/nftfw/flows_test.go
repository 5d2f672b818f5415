package nftfw

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// TestFlowChanges checks, without a kernel, which mappings a transaction
// ends (removed or moved to another endpoint, as they were; not renewals,
// additions, nor removals of mappings not held) and which it grants to a
// port that an earlier transaction vacated.
func TestFlowChanges(t *testing.T) {
	held := []gateway.Mapping{
		udpMapping(15000, "198.51.100.10:5001"),
		tcpMapping(18080, "198.51.100.10:8080"),
		udpMapping(16000, "198.51.100.10:5002"),
	}
	anyEP := "0.0.0.0:0" // the internal endpoint of a removal is not used
	type step struct {
		add, remove    []gateway.Mapping
		ended, granted []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"nothing", []step{{}}},
		{"removal", []step{{remove: []gateway.Mapping{udpMapping(15000, anyEP)},
			ended: []string{"udp 15000 -> 198.51.100.10:5001"}}}},
		{"removal of a mapping not held", []step{{remove: []gateway.Mapping{udpMapping(17000, anyEP)}}}},
		{"renewal", []step{{add: []gateway.Mapping{udpMapping(15000, "198.51.100.10:5001")}}}},
		{"renewal as remove and add", []step{{
			add:    []gateway.Mapping{udpMapping(15000, "198.51.100.10:5001")},
			remove: []gateway.Mapping{udpMapping(15000, anyEP)}}}},
		{"moved to another host", []step{{
			add:    []gateway.Mapping{udpMapping(15000, "198.51.100.11:5001")},
			remove: []gateway.Mapping{udpMapping(15000, anyEP)},
			ended:  []string{"udp 15000 -> 198.51.100.10:5001"}}}},
		{"moved to another port, without a removal", []step{{
			add:   []gateway.Mapping{tcpMapping(18080, "198.51.100.10:8081")},
			ended: []string{"tcp 18080 -> 198.51.100.10:8080"}}}},
		{"new key", []step{{add: []gateway.Mapping{udpMapping(17000, "198.51.100.10:5001")}}}},
		{"mixed", []step{{
			add:    []gateway.Mapping{udpMapping(15000, "198.51.100.10:5001"), udpMapping(16000, "198.51.100.12:5002")},
			remove: []gateway.Mapping{tcpMapping(18080, anyEP)},
			ended:  []string{"tcp 18080 -> 198.51.100.10:8080", "udp 16000 -> 198.51.100.10:5002"}}}},
		{"vacated port granted again", []step{
			{remove: []gateway.Mapping{udpMapping(15000, anyEP)}, ended: []string{"udp 15000 -> 198.51.100.10:5001"}},
			{add: []gateway.Mapping{udpMapping(15000, "198.51.100.11:5001")}, granted: []string{"udp 15000 -> 198.51.100.11:5001"}},
			// Granted once: its renewal and its next grant are not.
			{add: []gateway.Mapping{udpMapping(15000, "198.51.100.11:5001")}},
		}},
		{"moved port not vacated", []step{
			{add: []gateway.Mapping{udpMapping(15000, "198.51.100.11:5001")}, ended: []string{"udp 15000 -> 198.51.100.10:5001"}},
			{remove: []gateway.Mapping{udpMapping(15000, anyEP)}, ended: []string{"udp 15000 -> 198.51.100.11:5001"}},
			{add: []gateway.Mapping{udpMapping(15000, "198.51.100.10:5001")}, granted: []string{"udp 15000 -> 198.51.100.10:5001"}},
		}},
	}
	describe := func(ms []gateway.Mapping) []string {
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%v %d -> %v", m.Protocol, m.ExternalPort, m.Internal))
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Firewall{idx: newIndex(time.Now())}
			f.idx.adopt(f.idx.plan(time.Now(), DefaultTimeoutGrace, held, nil, gone{}))
			for i, s := range tt.steps {
				p := f.idx.plan(time.Now(), DefaultTimeoutGrace, s.add, s.remove, gone{})
				c := f.flowChanges(p)
				f.idx.adopt(p)
				if got := describe(c.Ended); !slices.Equal(got, s.ended) {
					t.Errorf("step %d (add %v, remove %v): ended %q; want %q", i, s.add, s.remove, got, s.ended)
				}
				if got := describe(c.Granted); !slices.Equal(got, s.granted) {
					t.Errorf("step %d (add %v, remove %v): granted %q; want %q", i, s.add, s.remove, got, s.granted)
				}
			}
		})
	}

	t.Run("KeepFlows", func(t *testing.T) {
		f := &Firewall{idx: newIndex(time.Now()), keepFlows: true}
		f.idx.adopt(f.idx.plan(time.Now(), DefaultTimeoutGrace, held, nil, gone{}))
		c := f.flowChanges(f.idx.plan(time.Now(), DefaultTimeoutGrace, nil, held, gone{}))
		if len(c.Ended)+len(c.Granted) != 0 || f.vacated != nil {
			t.Errorf("flowChanges with KeepFlows = %+v, vacated %v; want nothing", c, f.vacated)
		}
	})
}
