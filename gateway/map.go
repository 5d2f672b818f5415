package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

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
	// Lifetime is the lifetime asked for, capped by Policy.MaxLifetime (and
	// for PCP raised to Policy.PCPMinLifetime).
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
	// Filters, when not empty, admit only the listed remote peers (PCP
	// FILTER and PEER, UPnP RemoteHost/RemotePort); see normaliseFilters
	// for what is refused. A renewal replaces the lease's filters, but a
	// UPnP request whose filters differ from its pinhole's fails with
	// ErrConflict.
	Filters []Filter
	// Requester is the host that asked, for the rules with Requesters
	// (Rule.Requesters): a third party (PCP THIRD_PARTY, UPnP's
	// InternalClient) or the internal host itself. The zero Addr: the
	// internal address asked for itself.
	Requester netip.Addr
}

// requester returns the host that asked req.
func (req *MapRequest) requester() netip.Addr {
	if req.Requester.IsValid() {
		return req.Requester
	}
	return req.Internal.Addr()
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
	if req.Internal.Addr().Zone() != "" {
		return fmt.Errorf("%w: internal address %v has a zone", ErrBadRequest, req.Internal.Addr())
	}
	filters, err := normaliseFilters(req.Filters, req.Internal.Addr())
	req.Filters = filters
	return err
}

// isPinhole reports whether req asks for an IPv6 pinhole rather than an
// IPv4 mapping (its Internal already unmapped).
func (req *MapRequest) isPinhole() bool { return req.Internal.Addr().Is6() }

// Map grants or renews a mapping. A request for an IPv6 internal endpoint
// (not IPv4-mapped) makes or renews its pinhole: nothing is allocated, the
// external port is the internal port, for which the permission rules must
// allow it; whatever its origin, a request for an endpoint that has a
// pinhole renews it (a UPnP one with other filters gets ErrConflict), and
// Exact with another ExternalPort gets ErrConflict. A NAT-PMP or PCP request for an internal
// endpoint that already has a lease of those protocols renews it and keeps
// its external port (RFC 6886 §3.3, RFC 6887 §11.3); a UPnP request renews
// the mapping of its external port when that leads to the same endpoint. A
// new lease gets, in order of preference, the external port of the same
// client's lease for the same internal port in the other protocol (RFC 6886
// §3.3: TCP and UDP mappings of one port should match), the port asked for,
// or a random free port the policy allows. A new lease beyond
// Policy.MaxPerHost for its internal address gets ErrHostQuota, beyond
// Policy.MaxLeases ErrOutOfResources; a renewal is never refused by them.
// Map returns once the firewall holds the lease.
//
// Whether the gateway itself uses a port (Config.Reserved) costs system
// calls, so Map asks it without holding the table's lock: when allocation
// reaches a port not yet asked about, Map lets go of the lock, asks, and
// starts over with the answer, which later rounds reuse.
func (t *Table) Map(ctx context.Context, req MapRequest) (MapResult, error) {
	req.Internal = netip.AddrPortFrom(req.Internal.Addr().Unmap(), req.Internal.Port())
	if err := validate(&req); err != nil {
		t.mu.Lock()
		t.noteRefusal(&req, t.now(), err)
		t.mu.Unlock()
		return MapResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return MapResult{}, err
	}
	var room [4]portProbe
	probed := portProbes(room[:0])
	for {
		p, probe, err := t.mapRound(&req, probed)
		switch {
		case probe != 0:
			probed = append(probed, portProbe{probe, t.reserved(req.Protocol, probe)})
		case err != nil:
			t.logRefusal(&req, err)
			return MapResult{}, err
		default:
			return t.finishMap(p)
		}
	}
}

// pendingMap is a grant or renewal that the table has made and the kernel
// and the journal have yet to take.
type pendingMap struct {
	res MapResult
	ch  *change
	now time.Time
	// id and gen name a new lease, for taking it back should the kernel
	// refuse it.
	id  leaseID
	gen uint16
}

