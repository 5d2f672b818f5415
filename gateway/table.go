package gateway

import (
	"context"
	"fmt"
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
	// and refusal. Nil discards them.
	Logger *slog.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Rand picks external ports. Nil means a generator seeded at random.
	Rand *rand.Rand
}

// MapRequest asks for a mapping of an internal endpoint.
type MapRequest struct {
	Protocol Protocol
	Internal netip.AddrPort
	// ExternalPort is the port asked for; 0 means any. It is granted when
	// it is free and allowed; otherwise another one is, unless Exact is set.
	ExternalPort uint16
	// Exact makes the request fail with ErrConflict or ErrNotAuthorized
	// rather than be given another port (UPnP AddPortMapping).
	Exact bool
	// Lifetime is the lifetime asked for, capped by Policy.MaxLifetime.
	// It must be positive unless Permanent is set.
	Lifetime time.Duration
	// Permanent asks for a lease without an end (UPnP IGD:1 lease 0).
	Permanent bool
	// Nonce is the PCP mapping nonce. With CheckNonce set, a request that
	// names an existing mapping must carry its nonce (RFC 6887 §11.3).
	Nonce       [12]byte
	CheckNonce  bool
	Origin      Origin
	Description string
}

// MapResult is what Map granted.
type MapResult struct {
	Lease
	// Renewed is true when the request named an existing lease, whose
	// external port it keeps (RFC 6886 §3.3).
	Renewed bool
	// Granted is the lifetime granted: the one asked for, capped by the
	// policy's maximum; zero for a permanent lease.
	Granted time.Duration
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
	now      func() time.Time
	commit   committer
	wake     chan struct{}

	watchMu  sync.Mutex
	watchers map[int]func()
	watchSeq int

	mu         sync.Mutex
	policy     Policy
	rng        *rand.Rand
	store      leaseStore
	byExternal map[mappingKey]leaseID
	byClient   map[netip.Addr]*clientLeases
	expiry     expiryHeap
	order      keyOrder
	base       time.Time // the origin of the entries' times
	start      time.Time
	external   netip.Addr
	closed     bool
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
	if t.rng == nil {
		t.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	t.commit.fw = cfg.Firewall
	t.start = t.now()
	t.base = t.start
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
	if x := t.store.extra(id); x != nil {
		l.Nonce, l.Remote, l.Description = x.nonce, x.remote, x.description
	}
	return l
}

// mapping returns what the kernel must enforce for the lease id, with its
// lifetime left at now. t.mu must be held.
func (t *Table) mapping(id leaseID, now time.Time) Mapping {
	e := t.store.get(id)
	m := Mapping{Protocol: e.proto, ExternalPort: e.eport, Internal: e.internal()}
	if e.expires != 0 {
		m.Lifetime = max(time.Duration(e.expires-t.since(now)), 0)
	}
	return m
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
// whether it changed.
func (t *Table) SetExternalAddress(a netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a == t.external {
		return false
	}
	t.external = a
	return true
}

// Policy returns the policy in force.
func (t *Table) Policy() Policy {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.policy
}

// Len returns the number of leases.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byExternal)
}

// Leases returns a copy of every lease, in no particular order.
func (t *Table) Leases() []Lease {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Lease, 0, len(t.byExternal))
	for _, id := range t.byExternal {
		out = append(out, t.lease(id))
	}
	return out
}

// Lookup returns the NAT-PMP or PCP lease of an internal endpoint (UPnP
// leases are found by their external port, LookupExternal).
func (t *Table) Lookup(p Protocol, internal netip.AddrPort) (Lease, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.byInternalEndpoint(p, internal)
	if !ok {
		return Lease{}, false
	}
	return t.lease(id), true
}

// LookupExternal returns the lease holding an external port.
func (t *Table) LookupExternal(p Protocol, port uint16) (Lease, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.byExternal[mappingKey{p, port}]
	if !ok {
		return Lease{}, false
	}
	return t.lease(id), true
}

