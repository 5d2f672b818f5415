package client

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/portlease/portlease/natpmp"
)

// binding is where a mapping lives: a gateway, the protocol spoken to it and,
// for UPnP, the IGD.
type binding struct {
	gw     *gateway
	method Method
	dev    igdDevice
	// pinholeID is the UniqueID of a pinhole opened on dev over UPnP.
	pinholeID uint16
}

// outcome is a successful mapping attempt.
type outcome struct {
	res  Result
	bind *binding
	// restarted: the answer showed that the gateway had lost its state
	// (NAT-PMP epoch), so this attempt re-created the mapping.
	restarted bool
	// began is, over NAT-PMP, the earliest the gateway's epoch can have
	// begun by the answer (earliestEpochStart); zero over UPnP.
	began time.Time
}

// methodsFor returns the protocols to try on g for r, in order (see Auto).
// An IPv6 gateway speaks PCP only here; an IPv4 one opens pinholes over
// UPnP only (its IGD's WANIPv6FirewallControl).
func (c *Client) methodsFor(r Request, g *gateway) []Method {
	if g.route.gw.Is6() {
		if r.InternalAddr.Is6() && (c.cfg.Method == Auto || c.cfg.Method == PCP) {
			return []Method{PCP}
		}
		return nil
	}
	if r.InternalAddr.Is6() {
		if c.cfg.Method == Auto || c.cfg.Method == UPnP {
			return []Method{UPnP}
		}
		return nil
	}
	switch c.cfg.Method {
	case NATPMP, UPnP, PCP:
		return []Method{c.cfg.Method}
	}
	switch {
	case len(r.Filters) > 0:
		return []Method{PCP}
	case r.InternalAddr.IsValid() && r.InternalAddr != g.route.local:
		// Only PCP (THIRD_PARTY, where the gateway allows it) and UPnP
		// map another address.
		return []Method{PCP, UPnP}
	}
	return []Method{PCP, NATPMP, UPnP}
}

// internalAddr is the address r maps to through g.
func internalAddr(r Request, g *gateway) netip.Addr {
	if r.InternalAddr.IsValid() {
		return r.InternalAddr
	}
	return g.route.local
}

// lifetimeOf is the lifetime to ask for.
func lifetimeOf(r Request) time.Duration {
	if r.Lifetime == 0 {
		return DefaultLifetime
	}
	return r.Lifetime
}

// mapOn makes (or renews: prevPort is the external port held) r on b's
// gateway with b's protocol (and b.dev first, for UPnP). except is the kept
// mapping worked on, nil for a one-shot Map.
func (c *Client) mapOn(ctx context.Context, b binding, r Request, prevPort uint16, except *Mapping) (outcome, error) {
	switch {
	case b.method == PCP:
		return c.mapPCP(ctx, b.gw, r, prevPort, except)
	case r.InternalAddr.Is6() && b.method == UPnP:
		return c.mapUPnP(ctx, b.gw, b.dev, func(d igdDevice) (outcome, error) {
			id := uint16(0)
			if d == b.dev {
				id = b.pinholeID
			}
			return c.mapPinholeIGD(ctx, b.gw, d, r, id)
		})
	case len(r.Filters) > 0 || r.InternalAddr.Is6():
		return outcome{}, &GatewayError{Op: "map", Method: b.method, Gateway: b.gw.route.gw,
			Err: fmt.Errorf("%w: filters need PCP, IPv6 pinholes PCP or UPnP", ErrUnsupported)}
	case b.method == NATPMP:
		return c.mapNATPMP(ctx, b.gw, r, prevPort, except)
	}
	return c.mapUPnP(ctx, b.gw, b.dev, func(d igdDevice) (outcome, error) {
		return c.mapIGD(ctx, b.gw, d, r, prevPort)
	})
}