// mapRound is one round of Map, under t.mu. It returns the change made, or
// a port to probe without the lock (having changed nothing), or an error,
// and records the grant, renewal or refusal among the events.
func (t *Table) mapRound(req *MapRequest, probed portProbes) (p pendingMap, probe uint16, err error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return p, 0, ErrClosed
	}
	now := t.now()
	p, probe, err = t.mapLocked(req, probed, now)
	switch {
	case err != nil:
		t.noteRefusal(req, now, err)
	case probe != 0:
	case p.res.Renewed:
		countOrigin(&t.counts.renewed, p.res.Origin)
		t.events.add(now, EventRenewed, &p.res.Lease, req.requester(), "")
	default:
		countOrigin(&t.counts.granted, p.res.Origin)
		t.events.add(now, EventGranted, &p.res.Lease, req.requester(), "")
	}
	t.mu.Unlock()
	return p, probe, err
}

// noteRefusal counts Map's refusal of req with err, if err is one, and
// records it among the events with what req asked. t.mu must be held.
func (t *Table) noteRefusal(req *MapRequest, now time.Time, err error) {
	r, ok := refusalOf(err)
	if !ok {
		return
	}
	t.counts.refused[r]++
	asked := Lease{Protocol: req.Protocol, Internal: req.Internal, ExternalPort: req.ExternalPort, Origin: req.Origin}
	t.events.add(now, EventRefused, &asked, req.requester(), r.String())
}

// mapLocked is the work of mapRound. t.mu must be held.
func (t *Table) mapLocked(req *MapRequest, probed portProbes, now time.Time) (p pendingMap, probe uint16, err error) {
	lifetime := t.policy.lifetime(req)
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
	id, found := t.existing(req)
	if found {
		if req.CheckNonce && t.store.nonce(id) != req.Nonce || !req.isPinhole() && !mayRenew(req.Origin, t.store.get(id).origin) {
			return p, 0, ErrNonceMismatch
		}
		if req.Origin == OriginUPnP && !slices.Equal(t.store.filters(id), req.Filters) {
			return p, 0, fmt.Errorf("%w: the mapping has other filters", ErrConflict)
		}
		if req.isPinhole() && req.Exact && req.ExternalPort != 0 && req.ExternalPort != req.Internal.Port() {
			return p, 0, fmt.Errorf("%w: a pinhole's external port is its internal port", ErrConflict)
		}
		filters := req.Filters
		if req.Origin == OriginNATPMP {
			filters = t.store.filters(id) // NAT-PMP cannot name them
		}
		return t.renew(id, now, expires, filters, req.Description, granted(req, lifetime)), 0, nil
	}

	if err := t.checkQuota(req.Internal.Addr()); err != nil {
		return p, 0, err
	}
	var eport, pinholeID uint16
	if req.isPinhole() {
		eport = req.Internal.Port()
		switch {
		case !t.policy.allowsFor(req.requester(), eport, req.Internal.Addr(), eport):
			return p, 0, ErrNotAuthorized
		case req.Exact && req.ExternalPort != 0 && req.ExternalPort != eport:
			return p, 0, fmt.Errorf("%w: a pinhole's external port is its internal port", ErrConflict)
		}
	} else {
		eport, probe, err = t.allocate(req, probed)
		if probe != 0 || err != nil {
			return p, probe, err
		}
	}
	id, e := t.store.alloc()
	if req.isPinhole() {
		var ok bool
		if pinholeID, ok = t.pinholes.take(id); !ok {
			t.store.release(id)
			return p, 0, fmt.Errorf("%w: every pinhole UniqueID is in use", ErrOutOfResources)
		}
	}
	e.pinholeID = pinholeID
	e.setInternal(req.Internal)
	e.created = t.since(now)
	e.expires = expires
	e.eport = eport
	e.proto = req.Protocol
	e.origin = req.Origin
	t.store.setExtra(id, req.Nonce, req.Filters, req.Description)
	t.link(id)
	ch := &change{add: ptr(t.armed(id, now)), done: make(chan error, 1)}
	p = pendingMap{res: MapResult{Lease: t.lease(id), Granted: granted(req, lifetime)}, ch: ch, now: now, id: id, gen: e.gen}
	t.enqueue(ch, &p.res.Lease, nil)
	return p, 0, nil
}