func validate(req *MapRequest) error {
	if req.Protocol != TCP && req.Protocol != UDP {
		return fmt.Errorf("%w: protocol %d", ErrBadRequest, req.Protocol)
	}
	if !req.Internal.Addr().IsValid() || req.Internal.Addr().IsUnspecified() {
		return fmt.Errorf("%w: internal address %v", ErrBadRequest, req.Internal.Addr())
	}
	if req.Internal.Port() == 0 {
		return fmt.Errorf("%w: internal port 0", ErrBadRequest)
	}
	if !req.Permanent && req.Lifetime <= 0 {
		return fmt.Errorf("%w: lifetime %v", ErrBadRequest, req.Lifetime)
	}
	return nil
}

// Map grants or renews a mapping. A NAT-PMP or PCP request for an internal
// endpoint that already has a lease of those protocols renews it and keeps
// its external port (RFC 6886 §3.3, RFC 6887 §11.3); a UPnP request renews
// the mapping of its external port when that leads to the same endpoint. A
// new lease gets, in order of preference, the external port of the same
// client's lease for the same internal port in the other protocol (RFC 6886
// §3.3: TCP and UDP mappings of one port should match), the port asked for,
// or a random free port the policy allows. Map returns once the firewall
// holds the lease.
//
// Whether the gateway itself uses a port (Config.Reserved) costs system
// calls, so Map asks it without holding the table's lock: when allocation
// reaches a port not yet asked about, Map lets go of the lock, asks, and
// starts over with the answer, which later rounds reuse.
func (t *Table) Map(ctx context.Context, req MapRequest) (MapResult, error) {
	req.Internal = netip.AddrPortFrom(req.Internal.Addr().Unmap(), req.Internal.Port())
	if err := validate(&req); err != nil {
		return MapResult{}, err
	}
	var room [4]portProbe
	probed := portProbes(room[:0])
	for {
		res, probe, err := t.mapRound(ctx, &req, probed)
		if probe == 0 {
			return res, err
		}
		probed = append(probed, portProbe{probe, t.reserved(req.Protocol, probe)})
	}
}

