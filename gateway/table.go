package gateway

import (
	"cmp"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// Config configures a Table. The zero value is usable: default policy, no
// firewall (leases live only in memory), no reserved ports, no logging.
type Config struct {
	Policy Policy
	// Firewall enforces the leases in the kernel. Nil means none.
	Firewall Firewall
	// Reserved reports whether the gateway itself uses an external port
	// (a listening service); such a port is never handed out. Nil: none.
	Reserved func(p Protocol, port uint16) bool
	// Logger receives a record of every grant, renewal, deletion, expiry
	// and refusal; refusals for a full share or table, which a host can
	// repeat at will, at most once a minute per host with their count
	// (refusalLogs). Nil discards them.
	Logger *slog.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Rand picks external ports. Nil means a generator seeded at random.
	Rand *rand.Rand
	// Journal keeps the leases across restarts. Nil means none.
	Journal Journal
	// EpochStart is the wall-clock start of the epoch to continue (RFC 6886
	// §3.6, RFC 6887 §8.5): the one a previous run kept in its state, when
	// the leases come back with it (Restore). Zero, or a time ahead of
	// Now, starts a new epoch.
	EpochStart time.Time
	// KernelTimeout bounds the kernel timeout of every mapping: a lease
	// that outlives it, or has no end, gets this timeout, re-armed by Run
	// while the lease lasts, so that a daemon that dies for good never
	// leaves a mapping in the kernel for longer. Zero means
	// DefaultKernelTimeout.
	KernelTimeout time.Duration
	// CommitTimeout bounds one batch's work in the kernel and the journal.
	// Zero means DefaultCommitTimeout.
	CommitTimeout time.Duration
}

// Table is the lease table: every mapping the gateway has granted, indexed
// by external key (protocol, external port) and by client address, and
// within a client by internal port and protocol, with expiry kept in a
// timer heap. Every request costs O(1) map operations and O(log n) heap
// work, never a scan of the leases.
//
// The table is the authority; the Firewall follows it. Changes reach the
// firewall in the order the table made them, in batches when requests come
// at once (see committer). A Table is safe for concurrent use.
type Table struct {
	fw       Firewall
	reserved func(Protocol, uint16) bool
	log      *slog.Logger
	refusals refusalLogs
	now      func() time.Time
	commit   committer
	wake     chan struct{}
	bound    time.Duration // Config.KernelTimeout
	baseWall int64         // base on the wall clock, Unix nanoseconds

	watchMu  sync.Mutex
	watchers map[int]func()
	watchSeq int

	mu         sync.Mutex
	policy     Policy
	rng        *rand.Rand
	store      leaseStore
	byExternal map[mappingKey]leaseID
	byClient   map[netip.Addr]*clientLeases
	pinholes   pinholeIDs // the pinholes by UniqueID
	expiry     expiryHeap
	order      keyOrder
	base       time.Time // the origin of the entries' times
	start      time.Time
	external   netip.Addr
	closed     bool
	// What the operator sees (observe.go): the last events, the last
	// external addresses, the counts of changes and refusals.
	events    eventRing
	addresses addressRing
	counts    leaseCounts
	// journalPending are Restore's changes for the journal alone, taken
	// by the next resync (journalOnly).
	journalPending []*change
}

// New returns an empty table. Call Run to expire leases.
func New(cfg Config) *Table {
	t := &Table{
		fw:         cfg.Firewall,
		reserved:   cfg.Reserved,
		log:        cfg.Logger,
		now:        cfg.Now,
		rng:        cfg.Rand,
		policy:     cfg.Policy.withDefaults(),
		wake:       make(chan struct{}, 1),
		byExternal: make(map[mappingKey]leaseID),
		byClient:   make(map[netip.Addr]*clientLeases),
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	t.refusals = newRefusalLogs(t.log, t.now)
	if t.rng == nil {
		t.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	t.bound = cmp.Or(cfg.KernelTimeout, DefaultKernelTimeout)
	t.commit.fw = cfg.Firewall
	t.commit.journal = cfg.Journal
	t.commit.log = t.log
	t.commit.timeout = cmp.Or(cfg.CommitTimeout, DefaultCommitTimeout)
	t.commit.snapshot = t.resyncSnapshot
	t.commit.wake = t.wake
	t.base = t.now()
	t.baseWall = t.base.UnixNano()
	t.start = t.base
	if wall := t.base.Round(0); !cfg.EpochStart.IsZero() && !cfg.EpochStart.After(wall) {
		t.start = t.base.Add(-wall.Sub(cfg.EpochStart))
	}
	t.expiry.store = &t.store
	return t
}

// lease returns the lease id as a Lease. t.mu must be held.
func (t *Table) lease(id leaseID) Lease {
	e := t.store.get(id)
	l := Lease{
		Protocol:     e.proto,
		Internal:     e.internal(),
		ExternalPort: e.eport,
		Origin:       e.origin,
		Created:      t.at(e.created),
	}
	if e.expires != 0 {
		l.Expires = t.at(e.expires)
	}
	if e.pinhole() {
		l.Pinhole, l.PinholeID = true, e.pinholeID
	}
	if x := t.store.extra(id); x != nil {
		l.Nonce, l.Filters, l.Description = x.nonce, x.filters, x.description
	}
	return l
}

// mapping returns what the kernel holds for the lease id, without a
// lifetime: enough to remove it (see armed). t.mu must be held.
func (t *Table) mapping(id leaseID) Mapping {
	e := t.store.get(id)
	return Mapping{Protocol: e.proto, ExternalPort: e.eport, Internal: e.internal(), Pinhole: e.pinhole(), Filters: t.store.filters(id)}
}

// enqueue queues ch for the committer, with the lease to keep (put) or to
// forget (drop) in the journal, if there is one. t.mu must be held: changes
// are queued in the table's order.
func (t *Table) enqueue(ch *change, put, drop *Lease) {
	if t.commit.journal != nil {
		if put != nil {
			ch.put = ptr(*put)
		}
		if drop != nil {
			ch.drop = ptr(*drop)
		}
	}
	t.commit.enqueue(ch)
}

// since returns tm as an entry time: nanoseconds since t.base, never 0
// (which stands for no end).
func (t *Table) since(tm time.Time) int64 {
	return max(int64(tm.Sub(t.base)), 1)
}

// at turns an entry time back into a time.
func (t *Table) at(ns int64) time.Time { return t.base.Add(time.Duration(ns)) }

// Epoch returns the seconds since the start of the table's epoch, the value
// NAT-PMP (RFC 6886 §3.6) and PCP (RFC 6887 §8.5) put in every response so
// that clients notice a gateway that lost its mappings.
func (t *Table) Epoch() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.now().Sub(t.start) / time.Second
	if s > 0xFFFFFFFF {
		return 0xFFFFFFFF
	}
	return uint32(s)
}

// EpochStart returns the wall-clock start of the epoch, for the state to
// keep (Config.EpochStart).
func (t *Table) EpochStart() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.start.Round(0)
}

// ResetEpoch starts a new epoch: clients will take every mapping as lost and
// ask for it again (RFC 6886 §3.6).
func (t *Table) ResetEpoch() {
	t.mu.Lock()
	t.start = t.now()
	t.mu.Unlock()
}

// ExternalAddress returns the gateway's external IPv4 address, or the zero
// Addr while it has none (NAT-PMP answers result 3 then, RFC 6886 §3.2).
func (t *Table) ExternalAddress() netip.Addr {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.external
}

// SetExternalAddress records the gateway's external address and reports
// whether it changed; a change goes into AddressHistory.
func (t *Table) SetExternalAddress(a netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a == t.external {
		return false
	}
	t.external = a
	t.addresses.add(t.now(), a)
	return true
}

// Policy returns the policy in force.
func (t *Table) Policy() Policy {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.policy
}

// Len returns the number of leases, pinholes included.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byExternal) + len(t.pinholes.byID)
}

