package client

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/portlease/portlease/upnp"
)

// upnpPinhole is an IPv6 pinhole to ask an IGD's WANIPv6FirewallControl:1
// service for.
type upnpPinhole struct {
	proto    Protocol
	internal netip.AddrPort
	// remote and remotePort restrict the pinhole to one peer; the zero
	// Addr and 0 are any.
	remote     netip.Addr
	remotePort uint16
	lease      uint32
}

// pinholeRemote returns the RemoteHost and RemotePort that carry r's
// filters over UPnP: none (any peer), or one filter of one address (/128).
// WANIPv6FirewallControl:1 has no prefixes and one peer per pinhole.
func pinholeRemote(r Request) (netip.Addr, uint16, error) {
	switch {
	case len(r.Filters) == 0:
		return netip.Addr{}, 0, nil
	case len(r.Filters) > 1:
		return netip.Addr{}, 0, fmt.Errorf("%w: a UPnP pinhole admits one remote peer, not %d filters (PCP FILTER can)",
			ErrUnsupported, len(r.Filters))
	}
	f := r.Filters[0]
	if !f.Remote.IsSingleIP() {
		return netip.Addr{}, 0, fmt.Errorf("%w: filter %s: a UPnP pinhole admits one remote address (/128), not a prefix (PCP FILTER can)",
			ErrUnsupported, f)
	}
	return f.Remote.Addr(), f.Port, nil
}

// pinholeLease is the lease to ask a UPnP pinhole for, in seconds: within
// A_ARG_TYPE_LeaseTime's range, 1 to 86400.
func pinholeLease(r Request) uint32 {
	return min(lifetimeSeconds(lifetimeOf(r)), upnp.MaxPinholeLeaseTime)
}

// mapPinholeIGD opens (or renews: prevID is the UniqueID held on d) r's
// pinhole on d. A renewal of a pinhole d no longer holds opens it again and
// reports restarted.
func (c *Client) mapPinholeIGD(ctx context.Context, g *gateway, d igdDevice, r Request, prevID uint16) (outcome, error) {
	remote, remotePort, err := pinholeRemote(r)
	if err != nil {
		return outcome{}, err
	}
	if !d.firewall() {
		return outcome{}, fmt.Errorf("%w: the IGD at %s has no WANIPv6FirewallControl service", ErrUnsupported, d.info().Location)
	}
	p := upnpPinhole{
		proto:      r.Protocol,
		internal:   netip.AddrPortFrom(r.InternalAddr, r.InternalPort),
		remote:     remote,
		remotePort: remotePort,
		lease:      pinholeLease(r),
	}
	id, restarted := prevID, false
	if id != 0 {
		err := d.updatePinhole(ctx, id, p.lease)
		switch {
		case errors.Is(err, ErrNotFound):
			c.log.Warn("the gateway lost a pinhole: opening it again", "request", r.String(), "id", id)
			id, restarted = 0, true
		case err != nil:
			return outcome{}, err
		}
	}
	if id == 0 {
		if id, err = d.addPinhole(ctx, p); err != nil {
			return outcome{}, err
		}
	}
	return outcome{
		res: Result{
			Protocol:  r.Protocol,
			Internal:  p.internal,
			External:  p.internal,
			Lifetime:  time.Duration(p.lease) * time.Second,
			Method:    UPnP,
			Pinhole:   true,
			PinholeID: id,
			Gateway:   g.route.gw,
			Interface: g.route.iface,
		},
		bind:      &binding{gw: g, method: UPnP, dev: d, pinholeID: id},
		restarted: restarted,
	}, nil
}

// checkPinholeUPnP verifies that the IGD still holds a kept pinhole: an
// UpdatePinhole with the lease granted (the service has no read action;
// CheckPinholeWorking tells only whether traffic went through). A pinhole
// the IGD lost is opened again. After failures the update is reported as
// the renewal it is. A nil outcome with a nil error means all is well.
func (c *Client) checkPinholeUPnP(ctx context.Context, m *Mapping, st state) (*outcome, error) {
	b := st.bind
	err := b.dev.updatePinhole(ctx, b.pinholeID, pinholeLease(m.req))
	switch {
	case err == nil && st.failures > 0:
		return &outcome{res: st.cur, bind: b}, nil
	case err == nil:
		return nil, nil
	case !errors.Is(err, ErrNotFound):
		return nil, &GatewayError{Op: "check", Method: UPnP, Gateway: b.gw.route.gw, Err: err}
	}
	c.log.Warn("the gateway lost a pinhole: opening it again", "request", m.req.String(), "gateway", b.gw.route.gw)
	o, err := c.mapOn(ctx, binding{gw: b.gw, method: UPnP, dev: b.dev}, m.req, 0, m)
	o.restarted = true
	return &o, err
}

// unmapPinholeUPnP deletes pinhole id on d, or on the best IGD via g when d
// is nil. Without an id it fails: the service finds pinholes by their
// UniqueID only.
func (c *Client) unmapPinholeUPnP(ctx context.Context, g *gateway, d igdDevice, r Request, id uint16) error {
	fail := func(err error) error { return &GatewayError{Op: "unmap", Method: UPnP, Gateway: g.route.gw, Err: err} }
	if id == 0 {
		return fail(fmt.Errorf("%w: UPnP deletes a pinhole by its UniqueID (WANIPv6FirewallControl:1 cannot look up %s): give it",
			ErrInvalidRequest, r))
	}
	if d == nil {
		devs, err := c.igdList(ctx, g, c.cfg.CheckInterval)
		if err != nil {
			return err
		}
		d = firewallDevice(devs)
	}
	if err := d.deletePinhole(ctx, id); err != nil {
		return fail(err)
	}
	return nil
}

// firewallDevice returns the first of devs with a firewall control
// service, else the first.
func firewallDevice(devs []igdDevice) igdDevice {
	for _, d := range devs {
		if d.firewall() {
			return d
		}
	}
	return devs[0]
}
