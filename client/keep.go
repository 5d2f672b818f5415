package client

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// minRenew is the shortest wait before a renewal, whatever the lease.
const minRenew = time.Second

// Mapping is a mapping the Client keeps alive: renewed at half of each
// granted lifetime, verified every Config.CheckInterval, made again at once
// when the gateway lost it, retried with backoff when it fails. Events
// reports what happens to it. Create it with Client.Keep.
type Mapping struct {
	c   *Client
	req Request

	// Guarded by c.mu.
	cur       Result
	granted   bool
	grantedAt time.Time // when the attempt that last succeeded began
	expires   time.Time // end of the lease granted; zero for permanent
	bind      *binding  // where it lives; nil until first mapped
	ever      bool      // mapped at least once
	lost      bool      // the gateway lost it: make it again
	lostSeq   uint64    // counts the times lost was set
	verify    bool      // the gateway announced itself: check it holds the mapping
	verifySeq uint64    // counts the times verify was set
	answered  time.Time // when the answer that last granted or confirmed it was in
	failures  int       // consecutive failed attempts
	renewAt   time.Time // zero: no renewal (permanent)
	checkAt   time.Time // zero: no per-mapping check (NAT-PMP)
	next      time.Time // when the keeper works on it next
	notBefore time.Time // a reschedule's time: no urgent work before it
	index     int       // in c.queue; -1 when not queued
	urgent    bool      // work on it again as soon as the current work ends
	busy      bool      // an attempt is under way
	idle      chan struct{}
	cancelOp  context.CancelFunc
	stopped   bool
}

// Keep maps r and keeps the mapping alive until it is stopped or closed, or
// the Client is. It returns after the first attempt: the Mapping exists
// even when that attempt failed (the error says why), and the keeper goes
// on trying. Keep fails without a Mapping only for an invalid request, a
// closed Client or a ctx already done. ctx bounds the first attempt only.
func (c *Client) Keep(ctx context.Context, r Request) (*Mapping, error) {
	r, err := normalize(r)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := &Mapping{c: c, req: c.withNonce(r), index: -1}
	opCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.mappings[m] = struct{}{}
	m.begin(cancel)
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()
	return m, c.service(opCtx, m)
}

// Request returns the request the mapping keeps, with its defaults filled
// in (protocol in upper case; without Config.NonceKey, the PCP nonce drawn
// for its whole life; with a key the nonce is derived on each request and
// Result.Nonce tells it).
func (m *Mapping) Request() Request { return m.req }

// Current returns what is granted now, and false when nothing is: not
// mapped yet, lost, taken by another mapping, or the lease ran out while
// renewals failed.
func (m *Mapping) Current() (Result, bool) {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	ok := m.granted && (m.expires.IsZero() || time.Now().Before(m.expires))
	return m.cur, ok
}

// Stop stops keeping the mapping and leaves it on the gateway until its
// lease ends (a permanent UPnP mapping stays until deleted). An attempt
// under way finishes in the background.
func (m *Mapping) Stop() {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	m.c.unkeep(m)
}

// closeGrace is how long Mapping.Close lets an attempt under way finish
// before it cancels it.
const closeGrace = 2 * time.Second

