package fwplan

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

func udp(eport uint16, internal string) gateway.Mapping {
	return gateway.Mapping{Protocol: gateway.UDP, ExternalPort: eport, Internal: netip.MustParseAddrPort(internal)}
}

// describeFlows lists mappings as "udp 15000 -> 198.51.100.10:5001
// [filters]", sorted.
func describeFlows(ms []gateway.Mapping) []string {
	var out []string
	for _, m := range ms {
		s := fmt.Sprintf("%v %d -> %v", m.Protocol, m.ExternalPort, m.Internal)
		if len(m.Filters) > 0 {
			s += fmt.Sprintf(" %v", m.Filters)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// TestFlows checks which mappings a batch ends (removed or moved to another
// endpoint, as they were; not renewals, additions, nor removals of
// mappings not held), which it grants to a port that an earlier batch
// vacated, which pinholes it closes and whose filters it changes; that an
// aborted batch vacates nothing; and that Wanted keeps the vacated keys.
func TestFlows(t *testing.T) {
	held := []gateway.Mapping{
		udp(15000, "198.51.100.10:5001"),
		tcp(18080, "198.51.100.10:8080", 0),
		udp(16000, "198.51.100.10:5002"),
	}
	anyEP := "0.0.0.0:0" // the internal endpoint of a removal is not used
	pin := func(internal string, filters ...string) gateway.Mapping {
		m := udp(0, internal)
		m.Pinhole = true
		m.ExternalPort = m.Internal.Port()
		for _, f := range filters {
			m.Filters = append(m.Filters, gateway.Filter{Remote: netip.MustParsePrefix(f)})
		}
		return m
	}
	filtered := func(m gateway.Mapping, filters ...string) gateway.Mapping {
		for _, f := range filters {
			m.Filters = append(m.Filters, gateway.Filter{Remote: netip.MustParsePrefix(f)})
		}
		return m
	}
	const pinEP = "[2001:db8:100::10]:4000"
	type step struct {
		add, remove                        []gateway.Mapping
		abort                              bool // Abort instead of Commit
		wanted                             bool // then Wanted of what is held
		ended, granted, closed, filteredTo []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"nothing", []step{{}}},
		{"removal", []step{{remove: []gateway.Mapping{udp(15000, anyEP)},
			ended: []string{"udp 15000 -> 198.51.100.10:5001"}}}},
		{"removal of a mapping not held", []step{{remove: []gateway.Mapping{udp(17000, anyEP)}}}},
		{"renewal", []step{{add: []gateway.Mapping{udp(15000, "198.51.100.10:5001")}}}},
		{"renewal as remove and add", []step{{
			add:    []gateway.Mapping{udp(15000, "198.51.100.10:5001")},
			remove: []gateway.Mapping{udp(15000, anyEP)}}}},
		{"moved to another host", []step{{
			add:    []gateway.Mapping{udp(15000, "198.51.100.11:5001")},
			remove: []gateway.Mapping{udp(15000, anyEP)},
			ended:  []string{"udp 15000 -> 198.51.100.10:5001"}}}},
		{"moved to another port, without a removal", []step{{
			add:   []gateway.Mapping{tcp(18080, "198.51.100.10:8081", 0)},
			ended: []string{"tcp 18080 -> 198.51.100.10:8080"}}}},
		{"new key", []step{{add: []gateway.Mapping{udp(17000, "198.51.100.10:5001")}}}},
		{"mixed", []step{{
			add:    []gateway.Mapping{udp(15000, "198.51.100.10:5001"), udp(16000, "198.51.100.12:5002")},
			remove: []gateway.Mapping{tcp(18080, anyEP, 0)},
			ended:  []string{"tcp 18080 -> 198.51.100.10:8080", "udp 16000 -> 198.51.100.10:5002"}}}},
		{"vacated port granted again", []step{
			{remove: []gateway.Mapping{udp(15000, anyEP)}, ended: []string{"udp 15000 -> 198.51.100.10:5001"}},
			{add: []gateway.Mapping{udp(15000, "198.51.100.11:5001")}, granted: []string{"udp 15000 -> 198.51.100.11:5001"}},
			// Granted once: its renewal and its next grant are not.
			{add: []gateway.Mapping{udp(15000, "198.51.100.11:5001")}},
		}},
		{"moved port not vacated", []step{
			{add: []gateway.Mapping{udp(15000, "198.51.100.11:5001")}, ended: []string{"udp 15000 -> 198.51.100.10:5001"}},
			{remove: []gateway.Mapping{udp(15000, anyEP)}, ended: []string{"udp 15000 -> 198.51.100.11:5001"}},
			{add: []gateway.Mapping{udp(15000, "198.51.100.10:5001")}, granted: []string{"udp 15000 -> 198.51.100.10:5001"}},
		}},
		{"aborted removal vacates nothing", []step{
			{remove: []gateway.Mapping{udp(15000, anyEP)}, abort: true, ended: []string{"udp 15000 -> 198.51.100.10:5001"}},
			{add: []gateway.Mapping{udp(15000, "198.51.100.10:5001")}},
		}},
		{"vacated through Wanted", []step{
			{remove: []gateway.Mapping{udp(15000, anyEP)}, wanted: true, ended: []string{"udp 15000 -> 198.51.100.10:5001"}},
			{add: []gateway.Mapping{udp(15000, "198.51.100.10:5001")}, granted: []string{"udp 15000 -> 198.51.100.10:5001"}},
		}},
		{"pinholes", []step{
			{add: []gateway.Mapping{pin(pinEP)}},
			{add: []gateway.Mapping{pin(pinEP, "2001:db8:203::/64")},
				filteredTo: []string{"udp 4000 -> [2001:db8:100::10]:4000 [{2001:db8:203::/64 0}]"}},
			{add: []gateway.Mapping{pin(pinEP, "2001:db8:203::/64")}},
			{add: []gateway.Mapping{pin(pinEP)}}, // filters gone: admits more, ends nothing
			{remove: []gateway.Mapping{pin(pinEP)}, closed: []string{"udp 4000 -> [2001:db8:100::10]:4000"}},
			{remove: []gateway.Mapping{pin(pinEP)}},
		}},
		{"filters of mappings", []step{
			{add: []gateway.Mapping{filtered(udp(15000, "198.51.100.10:5001"), "203.0.113.0/24")},
				filteredTo: []string{"udp 15000 -> 198.51.100.10:5001 [{203.0.113.0/24 0}]"}},
			{add: []gateway.Mapping{filtered(udp(15000, "198.51.100.10:5001"), "203.0.113.0/24")}},
			{add: []gateway.Mapping{filtered(udp(15000, "198.51.100.11:5001"), "203.0.113.7/32")},
				ended: []string{"udp 15000 -> 198.51.100.10:5001"}}, // moved: Ended has its flows
			{add: []gateway.Mapping{filtered(udp(17000, "198.51.100.10:5001"), "203.0.113.0/24")}}, // new
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			s := New(Config{}, now)
			if _, err := s.Plan(now, held, nil); err != nil {
				t.Fatal(err)
			}
			s.Commit()
			for i, st := range tt.steps {
				p, err := s.Plan(now, st.add, st.remove)
				if err != nil {
					t.Fatal(err)
				}
				if st.abort {
					s.Abort()
				} else {
					s.Commit()
				}
				for _, c := range []struct {
					what      string
					got, want []string
				}{
					{"ended", describeFlows(p.Flows.Ended), st.ended},
					{"granted", describeFlows(p.Flows.Granted), st.granted},
					{"closed", describeFlows(p.Flows.Closed), st.closed},
					{"filtered", describeFlows(p.Flows.Filtered), st.filteredTo},
				} {
					if !slices.Equal(c.got, c.want) {
						t.Errorf("step %d (add %v, remove %v): %s %q; want %q", i, st.add, st.remove, c.what, c.got, c.want)
					}
				}
				if st.wanted {
					var want []gateway.Mapping
					for k, e := range s.in {
						want = append(want, gateway.Mapping{Protocol: k.proto, ExternalPort: k.eport,
							Internal: netip.AddrPortFrom(netip.AddrFrom4(e.addr), e.iport)})
					}
					if s, _, err = s.Wanted(now, want); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}

	t.Run("KeepFlows", func(t *testing.T) {
		now := time.Now()
		s := New(Config{KeepFlows: true}, now)
		if _, err := s.Plan(now, held, nil); err != nil {
			t.Fatal(err)
		}
		s.Commit()
		p, err := s.Plan(now, nil, held)
		if err != nil {
			t.Fatal(err)
		}
		s.Commit()
		if !p.Flows.Empty() || s.vacated != nil {
			t.Errorf("Flows with KeepFlows = %+v, vacated %v; want nothing", p.Flows, s.vacated)
		}
	})
}