// Leases returns a copy of every lease, pinholes included, in no
// particular order.
func (t *Table) Leases() []Lease {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := t.all()
	out := make([]Lease, len(ids))
	for i, id := range ids {
		out[i] = t.lease(id)
	}
	return out
}

// Lookup returns the NAT-PMP or PCP lease of an internal endpoint, or the
// pinhole of an IPv6 one (UPnP IPv4 leases are found by their external
// port, LookupExternal).
func (t *Table) Lookup(p Protocol, internal netip.AddrPort) (Lease, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.byInternalEndpoint(p, internal)
	if !ok {
		return Lease{}, false
	}
	return t.lease(id), true
}

// LookupExternal returns the IPv4 lease holding an external port.
func (t *Table) LookupExternal(p Protocol, port uint16) (Lease, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.byExternal[mappingKey{p, port}]
	if !ok {
		return Lease{}, false
	}
	return t.lease(id), true
}

// LeaseAt returns the IPv4 lease at index i (from 0) in the order of protocol
// (TCP, then UDP) and external port, the order in which UPnP clients walk
// the table (GetGenericPortMappingEntry). It costs O(log 65536).
func (t *Table) LeaseAt(i int) (Lease, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.order.nth(i)
	if !ok {
		return Lease{}, false
	}
	id, ok := t.byExternal[k]
	if !ok {
		return Lease{}, false
	}
	return t.lease(id), true
}

// LeasesInRange returns at most max IPv4 leases of protocol p whose external
// port lies in [lo, hi], in port order (UPnP GetListOfPortMappings). It costs
// O(k log 65536) for k leases returned.
func (t *Table) LeasesInRange(p Protocol, lo, hi uint16, max int) []Lease {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inRange(p, lo, hi, max)
}

func (t *Table) inRange(p Protocol, lo, hi uint16, max int) []Lease {
	if lo > hi || max <= 0 || slot(mappingKey{p, lo}) < 0 {
		return nil
	}
	var out []Lease
	for i := t.order.rank(mappingKey{p, lo}); len(out) < max; i++ {
		k, ok := t.order.nth(i)
		if !ok || k.proto != p || k.port > hi {
			break
		}
		if id, ok := t.byExternal[k]; ok {
			out = append(out, t.lease(id))
		}
	}
	return out
}

// Close stops the table from granting leases. It leaves the firewall to its
// owner, which removes everything at once (Firewall.Close).
func (t *Table) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}
