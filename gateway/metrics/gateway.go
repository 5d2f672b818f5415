package metrics

import (
	"maps"
	"slices"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Table is what the gateway's metrics read of the lease core,
// *gateway.Table: its leases' counts, its counters, the hosts holding leases and
// the epoch. Each is read once per scrape.
type Table interface {
	LeaseCounts() map[gateway.Protocol][4]int
	Counters() gateway.Counters
	Usage() []gateway.HostUsage
	Epoch() uint32
}

var _ Table = (*gateway.Table)(nil)

// RateReason is the refusal reason of a request over its host's rate,
// which the front-ends refuse before the core sees it (Gateway.RateRefused).
const RateReason = "rate"

// Gateway is the metrics of portleased: the lease core's (Table) and the
// front-ends' request latencies and rate refusals. Its labels take a
// bounded set of values (protocols, origins, refusal reasons), never a
// host's address.
type Gateway struct {
	// NATPMP, PCP and UPnP are the request durations of each protocol,
	// from a request's read to its answer's write; the front-ends'
	// Latency fields take them.
	NATPMP, PCP, UPnP *Histogram
	// RateRefused counts the requests refused over their host's rate
	// (the front-ends' limiters), shown as the refusal reason RateReason.
	RateRefused Counter

	table   Table
	started time.Time
	now     func() time.Time
	set     *Set
}

// origins returns the Origin values of the counters' arrays, in label
// order.
func origins() [3]gateway.Origin {
	return [...]gateway.Origin{gateway.OriginNATPMP, gateway.OriginPCP, gateway.OriginUPnP}
}

// protocols returns the lease protocols, in label order.
func protocols() [2]gateway.Protocol { return [...]gateway.Protocol{gateway.TCP, gateway.UDP} }

// NewGateway returns the metrics of the daemon started at started, read
// from t. now is the clock (nil: time.Now).
func NewGateway(t Table, started time.Time, now func() time.Time) *Gateway {
	if now == nil {
		now = time.Now
	}
	g := &Gateway{
		NATPMP: NewHistogram(LatencyBounds()...), PCP: NewHistogram(LatencyBounds()...), UPnP: NewHistogram(LatencyBounds()...),
		table: t, started: started, now: now,
	}
	// Lease counters read one Counters per family: a scrape reads the
	// core's counters several times, which costs a copy each.
	byOrigin := func(pick func(*gateway.Counters) *[4]uint64) func(w *Writer) {
		return func(w *Writer) {
			c := g.table.Counters()
			counts := pick(&c)
			for _, o := range origins() {
				w.Uint(counts[o], "origin", o.String())
			}
		}
	}
	counter := func(pick func(gateway.Counters) uint64) func(w *Writer) {
		return func(w *Writer) { w.Uint(pick(g.table.Counters())) }
	}
	set, err := NewSet(
		Family{Name: "portleased_leases", Type: GaugeType, Collect: g.leases,
			Help: "Leases (port mappings and IPv6 pinholes) in the table, by protocol and the front-end that made them."},
		Family{Name: "portleased_hosts", Type: GaugeType, Collect: func(w *Writer) { w.Uint(uint64(len(g.table.Usage()))) },
			Help: "LAN hosts (internal addresses) holding at least one lease."},
		Family{Name: "portleased_grants_total", Type: CounterType, Collect: byOrigin(func(c *gateway.Counters) *[4]uint64 { return &c.Granted }),
			Help: "New leases granted, by the front-end that made them."},
		Family{Name: "portleased_renewals_total", Type: CounterType, Collect: byOrigin(func(c *gateway.Counters) *[4]uint64 { return &c.Renewed }),
			Help: "Leases renewed (lifetime extended or description changed), by front-end."},
		Family{Name: "portleased_deletions_total", Type: CounterType, Collect: byOrigin(func(c *gateway.Counters) *[4]uint64 { return &c.Deleted }),
			Help: "Leases deleted by their client, the operator or a reload's rules, by the front-end that made them."},
		Family{Name: "portleased_expiries_total", Type: CounterType, Collect: byOrigin(func(c *gateway.Counters) *[4]uint64 { return &c.Expired }),
			Help: "Leases ended by their lifetime, by the front-end that made them."},
		Family{Name: "portleased_refusals_total", Type: CounterType, Collect: g.refusals,
			Help: "Requests refused, by reason (rate: over the host's request rate, refused by the front-end)."},
		Family{Name: "portleased_request_duration_seconds", Type: HistogramType, Collect: g.latencies,
			Help: "Time from a request's read to its answer's write, by protocol."},
		Family{Name: "portleased_kernel_transactions_total", Type: CounterType, Collect: counter(func(c gateway.Counters) uint64 { return c.Transactions }),
			Help: "Kernel transactions (firewall changes and repairs) made."},
		Family{Name: "portleased_kernel_transaction_failures_total", Type: CounterType, Collect: counter(func(c gateway.Counters) uint64 { return c.TransactionFailures }),
			Help: "Kernel transactions that failed."},
		Family{Name: "portleased_kernel_transaction_mappings", Type: HistogramType, Collect: g.transactionSizes,
			Help: "Mappings (added and removed) a kernel transaction carried."},
		Family{Name: "portleased_state_file_writes_total", Type: CounterType, Collect: counter(func(c gateway.Counters) uint64 { return c.JournalCommits }),
			Help: "Writes of the state file."},
		Family{Name: "portleased_state_file_write_failures_total", Type: CounterType, Collect: counter(func(c gateway.Counters) uint64 { return c.JournalFailures }),
			Help: "Writes of the state file that failed."},
		Family{Name: "portleased_uptime_seconds", Type: GaugeType, Collect: func(w *Writer) { w.Float(g.now().Sub(g.started).Seconds()) },
			Help: "Seconds since the daemon started."},
		Family{Name: "portleased_epoch_seconds", Type: GaugeType, Collect: func(w *Writer) { w.Uint(uint64(g.table.Epoch())) },
			Help: "The NAT-PMP and PCP epoch: seconds since the table's mappings began (RFC 6886 section 3.6, RFC 6887 section 8.5)."},
	)
	if err != nil {
		panic(err) // the families above are constants
	}
	g.set = set
	return g
}

// Set returns the families of g, which serves them over HTTP: the handler
// of GET /metrics.
func (g *Gateway) Set() *Set { return g.set }

// leases writes the lease gauge: every protocol and origin, 0 included, so
// that a graph's series do not come and go.
func (g *Gateway) leases(w *Writer) {
	ps, origs := protocols(), origins()
	counts := g.table.LeaseCounts()
	for _, p := range ps {
		for _, o := range origs {
			w.Uint(uint64(counts[p][o]), "protocol", p.String(), "origin", o.String())
		}
	}
}

// refusals writes the core's refusals by reason with the front-ends' rate
// refusals, in reason order.
func (g *Gateway) refusals(w *Writer) {
	c := g.table.Counters()
	rate := g.RateRefused.Load() + c.Refused[RateReason]
	reasons := slices.Sorted(maps.Keys(c.Refused))
	if _, ok := c.Refused[RateReason]; !ok {
		reasons = append(reasons, RateReason)
		slices.Sort(reasons)
	}
	for _, r := range reasons {
		n := c.Refused[r]
		if r == RateReason {
			n = rate
		}
		w.Uint(n, "reason", r)
	}
}

func (g *Gateway) latencies(w *Writer) {
	w.Histogram(g.NATPMP, "protocol", "natpmp")
	w.Histogram(g.PCP, "protocol", "pcp")
	w.Histogram(g.UPnP, "protocol", "upnp")
}

func (g *Gateway) transactionSizes(w *Writer) {
	c := g.table.Counters()
	var bounds [len(c.TransactionSizes) - 1]float64
	for i, b := range gateway.TransactionSizeBounds() {
		bounds[i] = float64(b)
	}
	w.Buckets(bounds[:], c.TransactionSizes[:], float64(c.TransactionMappings))
}