// mapNATPMP maps r over NAT-PMP (RFC 6886 §3.3).
func (c *Client) mapNATPMP(ctx context.Context, g *gateway, r Request, prevPort uint16, except *Mapping) (outcome, error) {
	fail := func(err error) (outcome, error) {
		return outcome{}, &GatewayError{Op: "map", Method: NATPMP, Gateway: g.route.gw, Err: err}
	}
	if r.InternalAddr.IsValid() && r.InternalAddr != g.route.local {
		return fail(&ForeignAddressError{Addr: r.InternalAddr, Local: g.route.local})
	}
	info, err := c.natpmpProbe(ctx, g, c.cfg.CheckInterval)
	if err != nil {
		return outcome{}, err
	}
	if info.PCPOnly {
		return fail(fmt.Errorf("%w: the gateway speaks PCP only", ErrUnsupported))
	}
	suggest := prevPort
	if suggest == 0 {
		suggest = r.ExternalPort
	}
	if suggest == 0 {
		suggest = r.InternalPort
	}
	a, err := g.pmp.mapPort(ctx, r.Protocol, r.InternalPort, suggest, lifetimeSeconds(lifetimeOf(r)), mapTries)
	if err != nil {
		if ctx.Err() == nil {
			g.forgetNATPMP()
		}
		return fail(err)
	}
	restarted := c.natpmpEpoch(g, a, except)
	if err := a.resp.Err(); err != nil {
		return fail(err)
	}
	m := a.resp.Mapping
	if m.Lifetime == 0 || m.ExternalPort == 0 {
		return fail(fmt.Errorf("client: the gateway granted port %d for %d s", m.ExternalPort, m.Lifetime))
	}
	return outcome{
		res: Result{
			Protocol:  r.Protocol,
			Internal:  netip.AddrPortFrom(g.route.local, r.InternalPort),
			External:  netip.AddrPortFrom(g.external(), m.ExternalPort),
			Lifetime:  time.Duration(m.Lifetime) * time.Second,
			Method:    NATPMP,
			Gateway:   g.route.gw,
			Interface: g.route.iface,
		},
		bind:      &binding{gw: g, method: NATPMP},
		restarted: restarted,
		began:     earliestEpochStart(a.sent, a.resp.Header.Epoch),
	}, nil
}

// mapUPnP maps through the IGDs found via g with mapOne, pref first (a
// renewal asks only pref, unless it fails). A conflict is final: the best
// IGD holds the port for someone else.
func (c *Client) mapUPnP(ctx context.Context, g *gateway, pref igdDevice, mapOne func(igdDevice) (outcome, error)) (outcome, error) {
	var errs []error
	try := func(d igdDevice) (outcome, bool, error) {
		o, err := mapOne(d)
		if err == nil {
			return o, true, nil
		}
		err = &GatewayError{Op: "map", Method: UPnP, Gateway: g.route.gw, Err: err}
		if errors.Is(err, ErrConflict) || ctx.Err() != nil {
			return outcome{}, true, err
		}
		errs = append(errs, err)
		return outcome{}, false, nil
	}
	if pref != nil {
		if o, done, err := try(pref); done {
			return o, err
		}
		// The IGD may have moved (a restart can change the port of its
		// description and control URLs): look for it again.
		g.forgetIGDs()
	}
	devs, err := c.igdList(ctx, g, c.cfg.CheckInterval)
	if err != nil {
		return outcome{}, errors.Join(append(errs, err)...)
	}
	for _, d := range devs {
		if d == pref {
			continue
		}
		if o, done, err := try(d); done {
			return o, err
		}
	}
	if len(errs) > 0 {
		g.forgetIGDs()
	}
	return outcome{}, errors.Join(errs...)
}