// mapRound is one round of Map. It takes t.mu and, unless it returns a port
// to probe, releases it, waits for the firewall and returns the result. With
// a port to probe it has released t.mu and changed nothing.
func (t *Table) mapRound(ctx context.Context, req *MapRequest, probed portProbes) (MapResult, uint16, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return MapResult{}, 0, ErrClosed
	}
	now := t.now()
	lifetime := min(req.Lifetime, t.policy.MaxLifetime)
	var expires int64
	if !req.Permanent {
		expires = t.since(now.Add(lifetime))
	}

	// NAT-PMP and PCP name a mapping by its internal endpoint, one per
	// endpoint and protocol (RFC 6886 §3.3, RFC 6887 §11.3); UPnP names it
	// by its external port, and one endpoint may have several (IGD
	// WANIPConnection:2 §2.5.16: the same AddPortMapping again renews it).
	// A UPnP request never touches a NAT-PMP mapping of the same endpoint,
	// nor the other way round: both stay in force.
	var existing leaseID
	found := false
	if req.Origin == OriginUPnP {
		if id, ok := t.byExternal[mappingKey{req.Protocol, req.ExternalPort}]; ok && req.ExternalPort != 0 && t.store.get(id).internal() == req.Internal {
			existing, found = id, true
		}
	} else {
		existing, found = t.byInternalEndpoint(req.Protocol, req.Internal)
	}
	if id := existing; found {
		if req.CheckNonce && t.store.nonce(id) != req.Nonce {
			t.mu.Unlock()
			return MapResult{}, 0, ErrNonceMismatch
		}
		old := t.mapping(id, now)
		t.store.get(id).expires = expires
		if req.Description != "" {
			t.store.setExtra(id, t.store.nonce(id), req.Description)
		}
		t.fixExpiry(id)
		ch := &change{remove: &old, add: ptr(t.mapping(id, now)), done: make(chan error, 1)}
		t.commit.enqueue(ch)
		res := MapResult{Lease: t.lease(id), Renewed: true, Granted: granted(req, lifetime)}
		t.mu.Unlock()
		if err := t.commit.wait(ctx, ch); err != nil {
			t.logLease(slog.LevelError, "renewal not applied to the firewall", &res.Lease, now, err)
			return MapResult{}, 0, err
		}
		t.logLease(slog.LevelDebug, "renewed", &res.Lease, now)
		return res, 0, nil
	}

	eport, probe, err := t.allocate(req, probed)
	if probe != 0 {
		t.mu.Unlock()
		return MapResult{}, probe, nil
	}
	if err != nil {
		t.mu.Unlock()
		t.log.Info("refused", "proto", req.Protocol, "internal", req.Internal, "eport", req.ExternalPort, "origin", req.Origin, "err", err)
		return MapResult{}, 0, err
	}
	id, e := t.store.alloc()
	e.setInternal(req.Internal)
	e.created = t.since(now)
	e.expires = expires
	e.eport = eport
	e.proto = req.Protocol
	e.origin = req.Origin
	gen := e.gen
	t.store.setExtra(id, req.Nonce, req.Description)
	t.link(id)
	ch := &change{add: ptr(t.mapping(id, now)), done: make(chan error, 1)}
	t.commit.enqueue(ch)
	res := MapResult{Lease: t.lease(id), Granted: granted(req, lifetime)}
	t.mu.Unlock()

	if err := t.commit.wait(ctx, ch); err != nil {
		t.mu.Lock()
		// Unless the lease has gone meanwhile (and its slot been reused).
		if held, ok := t.byExternal[keyOf(*ch.add)]; ok && held == id && t.store.get(id).gen == gen {
			t.unlink(id)
		}
		t.mu.Unlock()
		t.logLease(slog.LevelError, "grant not applied to the firewall", &res.Lease, now, err)
		return MapResult{}, 0, err
	}
	t.logLease(slog.LevelInfo, "granted", &res.Lease, now)
	t.changed()
	return res, 0, nil
}

// portProbes are the answers of Config.Reserved that one Map call has
// collected, in the order asked; there are one or two as a rule.
type portProbes []portProbe

type portProbe struct {
	port     uint16
	reserved bool
}

func (ps portProbes) lookup(port uint16) (reserved, known bool) {
	for _, p := range ps {
		if p.port == port {
			return p.reserved, true
		}
	}
	return false, false
}

// allocate picks the external port for a new lease. It must be called with
// t.mu held. When the port it would pick next has not been asked about
// (Config.Reserved), it returns that port as probe instead, for the caller
// to ask about without the lock and call again with the answer in probed.
func (t *Table) allocate(req *MapRequest, probed portProbes) (port, probe uint16, err error) {
	allowed := t.policy.allowedPorts(req.Internal.Addr(), req.Internal.Port())
	if len(allowed) == 0 {
		return 0, 0, ErrNotAuthorized
	}
	// usable reports whether p can be handed out, or that only a probe
	// can tell.
	usable := func(p uint16) (ok, unknown bool) {
		if p == 0 || !inRanges(allowed, p) {
			return false, false
		}
		if _, taken := t.byExternal[mappingKey{req.Protocol, p}]; taken {
			return false, false
		}
		if t.reserved == nil {
			return true, false
		}
		reserved, known := probed.lookup(p)
		return known && !reserved, !known
	}
	// pick decides on one candidate: take it, probe it, or go on.
	pick := func(p uint16) (port, probe uint16, done bool) {
		switch ok, unknown := usable(p); {
		case ok:
			return p, 0, true
		case unknown:
			return 0, p, true
		}
		return 0, 0, false
	}
	if req.Exact {
		if !inRanges(allowed, req.ExternalPort) {
			return 0, 0, ErrNotAuthorized
		}
		if port, probe, done := pick(req.ExternalPort); done {
			return port, probe, nil
		}
		return 0, 0, ErrConflict
	}
	var preferred [2]uint16
	if other, ok := t.byInternalEndpoint(companion(req.Protocol), req.Internal); ok {
		preferred[0] = t.store.get(other).eport
	}
	preferred[1] = req.ExternalPort
	for _, p := range preferred {
		if port, probe, done := pick(p); done {
			return port, probe, nil
		}
	}
	// A random pick probed free in an earlier round is taken if it still
	// is, so that rounds come to an end.
	for _, pr := range probed {
		if ok, _ := usable(pr.port); ok {
			return pr.port, 0, nil
		}
	}
	total := 0
	for _, r := range allowed {
		total += r.Size()
	}
	// Random picks find a free port at once while the table is far from
	// full; a scan from a random start settles the rest.
	for range 32 {
		if port, probe, done := pick(nthPort(allowed, t.rng.IntN(total))); done {
			return port, probe, nil
		}
	}
	start := t.rng.IntN(total)
	for i := range total {
		if port, probe, done := pick(nthPort(allowed, (start+i)%total)); done {
			return port, probe, nil
		}
	}
	return 0, 0, ErrOutOfResources
}

