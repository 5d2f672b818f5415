package gateway

import (
	"container/heap"
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
// by external key (protocol, external port), by internal key (protocol,
// internal address and port) and by client address, with expiry kept in a
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
	byExternal map[mappingKey]*entry
	byInternal map[internalKey]*entry
	byClient   map[netip.Addr]map[*entry]struct{}
	expiry     expiryHeap
	order      keyOrder
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
		byExternal: make(map[mappingKey]*entry),
		byInternal: make(map[internalKey]*entry),
		byClient:   make(map[netip.Addr]map[*entry]struct{}),
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
	if t.reserved == nil {
		t.reserved = func(Protocol, uint16) bool { return false }
	}
	t.commit.fw = cfg.Firewall
	t.start = t.now()
	return t
}

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
	for _, e := range t.byExternal {
		out = append(out, e.Lease)
	}
	return out
}

// Lookup returns the NAT-PMP or PCP lease of an internal endpoint (UPnP
// leases are found by their external port, LookupExternal).
func (t *Table) Lookup(p Protocol, internal netip.AddrPort) (Lease, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byInternal[internalKey{p, internal}]
	if !ok {
		return Lease{}, false
	}
	return e.Lease, true
}

// LookupExternal returns the lease holding an external port.
func (t *Table) LookupExternal(p Protocol, port uint16) (Lease, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byExternal[mappingKey{p, port}]
	if !ok {
		return Lease{}, false
	}
	return e.Lease, true
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
// the mapping of its external port when that leads to the same endpoint. A new lease gets, in order of preference, the external
// port of the same client's lease for the same internal port in the other
// protocol (RFC 6886 §3.3: TCP and UDP mappings of one port should match),
// the port asked for, or a random free port the policy allows. Map returns
// once the firewall holds the lease.
func (t *Table) Map(ctx context.Context, req MapRequest) (MapResult, error) {
	req.Internal = netip.AddrPortFrom(req.Internal.Addr().Unmap(), req.Internal.Port())
	if err := validate(&req); err != nil {
		return MapResult{}, err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return MapResult{}, ErrClosed
	}
	now := t.now()
	lifetime := min(req.Lifetime, t.policy.MaxLifetime)
	var expires time.Time
	if !req.Permanent {
		expires = now.Add(lifetime)
	}
	ik := internalKey{req.Protocol, req.Internal}

	// NAT-PMP and PCP name a mapping by its internal endpoint, one per
	// endpoint and protocol (RFC 6886 §3.3, RFC 6887 §11.3); UPnP names it
	// by its external port, and one endpoint may have several (IGD
	// WANIPConnection:2 §2.5.16: the same AddPortMapping again renews it).
	// A UPnP request never touches a NAT-PMP mapping of the same endpoint,
	// nor the other way round: both stay in force.
	var existing *entry
	if req.Origin == OriginUPnP {
		if e, ok := t.byExternal[mappingKey{req.Protocol, req.ExternalPort}]; ok && req.ExternalPort != 0 && e.Internal == req.Internal {
			existing = e
		}
	} else if e, ok := t.byInternal[ik]; ok {
		existing = e
	}
	if e := existing; e != nil {
		if req.CheckNonce && e.Nonce != req.Nonce {
			t.mu.Unlock()
			return MapResult{}, ErrNonceMismatch
		}
		old := e.mapping(now)
		e.Expires = expires
		if req.Description != "" {
			e.Description = req.Description
		}
		t.fixExpiry(e)
		ch := &change{remove: &old, add: ptr(e.mapping(now)), done: make(chan error, 1)}
		t.commit.enqueue(ch)
		res := MapResult{Lease: e.Lease, Renewed: true, Granted: granted(&req, lifetime)}
		t.mu.Unlock()
		if err := t.commit.wait(ctx, ch); err != nil {
			t.logLease(slog.LevelError, "renewal not applied to the firewall", &res.Lease, now, "err", err)
			return MapResult{}, err
		}
		t.logLease(slog.LevelDebug, "renewed", &res.Lease, now)
		return res, nil
	}

	eport, err := t.allocate(&req)
	if err != nil {
		t.mu.Unlock()
		t.log.Info("refused", "proto", req.Protocol, "internal", req.Internal, "eport", req.ExternalPort, "origin", req.Origin, "err", err)
		return MapResult{}, err
	}
	e := &entry{Lease: Lease{
		Protocol:     req.Protocol,
		Internal:     req.Internal,
		ExternalPort: eport,
		Nonce:        req.Nonce,
		Origin:       req.Origin,
		Description:  req.Description,
		Created:      now,
		Expires:      expires,
	}, heapIndex: -1}
	t.link(e)
	ch := &change{add: ptr(e.mapping(now)), done: make(chan error, 1)}
	t.commit.enqueue(ch)
	res := MapResult{Lease: e.Lease, Granted: granted(&req, lifetime)}
	t.mu.Unlock()

	if err := t.commit.wait(ctx, ch); err != nil {
		t.mu.Lock()
		if t.byExternal[keyOf(*ch.add)] == e {
			t.unlink(e)
		}
		t.mu.Unlock()
		t.logLease(slog.LevelError, "grant not applied to the firewall", &res.Lease, now, "err", err)
		return MapResult{}, err
	}
	t.logLease(slog.LevelInfo, "granted", &res.Lease, now)
	t.changed()
	return res, nil
}

// allocate picks the external port for a new lease. It must be called with
// t.mu held.
func (t *Table) allocate(req *MapRequest) (uint16, error) {
	allowed := t.policy.allowedPorts(req.Internal.Addr(), req.Internal.Port())
	if len(allowed) == 0 {
		return 0, ErrNotAuthorized
	}
	// The map lookup comes before the reserved-port probe, which costs
	// system calls in the daemon.
	usable := func(p uint16) bool {
		if p == 0 || !inRanges(allowed, p) {
			return false
		}
		if _, taken := t.byExternal[mappingKey{req.Protocol, p}]; taken {
			return false
		}
		return !t.reserved(req.Protocol, p)
	}
	if req.Exact {
		switch {
		case !inRanges(allowed, req.ExternalPort):
			return 0, ErrNotAuthorized
		case !usable(req.ExternalPort):
			return 0, ErrConflict
		}
		return req.ExternalPort, nil
	}
	if other, ok := t.byInternal[internalKey{companion(req.Protocol), req.Internal}]; ok && usable(other.ExternalPort) {
		return other.ExternalPort, nil
	}
	if usable(req.ExternalPort) {
		return req.ExternalPort, nil
	}
	total := 0
	for _, r := range allowed {
		total += r.Size()
	}
	// Random probes find a free port at once while the table is far from
	// full; a scan from a random start settles the rest.
	for range 32 {
		if p := nthPort(allowed, t.rng.IntN(total)); usable(p) {
			return p, nil
		}
	}
	start := t.rng.IntN(total)
	for i := range total {
		if p := nthPort(allowed, (start+i)%total); usable(p) {
			return p, nil
		}
	}
	return 0, ErrOutOfResources
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

// link adds e to every index. t.mu must be held.
func (t *Table) link(e *entry) {
	t.byExternal[mappingKey{e.Protocol, e.ExternalPort}] = e
	t.order.add(mappingKey{e.Protocol, e.ExternalPort}, 1)
	if e.Origin != OriginUPnP {
		t.byInternal[internalKey{e.Protocol, e.Internal}] = e
	}
	c := t.byClient[e.Internal.Addr()]
	if c == nil {
		c = make(map[*entry]struct{})
		t.byClient[e.Internal.Addr()] = c
	}
	c[e] = struct{}{}
	t.fixExpiry(e)
}

// unlink removes e from every index. t.mu must be held.
func (t *Table) unlink(e *entry) {
	delete(t.byExternal, mappingKey{e.Protocol, e.ExternalPort})
	t.order.add(mappingKey{e.Protocol, e.ExternalPort}, -1)
	if t.byInternal[internalKey{e.Protocol, e.Internal}] == e {
		delete(t.byInternal, internalKey{e.Protocol, e.Internal})
	}
	if c := t.byClient[e.Internal.Addr()]; c != nil {
		delete(c, e)
		if len(c) == 0 {
			delete(t.byClient, e.Internal.Addr())
		}
	}
	if e.heapIndex >= 0 {
		heap.Remove(&t.expiry, e.heapIndex)
	}
}

// fixExpiry puts e where it belongs in the expiry heap after its Expires
// changed, and wakes the expiry loop when e is now the first to end.
func (t *Table) fixExpiry(e *entry) {
	switch {
	case e.Expires.IsZero() && e.heapIndex >= 0:
		heap.Remove(&t.expiry, e.heapIndex)
	case e.Expires.IsZero():
	case e.heapIndex >= 0:
		heap.Fix(&t.expiry, e.heapIndex)
	default:
		heap.Push(&t.expiry, e)
	}
	if e.heapIndex == 0 {
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
	e, ok := t.byInternal[internalKey{p, internal}]
	if !ok {
		t.mu.Unlock()
		return Lease{}, ErrNotFound
	}
	return t.remove(ctx, []*entry{e}, "deleted")[0], nil
}

// DeleteExternal removes the lease holding an external port (UPnP
// DeletePortMapping).
func (t *Table) DeleteExternal(ctx context.Context, p Protocol, port uint16) (Lease, error) {
	t.mu.Lock()
	e, ok := t.byExternal[mappingKey{p, port}]
	if !ok {
		t.mu.Unlock()
		return Lease{}, ErrNotFound
	}
	return t.remove(ctx, []*entry{e}, "deleted")[0], nil
}

// DeleteClient removes every lease of protocol p that client holds and that
// one of origins made (all of them when origins is empty): NAT-PMP's
// deletion of all mappings, internal port 0 and lifetime 0 (RFC 6886 §3.4).
// It costs O(the client's leases).
func (t *Table) DeleteClient(ctx context.Context, p Protocol, client netip.Addr, origins ...Origin) []Lease {
	client = client.Unmap()
	t.mu.Lock()
	var victims []*entry
	for e := range t.byClient[client] {
		if e.Protocol == p && (len(origins) == 0 || containsOrigin(origins, e.Origin)) {
			victims = append(victims, e)
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
func (t *Table) remove(ctx context.Context, victims []*entry, why string) []Lease {
	now := t.now()
	out := make([]Lease, len(victims))
	changes := make([]*change, len(victims))
	for i, e := range victims {
		t.unlink(e)
		out[i] = e.Lease
		changes[i] = &change{remove: ptr(e.mapping(now)), done: make(chan error, 1)}
		t.commit.enqueue(changes[i])
	}
	t.mu.Unlock()
	for i, ch := range changes {
		if err := t.commit.wait(ctx, ch); err != nil {
			t.logLease(slog.LevelError, "removal not applied to the firewall", &out[i], now, "err", err)
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
	e, ok := t.byExternal[k]
	if !ok {
		return Lease{}, false
	}
	return e.Lease, true
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
		if e, ok := t.byExternal[k]; ok {
			out = append(out, e.Lease)
		}
	}
	return out
}

// DeleteExternalRange removes the leases of protocol p whose external port
// lies in [lo, hi] and for which match returns true (UPnP
// DeletePortMappingRange), and returns them.
func (t *Table) DeleteExternalRange(ctx context.Context, p Protocol, lo, hi uint16, match func(Lease) bool) []Lease {
	t.mu.Lock()
	var victims []*entry
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
		if len(t.expiry) > 0 {
			wait = max(t.expiry[0].Expires.Sub(t.now()), 0)
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
	now := t.now()
	var victims []*entry
	for len(t.expiry) > 0 && !t.expiry[0].Expires.After(now) {
		victims = append(victims, t.expiry[0])
		heap.Pop(&t.expiry)
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
	limit := now.Add(p.MaxLifetime)
	var victims []*entry
	for _, e := range t.byExternal {
		if !p.Allows(e.ExternalPort, e.Internal.Addr(), e.Internal.Port()) {
			victims = append(victims, e)
			continue
		}
		if !e.Expires.IsZero() && e.Expires.After(limit) {
			e.Expires = limit
			t.fixExpiry(e)
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

// logLease logs msg about lease l, building the attributes only when the
// logger takes records of that level.
func (t *Table) logLease(level slog.Level, msg string, l *Lease, now time.Time, args ...any) {
	if !t.log.Enabled(context.Background(), level) {
		return
	}
	t.log.Log(context.Background(), level, msg, append([]any{leaseAttrs(l, now)}, args...)...)
}

func leaseAttrs(l *Lease, now time.Time) slog.Attr {
	attrs := []any{
		"proto", l.Protocol.String(),
		"internal", l.Internal.String(),
		"eport", l.ExternalPort,
		"origin", l.Origin.String(),
	}
	if l.Expires.IsZero() {
		attrs = append(attrs, "lifetime", "permanent")
	} else {
		attrs = append(attrs, "lifetime", l.Lifetime(now).String())
	}
	return slog.Group("lease", attrs...)
}