// mapIGD maps r on one IGD, obeying r.OnConflict.
func (c *Client) mapIGD(ctx context.Context, g *gateway, d igdDevice, r Request, prevPort uint16) (outcome, error) {
	internal := internalAddr(r, g)
	want := prevPort
	if want == 0 {
		want = r.ExternalPort
	}
	anyPort := r.ExternalPort == 0 // the internal port if free, else any
	if want == 0 {
		want = r.InternalPort
	}
	desc := r.Description
	if desc == "" {
		desc = DefaultDescription
	}
	m := upnpMapping{
		proto:        r.Protocol,
		externalPort: want,
		internal:     netip.AddrPortFrom(internal, r.InternalPort),
		description:  desc,
		lease:        lifetimeSeconds(lifetimeOf(r)),
	}
	grant, err := d.add(ctx, m)
	if errors.Is(err, ErrConflict) {
		switch {
		case anyPort:
			c.log.Debug("external port taken: letting the router pick one", "protocol", r.Protocol, "port", want, "err", err)
			m.externalPort = 0
			grant, err = d.add(ctx, m)
		case r.OnConflict == ConflictReplace:
			c.log.Info("external port taken: replacing the mapping that holds it", "protocol", r.Protocol, "port", want, "err", err)
			if rerr := d.remove(ctx, r.Protocol, want); rerr != nil && !errors.Is(rerr, ErrNotFound) {
				return outcome{}, fmt.Errorf("delete the mapping in the way: %w", rerr)
			}
			grant, err = d.add(ctx, m)
		}
	}
	if err != nil {
		return outcome{}, err
	}
	ext, err := d.externalAddress(ctx)
	if err != nil {
		c.log.Debug("no external address from the IGD", "igd", d.info().Location, "err", err)
		ext = g.external()
	} else {
		c.learnExternal(g, ext)
	}
	return outcome{
		res: Result{
			Protocol:  r.Protocol,
			Internal:  m.internal,
			External:  netip.AddrPortFrom(ext, grant.externalPort),
			Lifetime:  time.Duration(grant.lease) * time.Second,
			Method:    UPnP,
			Gateway:   g.route.gw,
			Interface: g.route.iface,
		},
		bind: &binding{gw: g, method: UPnP, dev: d},
	}, nil
}

// mapAny tries every gateway and protocol in order until one maps r; skip is
// a binding already tried. The error joins every failure; it wraps
// ErrNoGateway when nothing answered at all.
func (c *Client) mapAny(ctx context.Context, gws []*gateway, r Request, except *Mapping, skip *binding) (outcome, error) {
	if r.InternalAddr.Is6() && c.cfg.Method == NATPMP {
		return outcome{}, fmt.Errorf("%w: NAT-PMP opens no IPv6 pinholes (PCP and UPnP do)", ErrUnsupported)
	}
	var refused, absent []error
	for _, g := range byFamily(gws, r) {
		for _, method := range c.methodsFor(r, g) {
			if skip != nil && skip.gw == g && skip.method == method {
				continue
			}
			o, err := c.mapOn(ctx, binding{gw: g, method: method}, r, 0, except)
			if err == nil {
				if c.cfg.Method == Auto {
					c.log.Info("protocol chosen", "request", r.String(), "gateway", g.route.gw, "method", method)
				}
				return o, nil
			}
			if ctx.Err() != nil {
				return outcome{}, ctx.Err()
			}
			c.log.Debug("mapping failed", "request", r.String(), "gateway", g.route.gw, "method", method, "err", err)
			if errors.Is(err, ErrConflict) {
				return outcome{}, err // the port asked for is taken: no other protocol grants it
			}
			if errAbsent(err) {
				absent = append(absent, err)
			} else {
				refused = append(refused, err)
			}
		}
	}
	switch {
	case len(refused) == 1:
		return outcome{}, refused[0]
	case len(refused) > 1:
		return outcome{}, errors.Join(refused...)
	case len(absent) > 0:
		return outcome{}, fmt.Errorf("%w that answers: %w", ErrNoGateway, errors.Join(absent...))
	}
	return outcome{}, ErrNoGateway
}