// renew gives the lease id a new end (expires, 0: none) and filters, and
// its description unless that is empty, and queues the change. t.mu must
// be held.
func (t *Table) renew(id leaseID, now time.Time, expires int64, filters []Filter, description string, lifetime time.Duration) pendingMap {
	old := t.mapping(id)
	t.store.get(id).expires = expires
	if x := t.store.extra(id); x != nil && description == "" {
		description = x.description
	}
	t.store.setExtra(id, t.store.nonce(id), filters, description)
	ch := &change{remove: &old, add: ptr(t.armed(id, now)), done: make(chan error, 1)}
	p := pendingMap{res: MapResult{Lease: t.lease(id), Renewed: true, Granted: lifetime}, ch: ch, now: now}
	t.enqueue(ch, &p.res.Lease, nil)
	return p
}

// existing returns the lease that req renews, if any. t.mu must be held.
func (t *Table) existing(req *MapRequest) (leaseID, bool) {
	if req.Origin != OriginUPnP || req.isPinhole() {
		return t.byInternalEndpoint(req.Protocol, req.Internal)
	}
	id, ok := t.byExternal[mappingKey{req.Protocol, req.ExternalPort}]
	if ok && req.ExternalPort != 0 && t.store.get(id).internal() == req.Internal {
		return id, true
	}
	return 0, false
}

// mayRenew reports whether a request over origin may act on a lease that
// origin leaseOrigin made without naming its PCP nonce. A PCP mapping is
// renewed and deleted only with its nonce (RFC 6887 §11.3: a request for an
// existing mapping whose "mapping nonce does not match" is refused; §15),
// and NAT-PMP, sharing the port (RFC 6887 §9), has none to give: a NAT-PMP
// request for the endpoint of a PCP lease is refused (ErrNonceMismatch)
// rather than renew or delete it behind its nonce. UPnP names its mappings
// its own way and is not bound here, nor are pinholes, which any protocol
// renews (NAT-PMP has none: it is IPv4 only).
func mayRenew(origin, leaseOrigin Origin) bool {
	return origin != OriginNATPMP || leaseOrigin != OriginPCP
}

// finishMap waits for the kernel and the journal to take a grant or renewal,
// and takes back a new lease that they refused.
func (t *Table) finishMap(p pendingMap) (MapResult, error) {
	err := t.commit.wait(p.ch)
	switch {
	case err != nil && p.res.Renewed:
		t.logLease(slog.LevelError, "renewal not applied to the firewall", &p.res.Lease, p.now, err)
		return MapResult{}, err
	case err != nil:
		t.takeBack(p)
		t.logLease(slog.LevelError, "grant not applied", &p.res.Lease, p.now, err)
		return MapResult{}, err
	case p.res.Renewed:
		t.logLease(slog.LevelDebug, "renewed", &p.res.Lease, p.now)
	default:
		t.logLease(slog.LevelInfo, "granted", &p.res.Lease, p.now)
		t.changed()
	}
	return p.res, nil
}

// takeBack removes a new lease that the kernel or the journal refused from
// the table, unless it has gone meanwhile (and its slot been reused), and
// from the kernel: a kernel that refused only the journal's part (or a
// resync that ran before the take-back) holds it. Removing a mapping the
// kernel does not hold is no error; a removal that fails leaves the kernel
// dirty, for Run to resynchronise.
func (t *Table) takeBack(p pendingMap) {
	t.mu.Lock()
	held, ok := t.held(*p.ch.add)
	if !ok || held != p.id || t.store.get(p.id).gen != p.gen {
		t.mu.Unlock()
		return
	}
	undo := &change{remove: ptr(t.mapping(p.id)), done: make(chan error, 1)}
	t.enqueue(undo, nil, nil)
	t.noteRemoval(t.now(), ptr(t.lease(p.id)), removedNotApplied)
	t.unlink(p.id)
	t.mu.Unlock()
	if err := t.commit.wait(undo); err != nil {
		t.logLease(slog.LevelError, "refused grant not removed from the firewall", &p.res.Lease, p.now, err)
	}
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

func ptr[T any](v T) *T { return &v }
