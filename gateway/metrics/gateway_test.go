package metrics

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// fakeTable is a lease core with set leases and counters.
type fakeTable struct {
	leases   []gateway.Lease
	counters gateway.Counters
	usage    []gateway.HostUsage
	epoch    uint32
}

func (f *fakeTable) LeaseCounts() map[gateway.Protocol][4]int {
	out := make(map[gateway.Protocol][4]int)
	for _, l := range f.leases {
		c := out[l.Protocol]
		c[l.Origin]++
		out[l.Protocol] = c
	}
	return out
}
func (f *fakeTable) Counters() gateway.Counters { return f.counters }
func (f *fakeTable) Usage() []gateway.HostUsage { return f.usage }
func (f *fakeTable) Epoch() uint32              { return f.epoch }
func lease(p gateway.Protocol, o gateway.Origin) gateway.Lease {
	return gateway.Lease{Protocol: p, Origin: o}
}

// TestGatewayExposition: the lease core's counters, leases, hosts and
// epoch, the front-ends' latencies and rate refusals, each in its family
// and labels, with every protocol and origin shown, zeros included.
func TestGatewayExposition(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tbl := &fakeTable{
		leases: []gateway.Lease{lease(gateway.TCP, gateway.OriginNATPMP), lease(gateway.TCP, gateway.OriginNATPMP),
			lease(gateway.UDP, gateway.OriginUPnP), lease(gateway.TCP, gateway.OriginPCP)},
		counters: gateway.Counters{
			Granted: [4]uint64{0, 3, 1, 2}, Renewed: [4]uint64{0, 4, 0, 0}, Deleted: [4]uint64{0, 1, 0, 0}, Expired: [4]uint64{0, 0, 0, 5},
			Refused:      map[string]uint64{"host at its share": 2, "not allowed": 1},
			Transactions: 6, TransactionFailures: 1, TransactionSizes: [7]uint64{4, 1, 0, 0, 0, 0, 1}, TransactionMappings: 2000,
			JournalCommits: 9, JournalFailures: 2,
		},
		usage: []gateway.HostUsage{{Host: netip.MustParseAddr("198.51.100.10"), Leases: 3}, {Host: netip.MustParseAddr("198.51.100.11"), Leases: 1}},
		epoch: 42,
	}
	g := NewGateway(tbl, start, func() time.Time { return start.Add(90 * time.Second) })
	g.NATPMP.ObserveDuration(300 * time.Microsecond)
	g.NATPMP.ObserveDuration(3 * time.Millisecond)
	g.UPnP.ObserveDuration(20 * time.Millisecond)
	g.RateRefused.Add(7)
	b, err := g.Set().AppendText(nil)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{
		`portleased_leases{protocol="tcp",origin="natpmp"} 2`,
		`portleased_leases{protocol="tcp",origin="pcp"} 1`,
		`portleased_leases{protocol="tcp",origin="upnp"} 0`,
		`portleased_leases{protocol="udp",origin="natpmp"} 0`,
		`portleased_leases{protocol="udp",origin="upnp"} 1`,
		`portleased_hosts 2`,
		`portleased_grants_total{origin="natpmp"} 3`,
		`portleased_grants_total{origin="pcp"} 1`,
		`portleased_grants_total{origin="upnp"} 2`,
		`portleased_renewals_total{origin="natpmp"} 4`,
		`portleased_deletions_total{origin="natpmp"} 1`,
		`portleased_deletions_total{origin="upnp"} 0`,
		`portleased_expiries_total{origin="upnp"} 5`,
		`portleased_refusals_total{reason="host at its share"} 2`,
		`portleased_refusals_total{reason="not allowed"} 1`,
		`portleased_refusals_total{reason="rate"} 7`,
		`portleased_request_duration_seconds_bucket{protocol="natpmp",le="0.0005"} 1`,
		`portleased_request_duration_seconds_bucket{protocol="natpmp",le="0.005"} 2`,
		`portleased_request_duration_seconds_count{protocol="natpmp"} 2`,
		`portleased_request_duration_seconds_count{protocol="pcp"} 0`,
		`portleased_request_duration_seconds_count{protocol="upnp"} 1`,
		`portleased_request_duration_seconds_sum{protocol="upnp"} 0.02`,
		`portleased_kernel_transactions_total 6`,
		`portleased_kernel_transaction_failures_total 1`,
		`portleased_kernel_transaction_mappings_bucket{le="1"} 4`,
		`portleased_kernel_transaction_mappings_bucket{le="4"} 5`,
		`portleased_kernel_transaction_mappings_bucket{le="1024"} 5`,
		`portleased_kernel_transaction_mappings_bucket{le="+Inf"} 6`,
		`portleased_kernel_transaction_mappings_sum 2000`,
		`portleased_kernel_transaction_mappings_count 6`,
		`portleased_state_file_writes_total 9`,
		`portleased_state_file_write_failures_total 2`,
		`portleased_uptime_seconds 90`,
		`portleased_epoch_seconds 42`,
		"# TYPE portleased_request_duration_seconds histogram",
		"# TYPE portleased_grants_total counter",
		"# TYPE portleased_leases gauge",
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no line %q in:\n%s", want, text)
		}
	}
	// Families in name order.
	var names []string
	for line := range strings.Lines(text) {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			names = append(names, strings.Fields(name)[0])
		}
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("family %s before %s", names[i-1], names[i])
		}
	}
}

// TestGatewayRateReasonOfTheCore: should the core count refusals of reason
// "rate" too, they are added to the front-ends', in one sample.
func TestGatewayRateReasonOfTheCore(t *testing.T) {
	tbl := &fakeTable{counters: gateway.Counters{Refused: map[string]uint64{"rate": 2}}}
	g := NewGateway(tbl, time.Now(), nil)
	g.RateRefused.Add(3)
	b, err := g.Set().AppendText(nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `portleased_refusals_total{reason="rate"}`); n != 1 || !strings.Contains(string(b), `portleased_refusals_total{reason="rate"} 5`+"\n") {
		t.Errorf("rate refusals:\n%s", b)
	}
}

// BenchmarkGatewayScrape measures a scrape of the daemon's metrics as the
// HTTP handler does it (into a pooled buffer), with 1,000 leases: the
// allocations are the table's copies (Leases, Usage, Counters' map), not
// the encoder's.
func BenchmarkGatewayScrape(b *testing.B) {
	tbl := &fakeTable{counters: gateway.Counters{Refused: map[string]uint64{"host at its share": 1, "not allowed": 2}}}
	for i := range 1000 {
		tbl.leases = append(tbl.leases, lease(gateway.TCP, gateway.Origin(1+i%3)))
	}
	g := NewGateway(tbl, time.Now(), nil)
	s := g.Set()
	b.ReportAllocs()
	for b.Loop() {
		w := s.writer()
		s.write(w)
		if w.err != nil {
			b.Fatal(w.err)
		}
		s.writers.Put(w)
	}
}