// byFamily returns the gateways to try for r in order: for an IPv4 request
// the IPv4 ones; for a pinhole the IPv6 default routers (PCP) first, then
// the IPv4 gateways (UPnP WANIPv6FirewallControl).
func byFamily(gws []*gateway, r Request) []*gateway {
	out := make([]*gateway, 0, len(gws))
	for _, g := range gws {
		if g.route.gw.Is6() == r.InternalAddr.Is6() {
			out = append(out, g)
		}
	}
	if r.InternalAddr.Is6() {
		for _, g := range gws {
			if g.route.gw.Is4() {
				out = append(out, g)
			}
		}
	}
	return out
}

// Map maps r once, trying the gateways in order (lowest route metric first)
// and on each the protocols Config.Method allows, until one succeeds. The
// mapping lives as long as the gateway grants; Keep renews it. An IPv6
// r.InternalAddr asks the IPv6 default routers for a pinhole over PCP.
// Over PCP, Result.Nonce is the mapping's nonce, which a later Unmap needs.
func (c *Client) Map(ctx context.Context, r Request) (Result, error) {
	r, err := normalize(r)
	if err != nil {
		return Result{}, err
	}
	r = c.withNonce(r)
	gws, err := c.gateways(ctx, false)
	if err != nil {
		return Result{}, err
	}
	o, err := c.mapAny(ctx, gws, r, nil, nil)
	return o.res, err
}