func granted(req *MapRequest, lifetime time.Duration) time.Duration {
	if req.Permanent {
		return 0
	}
	return lifetime
}

func companion(p Protocol) Protocol {
	if p == TCP {
		return UDP
	}
	return TCP
}

func inRanges(rs []PortRange, p uint16) bool {
	for _, r := range rs {
		if r.Contains(p) {
			return true
		}
	}
	return false
}

func nthPort(rs []PortRange, n int) uint16 {
	for _, r := range rs {
		if n < r.Size() {
			return r.Low + uint16(n)
		}
		n -= r.Size()
	}
	panic("gateway: port index out of range")
}

func ptr[T any](v T) *T { return &v }

// byInternalEndpoint returns the NAT-PMP or PCP lease of an internal
// endpoint. t.mu must be held.
func (t *Table) byInternalEndpoint(p Protocol, internal netip.AddrPort) (leaseID, bool) {
	c := t.byClient[internal.Addr()]
	if c == nil {
		return 0, false
	}
	id, ok := c.byPort[portKey{p, internal.Port()}]
	return id, ok
}

// link adds the lease id to every index. t.mu must be held.
func (t *Table) link(id leaseID) {
	e := t.store.get(id)
	t.byExternal[e.key()] = id
	t.order.add(e.key(), 1)
	addr := e.internal().Addr()
	c := t.byClient[addr]
	if c == nil {
		c = &clientLeases{byPort: make(map[portKey]leaseID)}
		t.byClient[addr] = c
	}
	if e.origin == OriginUPnP {
		if c.upnp == nil {
			c.upnp = make(map[leaseID]struct{})
		}
		c.upnp[id] = struct{}{}
	} else {
		c.byPort[portKey{e.proto, e.iport}] = id
	}
	t.fixExpiry(id)
}

// unlink removes the lease id from every index and releases its slot. t.mu
// must be held.
func (t *Table) unlink(id leaseID) {
	e := t.store.get(id)
	delete(t.byExternal, e.key())
	t.order.add(e.key(), -1)
	addr := e.internal().Addr()
	if c := t.byClient[addr]; c != nil {
		if k := (portKey{e.proto, e.iport}); c.byPort[k] == id {
			delete(c.byPort, k)
		}
		delete(c.upnp, id)
		if c.empty() {
			delete(t.byClient, addr)
		}
	}
	t.expiry.remove(id)
	t.store.release(id)
}