// Close stops keeping the mapping and deletes it from the gateway: over
// NAT-PMP by its internal port (RFC 6886 §3.4), over UPnP by its external
// port once the entry is seen to lead to this mapping's address (another
// host's mapping that took the port meanwhile is left alone: *ConflictError).
// It waits for an attempt under way to end, cancelling it after
// closeGrace. A mapping never
// granted is not deleted and Close returns nil; one the gateway no longer
// holds returns an error wrapping ErrNotFound. Close mappings before the
// Client: after Client.Close, NAT-PMP deletions fail with ErrClosed.
func (m *Mapping) Close(ctx context.Context) error {
	c := m.c
	c.mu.Lock()
	c.unkeep(m)
	busy, idle, cancel := m.busy, m.idle, m.cancelOp
	c.mu.Unlock()
	if busy {
		// An attempt under way (a renewal, a verification) is let finish
		// for a while: a request of it that is still on its way would
		// otherwise reach the gateway with the deletion and, handled
		// after it, map the port again. One that takes longer (a gateway
		// that does not answer) is cancelled.
		wait := time.NewTimer(closeGrace)
		defer wait.Stop()
		select {
		case <-idle:
		case <-wait.C:
			if cancel != nil {
				cancel()
			}
			select {
			case <-idle:
			case <-ctx.Done():
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	b, cur, ever := m.bind, m.cur, m.ever
	c.mu.Unlock()
	if b == nil || !ever {
		return nil
	}
	var err error
	switch b.method {
	case PCP:
		r := m.req
		r.InternalAddr, r.Nonce = cur.Internal.Addr(), cur.Nonce
		err = c.unmapPCP(ctx, b.gw, r, cur.External.Port())
	case NATPMP:
		err = c.natpmpDelete(ctx, b.gw, m.req)
	case UPnP:
		if b.pinholeID != 0 {
			err = c.unmapPinholeUPnP(ctx, b.gw, b.dev, m.req, b.pinholeID)
			break
		}
		r := m.req
		r.OnConflict = ConflictKeep // never delete someone else's mapping on close
		r.InternalAddr = cur.Internal.Addr()
		err = c.unmapUPnP(ctx, b.gw, b.dev, r, cur.External.Port())
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	m.granted = false
	c.mu.Unlock()
	c.emit(Event{Kind: Deleted, Request: m.req, Result: cur, Gateway: cur.Gateway, ExternalAddress: cur.External.Addr()})
	return nil
}

// unkeep removes m from the keeper. The caller holds c.mu.
func (c *Client) unkeep(m *Mapping) {
	m.stopped = true
	if m.index >= 0 {
		heap.Remove(&c.queue, m.index)
	}
	delete(c.mappings, m)
}

// begin marks m busy with an attempt whose cancel is cancel. The caller
// holds c.mu.
func (m *Mapping) begin(cancel context.CancelFunc) {
	m.busy = true
	m.idle = make(chan struct{})
	m.cancelOp = cancel
}

// reschedule makes the keeper work on m at t (or, when t has come, right
// after the attempt under way), not before (RFC 6887 §14.1.1's wait after
// an announcement holds even a mapping that is busy or lost). The caller
// holds c.mu.
func (c *Client) reschedule(m *Mapping, t time.Time) {
	if m.stopped {
		return
	}
	m.notBefore = t
	if m.busy {
		m.urgent = true
		return
	}
	m.next = t
	if m.index >= 0 {
		heap.Fix(&c.queue, m.index)
	} else {
		heap.Push(&c.queue, m)
	}
}

// state is what an attempt needs to know of its mapping.
type state struct {
	cur       Result
	granted   bool
	bind      *binding
	ever      bool
	lost      bool
	lostSeq   uint64
	verify    bool
	verifySeq uint64
	answered  time.Time
	failures  int
	renewAt   time.Time
	checkAt   time.Time
}

// service makes one attempt on m, which the caller marked busy: the first
// mapping, a renewal, a re-creation or a check, whichever is due. It emits
// the event that follows, schedules the next attempt and returns the
// attempt's error.
func (c *Client) service(ctx context.Context, m *Mapping) error {
	c.mu.Lock()
	st := state{
		cur: m.cur, granted: m.granted, bind: m.bind, ever: m.ever, lost: m.lost, lostSeq: m.lostSeq,
		verify: m.verify, verifySeq: m.verifySeq, answered: m.answered,
		failures: m.failures, renewAt: m.renewAt, checkAt: m.checkAt,
	}
	c.mu.Unlock()

	start := time.Now()
	var (
		o       *outcome
		err     error
		checked bool
	)
	switch {
	case st.bind == nil || st.failures >= 2:
		// First attempt, or the gateway keeps failing: look at every
		// gateway and protocol again, this one first.
		o, err = c.establish(ctx, m, st)
		checked = o == nil
	case st.bind.method == UPnP && st.granted && !st.lost && (st.verify || st.failures > 0):
		// Over UPnP a verification, and an attempt after failures (a
		// gateway that was away may have restarted), read the entry
		// first: AddPortMapping succeeds alike for a mapping the gateway
		// holds and for one it lost, and only the entry tells a renewal
		// from a re-creation.
		o, err = c.checkUPnP(ctx, m, st)
		checked = true
	case st.lost || !st.granted || st.failures > 0 || (!st.renewAt.IsZero() && !st.renewAt.After(start)) ||
		(st.verify && st.bind.method != UPnP):
		// Over NAT-PMP and PCP a verification asks for the mapping again, for
		// the same internal and external ports: a renewal to a gateway
		// that holds it, a re-creation to one that lost it (RFC 6886
		// §3.7, "from the point of view of the freshly rebooted NAT
		// gateway, it appears as a new mapping request").
		var oo outcome
		oo, err = c.mapOn(ctx, *st.bind, m.req, st.cur.External.Port(), m)
		o = &oo
	case st.bind.method == UPnP && !st.checkAt.After(start):
		o, err = c.checkUPnP(ctx, m, st)
		checked = true
	}
	c.finish(m, st, start, o, err, checked)
	return err
}

// establish maps m afresh: on its binding first (over UPnP, for a granted
// mapping, through checkUPnP, as service says why), then on every gateway
// and protocol, looked for again after repeated failures.
func (c *Client) establish(ctx context.Context, m *Mapping, st state) (*outcome, error) {
	var first error
	if b := st.bind; b != nil {
		var (
			o   *outcome
			err error
		)
		if b.method == UPnP && st.granted && !st.lost {
			o, err = c.checkUPnP(ctx, m, st)
		} else {
			var oo outcome
			oo, err = c.mapOn(ctx, *b, m.req, st.cur.External.Port(), m)
			o = &oo
		}
		if err == nil || errors.Is(err, ErrConflict) || ctx.Err() != nil {
			return o, err
		}
		first = err
	}
	refresh := st.failures >= 2
	gws, err := c.gateways(ctx, refresh)
	if err != nil {
		return nil, errors.Join(first, err)
	}
	if refresh {
		for _, g := range gws {
			g.forgetNATPMP()
			g.forgetIGDs()
		}
	}
	o, err := c.mapAny(ctx, gws, m.req, m, st.bind)
	if err != nil && first != nil {
		err = errors.Join(first, err)
	}
	return &o, err
}

// checkUPnP verifies that the gateway still holds m (UPnP
// GetSpecificPortMappingEntry) and makes it again when it does not (the
// outcome is restarted: a re-creation). After failures an entry in place
// is renewed (its lease refreshed, and a Renewed event ends the Failed
// ones). A nil outcome with a nil error means all is well.
func (c *Client) checkUPnP(ctx context.Context, m *Mapping, st state) (*outcome, error) {
	b := st.bind
	if b.pinholeID != 0 {
		return c.checkPinholeUPnP(ctx, m, st)
	}
	eport := st.cur.External.Port()
	e, err := b.dev.get(ctx, m.req.Protocol, eport)
	switch {
	case errors.Is(err, ErrNotFound):
		c.log.Warn("the gateway lost a mapping: mapping again", "request", m.req.String(), "gateway", b.gw.route.gw)
	case err != nil:
		return nil, &GatewayError{Op: "check", Method: UPnP, Gateway: b.gw.route.gw, Err: err}
	case e.Internal != st.cur.Internal:
		if m.req.OnConflict != ConflictReplace {
			return nil, &GatewayError{Op: "check", Method: UPnP, Gateway: b.gw.route.gw,
				Err: &ConflictError{Protocol: m.req.Protocol, ExternalPort: eport, Holder: e}}
		}
		c.log.Warn("another mapping took the port: replacing it", "request", m.req.String(), "holder", e.Internal)
	case !e.Enabled:
		c.log.Warn("the gateway disabled a mapping: mapping again", "request", m.req.String())
	case st.failures > 0:
		o, err := c.mapOn(ctx, *b, m.req, eport, m)
		return &o, err
	default:
		return nil, nil
	}
	o, err := c.mapOn(ctx, *b, m.req, eport, m)
	o.restarted = true
	return &o, err
}

// finish records the attempt on m that began at start: its outcome o (nil
// when there was nothing to do, or a check found all well) or its error;
// emits the event; schedules m.
func (c *Client) finish(m *Mapping, st state, start time.Time, o *outcome, err error, checked bool) {
	var ev *Event
	quiet := false // a verification found the mapping as it was
	c.mu.Lock()
	now := time.Now()
	m.busy = false
	close(m.idle)
	m.cancelOp = nil
	switch {
	case err == nil && o != nil:
		kind, lostWhy := Renewed, ""
		switch {
		case !st.ever:
			kind = Mapped
		case o.restarted || st.lost || !st.granted:
			kind = Recreated
		case st.bind != nil && (st.bind.gw != o.bind.gw || st.bind.method != o.bind.method):
			kind = Mapped
		case !st.verify:
		case o.res.External != st.cur.External:
			kind, lostWhy = Recreated, "granted another external port"
		case !st.answered.IsZero() && st.answered.Before(o.began):
			kind, lostWhy = Recreated, "its epoch began after it last granted the mapping"
		case st.failures > 0:
		default:
			quiet = true
		}
		if lostWhy != "" {
			c.log.Warn("the gateway had lost a mapping: made again", "request", m.req.String(),
				"gateway", o.bind.gw.route.gw, "why", lostWhy)
		}
		m.cur, m.granted, m.bind, m.ever, m.failures = o.res, true, o.bind, true, 0
		m.grantedAt = start
		m.expires, m.renewAt = time.Time{}, time.Time{}
		if lt := o.res.Lifetime; lt > 0 {
			m.expires = start.Add(lt)
			m.renewAt = start.Add(max(lt/2, minRenew))
		}
		m.checkAt = time.Time{}
		if o.bind.method == UPnP {
			m.checkAt = now.Add(c.cfg.CheckInterval)
		}
		if m.lostSeq == st.lostSeq {
			m.lost = false
		}
		if m.verifySeq == st.verifySeq {
			m.verify = false
		}
		m.answered = now
		if !quiet {
			ev = &Event{Kind: kind, Request: m.req, Result: m.cur, Gateway: m.cur.Gateway, ExternalAddress: m.cur.External.Addr()}
		}
	case err == nil:
		if checked {
			m.checkAt = now.Add(c.cfg.CheckInterval)
			m.answered = now
			if m.verifySeq == st.verifySeq {
				m.verify = false
			}
		}
	default:
		m.failures++
		if errors.Is(err, ErrConflict) || (!m.expires.IsZero() && !now.Before(m.expires)) {
			m.granted = false
		}
		ev = &Event{Kind: Failed, Request: m.req, Err: err}
		if m.granted {
			ev.Result = m.cur
		}
		if m.bind != nil {
			ev.Gateway = m.bind.gw.route.gw
			ev.ExternalAddress = m.bind.gw.external()
		}
	}
	m.next = c.nextAttempt(m, now)
	if m.urgent || (m.lost && m.failures == 0) {
		m.next = now
		if m.notBefore.After(now) {
			m.next = m.notBefore
		}
	}
	m.urgent = false
	if !m.stopped && !c.closed && m.index < 0 {
		heap.Push(&c.queue, m)
	}
	bind := m.bind
	c.mu.Unlock()
	c.poke()

	if quiet || (checked && err == nil && o == nil && st.verify) {
		c.log.Debug("verified: the gateway holds the mapping", "request", m.req.String(), "via", bind.method)
	}
	if ev == nil {
		return
	}
	if ev.Kind == Failed {
		c.log.Warn("mapping failed", "request", m.req.String(), "err", err)
		c.emit(*ev)
		return
	}
	// Listen for the gateway's news before telling: once an application
	// (or a test) sees the event, a restart of the gateway is heard.
	switch bind.method {
	case NATPMP, PCP:
		if bind.gw.route.gw.Is6() {
			c.listenAnnouncements6(bind.gw)
		} else {
			c.listenAnnouncements(bind.gw)
		}
	case UPnP:
		c.mu.Lock()
		if !bind.gw.watching && !c.closed {
			bind.gw.watching = true
			c.watchReq = append(c.watchReq, bind.gw)
		}
		c.mu.Unlock()
		c.poke()
	}
	c.log.Info(ev.Kind.String(), "request", m.req.String(), "external", ev.Result.External.String(),
		"lifetime", ev.Result.Lifetime, "via", ev.Result.Method, "gateway", ev.Result.Gateway)
	c.emit(*ev)
	c.reportExternal(bind.gw)
}

// nextAttempt is when m is next due: the renewal or check after a success,
// a backoff after failures (1 s doubling, at most Config.CheckInterval).
// The caller holds c.mu.
func (c *Client) nextAttempt(m *Mapping, now time.Time) time.Time {
	if m.failures > 0 {
		backoff := c.cfg.CheckInterval
		if m.failures <= 16 {
			backoff = min(time.Second<<(m.failures-1), c.cfg.CheckInterval)
		}
		return now.Add(backoff)
	}
	next := time.Time{}
	for _, t := range []time.Time{m.renewAt, m.checkAt} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if next.IsZero() {
		next = now.Add(c.cfg.CheckInterval)
	}
	return next
}

// run is the keeper: it starts an attempt for each kept mapping that is
// due (at most maxInflight at a time), the periodic gateway checks and the
// NOTIFY watches, until ctx is done (Close).
func (c *Client) run(ctx context.Context) {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	tick := time.NewTicker(c.cfg.CheckInterval)
	defer tick.Stop()
	for {
		c.mu.Lock()
		now := time.Now()
		for c.inflight < maxInflight && len(c.queue) > 0 && !c.queue[0].next.After(now) {
			m := heap.Pop(&c.queue).(*Mapping)
			opCtx, cancel := context.WithCancel(ctx)
			m.begin(cancel)
			c.inflight++
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer cancel()
				_ = c.service(opCtx, m)
				c.mu.Lock()
				c.inflight--
				c.mu.Unlock()
				c.poke()
			}()
		}
		wait := time.Hour
		if c.inflight < maxInflight && len(c.queue) > 0 {
			wait = c.queue[0].next.Sub(now)
		}
		watches := c.watchReq
		c.watchReq = nil
		c.mu.Unlock()

		for _, g := range watches {
			c.wg.Add(1)
			go c.watchNotify(ctx, g)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-timer.C:
		case <-tick.C:
			c.checkGateways(ctx)
		}
	}
}

// checkGateways starts a check of each gateway that holds kept mappings
// and is not being checked already: over NAT-PMP an external address
// request (its epoch tells a restart, RFC 6886 §3.6), over PCP an ANNOUNCE
// request (RFC 6887 §8.5, §14.1.1), over UPnP each IGD's external address.
func (c *Client) checkGateways(ctx context.Context) {
	type job struct {
		g    *gateway
		pmp  bool
		pcp  bool
		devs []igdDevice
	}
	jobs := make(map[*gateway]*job)
	c.mu.Lock()
	for m := range c.mappings {
		b := m.bind
		if b == nil || b.gw.checking {
			continue
		}
		j := jobs[b.gw]
		if j == nil {
			j = &job{g: b.gw}
			jobs[b.gw] = j
		}
		switch {
		case b.method == NATPMP:
			j.pmp = true
		case b.method == PCP:
			j.pcp = true
		case !containsDev(j.devs, b.dev):
			j.devs = append(j.devs, b.dev)
		}
	}
	for g := range jobs {
		g.checking = true
	}
	c.mu.Unlock()
	for _, j := range jobs {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.checkGateway(ctx, j.g, j.pmp, j.pcp, j.devs)
			c.mu.Lock()
			j.g.checking = false
			c.mu.Unlock()
		}()
	}
}

func containsDev(devs []igdDevice, d igdDevice) bool {
	for _, x := range devs {
		if x == d {
			return true
		}
	}
	return false
}

// checkGateway is one periodic check of g; failures are Failed events
// without a Request.
func (c *Client) checkGateway(ctx context.Context, g *gateway, pmp, pcp bool, devs []igdDevice) {
	fail := func(err error) {
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("gateway check failed", "gateway", g.route.gw, "err", err)
		c.emit(Event{Kind: Failed, Err: err, Gateway: g.route.gw, ExternalAddress: g.external()})
	}
	if pmp {
		if _, err := c.natpmpExternal(ctx, g, probeTries); err != nil {
			fail(err)
		}
	}
	if pcp {
		// Any answer carries the epoch (RFC 6887 §8.5).
		if _, err := c.pcpAnnounce(ctx, g); err != nil {
			fail(err)
		}
	}
	for _, d := range devs {
		a, err := d.externalAddress(ctx)
		if err != nil {
			fail(&GatewayError{Op: "check", Method: UPnP, Gateway: g.route.gw, Err: err})
			continue
		}
		c.learnExternal(g, a)
	}
}

// watchNotify listens for SSDP NOTIFY on g's link until ctx is done, and
// takes a new BOOTID.UPNP.ORG of a device as its restart (UDA 1.1 §1.2.2).
func (c *Client) watchNotify(ctx context.Context, g *gateway) {
	defer c.wg.Done()
	err := c.ns.do(func() error {
		return c.finder.watch(ctx, g.route, func(from netip.AddrPort, n notice) { c.onNotify(g, from, n) })
	})
	if err != nil && ctx.Err() == nil {
		c.log.Warn("cannot listen for SSDP NOTIFY: relying on periodic checks", "gateway", g.route.gw, "err", err)
	}
}

// onNotify digests one NOTIFY heard on g's link. An IGD of g that
// announces itself anew has the UPnP mappings through g verified at once: a
// new BOOTID.UPNP.ORG in an ssdp:alive means it rebooted (UDA 1.1 §1.2.2,
// reported as GatewayRestarted), and an ssdp:alive after an ssdp:byebye
// that it went away and came back (miniupnpd 2.3.1 keeps its BOOTID across
// a restart within the same second). Its many NOTIFYs of one announcement
// (one per device and service type, repeated) prompt one verification.
func (c *Client) onNotify(g *gateway, from netip.AddrPort, n notice) {
	udn := udnOf(n.usn)
	g.mu.Lock()
	ours := from.Addr() == g.route.gw
	for _, d := range g.igds {
		if d.udn() != "" && d.udn() == udn {
			ours = true
		}
	}
	if !ours || udn == "" || (n.nts != "ssdp:alive" && n.nts != "ssdp:byebye") {
		g.mu.Unlock()
		return
	}
	if g.bootIDs == nil {
		g.bootIDs = make(map[string]int)
	}
	if g.byebye == nil {
		g.byebye = make(map[string]bool)
	}
	if n.nts == "ssdp:byebye" {
		g.byebye[udn] = true
		g.mu.Unlock()
		c.log.Debug("IGD said ssdp:byebye", "gateway", g.route.gw, "udn", udn)
		return
	}
	old, known := g.bootIDs[udn]
	rebooted := known && n.bootID >= 0 && old != n.bootID
	if rebooted {
		// The embedded devices of the IGD share its BOOTID: their
		// NOTIFYs of the same boot say nothing new.
		for u, id := range g.bootIDs {
			if id == old {
				g.bootIDs[u] = n.bootID
			}
		}
	}
	if n.bootID >= 0 {
		g.bootIDs[udn] = n.bootID
	}
	back := g.byebye[udn]
	if back {
		clear(g.byebye) // the IGD's devices say byebye together
	}
	g.mu.Unlock()
	switch {
	case rebooted:
		why := fmt.Sprintf("UPnP BOOTID %d -> %d", old, n.bootID)
		c.log.Warn("IGD restarted (new BOOTID): verifying the mappings", "gateway", g.route.gw, "udn", udn,
			"old", old, "new", n.bootID, "location", n.location)
		g.forgetIGDs()
		if c.verifyMappings(g, UPnP, why, func(*Mapping) bool { return true }) > 0 {
			c.emit(Event{Kind: GatewayRestarted, Gateway: g.route.gw, ExternalAddress: g.external(),
				Err: fmt.Errorf("client: gateway %s restarted (%s)", g.route.gw, why)})
		}
	case back:
		c.log.Debug("IGD came back after ssdp:byebye", "gateway", g.route.gw, "udn", udn, "bootid", n.bootID, "location", n.location)
		c.verifyMappings(g, UPnP, "UPnP ssdp:byebye then ssdp:alive", func(*Mapping) bool { return true })
	default:
		// miniupnpd 2.3.1 sends its first ssdp:alive a few
		// milliseconds before its HTTP server accepts (seen in the
		// lab), and the copy 250 ms later: a verification that failed
		// meanwhile is tried again at once rather than after backoff.
		c.verifyMappings(g, UPnP, "UPnP ssdp:alive", func(m *Mapping) bool { return m.verify && m.failures > 0 && !m.busy })
	}
}

// udnOf returns the device UDN of a USN ("uuid:X::urn:..." or "uuid:X"), as
// IGD descriptions write it ("uuid:X").
func udnOf(usn string) string {
	if i := strings.Index(usn, "::"); i >= 0 {
		usn = usn[:i]
	}
	if !strings.HasPrefix(usn, "uuid:") {
		return ""
	}
	return usn
}

// mappingHeap orders kept mappings by when they are due.
type mappingHeap []*Mapping

func (h mappingHeap) Len() int           { return len(h) }
func (h mappingHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h mappingHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *mappingHeap) Push(x any) {
	m := x.(*Mapping)
	m.index = len(*h)
	*h = append(*h, m)
}

func (h *mappingHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	old[len(old)-1] = nil
	m.index = -1
	*h = old[:len(old)-1]
	return m
}