// Unmap deletes the mapping of r from the gateways. Over UPnP it is found by
// its external port (r.ExternalPort, or r.InternalPort when 0) and protocol;
// with ConflictKeep it is deleted only when it leads to r's own address
// (else *ConflictError). Over NAT-PMP it is found by internal port and
// protocol (RFC 6886 §3.4; a gateway deletes only the requester's own
// mappings, and answers success for one it does not hold). Over PCP it is
// found by internal address, port and protocol, and deleted only with its
// nonce (RFC 6887 §15): r.Nonce, or the one Config.NonceKey derives for it;
// Auto tries PCP only with one of them (not for r.PinholeID, a UPnP
// pinhole), goes on to the other protocols when PCP refuses a derived nonce
// (the mapping was made another way), and reports a gateway's NAT-PMP
// refusal without r.Nonce as ErrNonceNeeded.
// With Auto the protocols are tried in turn. A mapping found nowhere is
// ErrNotFound.
func (c *Client) Unmap(ctx context.Context, r Request) error {
	r, err := normalize(r)
	if err != nil {
		return err
	}
	gws, err := c.gateways(ctx, false)
	if err != nil {
		return err
	}
	var errs []error
	notFound := false
	for _, g := range byFamily(gws, r) {
		deleted := false
	methods:
		for _, method := range c.methodsFor(r, g) {
			derived := r.Nonce.IsZero()
			if method == PCP && c.cfg.Method == Auto && (r.PinholeID != 0 || (derived && len(c.cfg.NonceKey) == 0)) {
				continue
			}
			var err error
			switch method {
			case PCP:
				err = c.unmapPCP(ctx, g, r, 0)
			case NATPMP:
				err = c.unmapNATPMP(ctx, g, r)
			case UPnP:
				if r.InternalAddr.Is6() {
					err = c.unmapPinholeUPnP(ctx, g, nil, r, r.PinholeID)
				} else {
					err = c.unmapUPnP(ctx, g, nil, r, 0)
				}
			}
			switch {
			case err == nil:
				deleted = true
			case errors.Is(err, ErrNotFound):
				notFound = true
			case ctx.Err() != nil:
				return ctx.Err()
			case c.cfg.Method == Auto && errAbsent(err):
				// The other protocol may hold it.
			default:
				errs = append(errs, err)
				if method == PCP && !(derived && c.cfg.Method == Auto) {
					// The gateway speaks PCP and refused the
					// nonce the user gave: NAT-PMP's deletion,
					// which some gateways grant for any
					// mapping, must not hide it. A derived
					// nonce may just be the wrong guess for a
					// mapping made over NAT-PMP or UPnP.
					break methods
				}
			}
		}
		if deleted {
			return nil
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if notFound {
		return fmt.Errorf("%w: %s", ErrNotFound, r)
	}
	return ErrNoGateway
}

// unmapNATPMP deletes r's NAT-PMP mapping (RFC 6886 §3.4).
func (c *Client) unmapNATPMP(ctx context.Context, g *gateway, r Request) error {
	fail := func(err error) error {
		return &GatewayError{Op: "unmap", Method: NATPMP, Gateway: g.route.gw, Err: err}
	}
	if r.InternalAddr.IsValid() && r.InternalAddr != g.route.local {
		return fail(&ForeignAddressError{Addr: r.InternalAddr, Local: g.route.local})
	}
	if _, err := c.natpmpProbe(ctx, g, c.cfg.CheckInterval); err != nil {
		return err
	}
	a, err := g.pmp.mapPort(ctx, r.Protocol, r.InternalPort, 0, 0, deleteTries)
	if err != nil {
		return fail(err)
	}
	c.natpmpEpoch(g, a, nil)
	if err := a.resp.Err(); err != nil {
		var re *natpmp.ResultError
		if r.Nonce.IsZero() && errors.As(err, &re) && re.Code == natpmp.NotAuthorized {
			// A deletion of a mapping that is not there succeeds
			// (RFC 6886 §3.4); a refusal is a mapping NAT-PMP may
			// not touch, such as one made over PCP, which goes only
			// with its nonce (RFC 6887 §15).
			err = fmt.Errorf("%w: %w", ErrNonceNeeded, err)
		}
		return fail(err)
	}
	return nil
}

// unmapUPnP deletes the UPnP mapping of external port eport (r.ExternalPort
// or r.InternalPort when 0) on d, or on the best IGD via g when d is nil.
func (c *Client) unmapUPnP(ctx context.Context, g *gateway, d igdDevice, r Request, eport uint16) error {
	fail := func(err error) error { return &GatewayError{Op: "unmap", Method: UPnP, Gateway: g.route.gw, Err: err} }
	if d == nil {
		devs, err := c.igdList(ctx, g, c.cfg.CheckInterval)
		if err != nil {
			return err
		}
		d = devs[0]
	}
	if eport == 0 {
		eport = r.ExternalPort
	}
	if eport == 0 {
		eport = r.InternalPort
	}
	if r.OnConflict == ConflictKeep {
		e, err := d.get(ctx, r.Protocol, eport)
		if err != nil {
			return fail(err)
		}
		if own := internalAddr(r, g); e.Internal.Addr() != own {
			return fail(&ConflictError{Protocol: r.Protocol, ExternalPort: eport, Holder: e})
		}
	}
	if err := d.remove(ctx, r.Protocol, eport); err != nil {
		return fail(err)
	}
	return nil
}

// List returns the gateway's table of mappings, over UPnP from the best IGD
// of the first gateway that has one. A gateway that speaks only NAT-PMP
// cannot list its table: ErrUnsupported. IPv6 pinholes are not in it:
// WANIPv6FirewallControl:1 has no action that lists them (a pinhole is
// found by the UniqueID AddPinhole returned), and PCP lists nothing.
func (c *Client) List(ctx context.Context) ([]Entry, error) {
	switch c.cfg.Method {
	case NATPMP:
		return nil, fmt.Errorf("%w: NAT-PMP cannot list a gateway's mappings", ErrUnsupported)
	case PCP:
		return nil, fmt.Errorf("%w: PCP cannot list a gateway's mappings or pinholes", ErrUnsupported)
	}
	gws, err := c.gateways(ctx, false)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, g := range gws {
		if g.route.gw.Is6() {
			continue
		}
		devs, err := c.igdList(ctx, g, c.cfg.CheckInterval)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		entries, err := devs[0].list(ctx)
		if err != nil {
			return entries, &GatewayError{Op: "list", Method: UPnP, Gateway: g.route.gw, Err: err}
		}
		return entries, nil
	}
	for _, g := range gws {
		if g.route.gw.Is6() {
			continue
		}
		if info, err := c.natpmpProbe(ctx, g, c.cfg.CheckInterval); err == nil && !info.PCPOnly {
			return nil, fmt.Errorf("%w: the gateway %s speaks NAT-PMP only, which cannot list mappings", ErrUnsupported, g.route.gw)
		}
		if _, err := c.pcpProbe(ctx, g, c.cfg.CheckInterval); err == nil {
			return nil, fmt.Errorf("%w: the gateway %s speaks PCP, which cannot list mappings or pinholes", ErrUnsupported, g.route.gw)
		}
	}
	return nil, fmt.Errorf("%w with UPnP: %w", ErrNoGateway, errors.Join(errs...))
}

// Probe finds every gateway and asks each, afresh, every protocol
// Config.Method allows: NAT-PMP's external address and epoch, and for each
// IGD found its external address and connection status. Gateways that
// answer nothing are listed too. It fails only when there is no gateway at
// all.
func (c *Client) Probe(ctx context.Context) ([]Gateway, error) {
	gws, err := c.gateways(ctx, true)
	if err != nil {
		return nil, err
	}
	out := make([]Gateway, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		out[i] = Gateway{Interface: g.route.iface, Local: g.route.local, Address: g.route.gw}
		if c.cfg.Method == Auto || c.cfg.Method == PCP {
			wg.Go(func() {
				info, err := c.pcpProbe(ctx, g, 0)
				out[i].PCP = info
				if err != nil {
					c.log.Debug("probe", "gateway", g.route.gw, "method", PCP, "err", err)
				}
			})
		}
		if g.route.gw.Is6() {
			continue // NAT-PMP and UPnP IGD (IPv4) are not asked there
		}
		if c.cfg.Method == Auto || c.cfg.Method == NATPMP {
			wg.Go(func() {
				info, err := c.natpmpProbe(ctx, g, 0)
				if info != nil {
					out[i].NATPMP = info
				}
				if err != nil {
					c.log.Debug("probe", "gateway", g.route.gw, "method", NATPMP, "err", err)
				}
			})
		}
		if c.cfg.Method == Auto || c.cfg.Method == UPnP {
			wg.Go(func() {
				devs, err := c.igdList(ctx, g, 0)
				if err != nil {
					c.log.Debug("probe", "gateway", g.route.gw, "method", UPnP, "err", err)
				}
				for _, d := range devs {
					info := d.info()
					if a, err := d.externalAddress(ctx); err == nil {
						info.ExternalAddress = a
					}
					if ok, err := d.connected(ctx); err == nil {
						info.Connected = ok
					}
					out[i].UPnP = append(out[i].UPnP, info)
				}
			})
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		gw := &out[i]
		if gw.NATPMP != nil && gw.NATPMP.ExternalAddress.IsValid() {
			gw.ExternalAddress = gw.NATPMP.ExternalAddress
		}
		for _, u := range gw.UPnP {
			if !gw.ExternalAddress.IsValid() && u.ExternalAddress.IsValid() {
				gw.ExternalAddress = u.ExternalAddress
			}
		}
		gw.AddressClass = Classify(gw.ExternalAddress)
		gw.DoubleNAT = isDoubleNAT(gw.AddressClass)
	}
	return out, nil
}

// natpmpDelete is used by Mapping.Close: deleting the NAT-PMP mapping of a
// kept mapping.
func (c *Client) natpmpDelete(ctx context.Context, g *gateway, r Request) error {
	a, err := g.pmp.mapPort(ctx, r.Protocol, r.InternalPort, 0, 0, deleteTries)
	if err != nil {
		return &GatewayError{Op: "unmap", Method: NATPMP, Gateway: g.route.gw, Err: err}
	}
	c.natpmpEpoch(g, a, nil)
	if err := a.resp.Err(); err != nil {
		return &GatewayError{Op: "unmap", Method: NATPMP, Gateway: g.route.gw, Err: err}
	}
	return nil
}