// fixExpiry puts the lease id where it belongs in the expiry heap after its
// end changed, and wakes the expiry loop when it is now the first to end.
func (t *Table) fixExpiry(id leaseID) {
	t.expiry.fix(id)
	if first, ok := t.expiry.first(); ok && first == id {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// Delete removes the NAT-PMP or PCP lease of an internal endpoint (NAT-PMP
// lifetime 0, RFC 6886 §3.4); UPnP leases of the same endpoint stay.
func (t *Table) Delete(ctx context.Context, p Protocol, internal netip.AddrPort) (Lease, error) {
	internal = netip.AddrPortFrom(internal.Addr().Unmap(), internal.Port())
	t.mu.Lock()
	id, ok := t.byInternalEndpoint(p, internal)
	if !ok {
		t.mu.Unlock()
		return Lease{}, ErrNotFound
	}
	return t.remove(ctx, []leaseID{id}, "deleted")[0], nil
}

// DeleteExternal removes the lease holding an external port (UPnP
// DeletePortMapping).
func (t *Table) DeleteExternal(ctx context.Context, p Protocol, port uint16) (Lease, error) {
	t.mu.Lock()
	id, ok := t.byExternal[mappingKey{p, port}]
	if !ok {
		t.mu.Unlock()
		return Lease{}, ErrNotFound
	}
	return t.remove(ctx, []leaseID{id}, "deleted")[0], nil
}

// DeleteClient removes every lease of protocol p that client holds and that
// one of origins made (all of them when origins is empty): NAT-PMP's
// deletion of all mappings, internal port 0 and lifetime 0 (RFC 6886 §3.4).
// It costs O(the client's leases).
func (t *Table) DeleteClient(ctx context.Context, p Protocol, client netip.Addr, origins ...Origin) []Lease {
	client = client.Unmap()
	t.mu.Lock()
	var victims []leaseID
	pick := func(id leaseID) {
		if e := t.store.get(id); e.proto == p && (len(origins) == 0 || containsOrigin(origins, e.origin)) {
			victims = append(victims, id)
		}
	}
	if c := t.byClient[client]; c != nil {
		for _, id := range c.byPort {
			pick(id)
		}
		for id := range c.upnp {
			pick(id)
		}
	}
	if len(victims) == 0 {
		t.mu.Unlock()
		return nil
	}
	return t.remove(ctx, victims, "deleted")
}

func containsOrigin(os []Origin, o Origin) bool {
	for _, x := range os {
		if x == o {
			return true
		}
	}
	return false
}

// remove unlinks victims, queues their removal from the firewall, releases
// t.mu (which the caller holds) and waits for the firewall.
func (t *Table) remove(ctx context.Context, victims []leaseID, why string) []Lease {
	now := t.now()
	out := make([]Lease, len(victims))
	changes := make([]*change, len(victims))
	for i, id := range victims {
		out[i] = t.lease(id)
		changes[i] = &change{remove: ptr(t.mapping(id, now)), done: make(chan error, 1)}
		t.unlink(id)
		t.commit.enqueue(changes[i])
	}
	t.mu.Unlock()
	for i, ch := range changes {
		if err := t.commit.wait(ctx, ch); err != nil {
			t.logLease(slog.LevelError, "removal not applied to the firewall", &out[i], now, err)
			continue
		}
		t.logLease(slog.LevelInfo, why, &out[i], now)
	}
	t.changed()
	return out
}

// LeaseAt returns the lease at index i (from 0) in the order of protocol
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

// LeasesInRange returns at most max leases of protocol p whose external
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

// DeleteExternalRange removes the leases of protocol p whose external port
// lies in [lo, hi] and for which match returns true (UPnP
// DeletePortMappingRange), and returns them.
func (t *Table) DeleteExternalRange(ctx context.Context, p Protocol, lo, hi uint16, match func(Lease) bool) []Lease {
	t.mu.Lock()
	var victims []leaseID
	for _, l := range t.inRange(p, lo, hi, len(t.byExternal)) {
		if match == nil || match(l) {
			victims = append(victims, t.byExternal[mappingKey{l.Protocol, l.ExternalPort}])
		}
	}
	if len(victims) == 0 {
		t.mu.Unlock()
		return nil
	}
	return t.remove(ctx, victims, "deleted")
}

// Watch registers fn, to be called after every change of the set of leases
// (a grant, a deletion, an expiry, a reconfiguration), outside the table's
// lock; fn must not block. The returned function unregisters it.
func (t *Table) Watch(fn func()) (stop func()) {
	t.watchMu.Lock()
	defer t.watchMu.Unlock()
	if t.watchers == nil {
		t.watchers = make(map[int]func())
	}
	id := t.watchSeq
	t.watchSeq++
	t.watchers[id] = fn
	return func() {
		t.watchMu.Lock()
		delete(t.watchers, id)
		t.watchMu.Unlock()
	}
}

func (t *Table) changed() {
	t.watchMu.Lock()
	if len(t.watchers) == 0 {
		t.watchMu.Unlock()
		return
	}
	fns := make([]func(), 0, len(t.watchers))
	for _, fn := range t.watchers {
		fns = append(fns, fn)
	}
	t.watchMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Run expires leases as they end, until ctx is done. The next expiry comes
// from the top of the heap; nothing ever scans the table.
func (t *Table) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		t.mu.Lock()
		wait := time.Hour
		if id, ok := t.expiry.first(); ok {
			wait = max(time.Duration(t.store.get(id).expires-t.since(t.now())), 0)
		}
		t.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-t.wake:
		case <-timer.C:
			t.expire(ctx)
		}
	}
}

// expire removes every lease whose time is up.
func (t *Table) expire(ctx context.Context) {
	t.mu.Lock()
	now := t.since(t.now())
	var victims []leaseID
	for {
		id, ok := t.expiry.first()
		if !ok || t.store.get(id).expires > now {
			break
		}
		victims = append(victims, id)
		t.expiry.remove(id)
	}
	if len(victims) == 0 {
		t.mu.Unlock()
		return
	}
	t.remove(ctx, victims, "expired")
}

// Reconfigure puts a new policy in force. Leases the new policy no longer
// allows are removed and returned; the others stay, their lifetimes capped by
// the new maximum.
func (t *Table) Reconfigure(ctx context.Context, p Policy) []Lease {
	p = p.withDefaults()
	t.mu.Lock()
	t.policy = p
	now := t.now()
	limit := t.since(now.Add(p.MaxLifetime))
	var victims []leaseID
	for _, id := range t.byExternal {
		e := t.store.get(id)
		if !p.Allows(e.eport, e.internal().Addr(), e.iport) {
			victims = append(victims, id)
			continue
		}
		if e.expires != 0 && e.expires > limit {
			e.expires = limit
			t.fixExpiry(id)
		}
	}
	if len(victims) == 0 {
		t.mu.Unlock()
		return nil
	}
	return t.remove(ctx, victims, "removed by the new configuration")
}

// Close stops the table from granting leases. It leaves the firewall to its
// owner, which removes everything at once (Firewall.Close).
func (t *Table) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

// logLease logs msg about lease l, with err when it is not nil, building
// the attributes only when the logger takes records of that level. It
// allocates little: a grant is logged for every request.
func (t *Table) logLease(level slog.Level, msg string, l *Lease, now time.Time, err ...error) {
	if !t.log.Enabled(context.Background(), level) {
		return
	}
	attrs := [2]slog.Attr{leaseAttrs(l, now)}
	n := 1
	if len(err) > 0 && err[0] != nil {
		attrs[1] = slog.Any("err", err[0])
		n++
	}
	t.log.LogAttrs(context.Background(), level, msg, attrs[:n]...)
}

func leaseAttrs(l *Lease, now time.Time) slog.Attr {
	lifetime := slog.String("lifetime", "permanent")
	if !l.Expires.IsZero() {
		lifetime = slog.Duration("lifetime", l.Lifetime(now))
	}
	return slog.GroupAttrs("lease",
		slog.String("proto", l.Protocol.String()),
		slog.Any("internal", l.Internal),
		slog.Int("eport", int(l.ExternalPort)),
		slog.String("origin", l.Origin.String()),
		lifetime,
	)
}
