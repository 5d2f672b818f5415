package igdclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/portlease/portlease/upnp"
)

// ErrNoFirewallControl reports an IGD without a WANIPv6FirewallControl:1
// service: it opens no IPv6 pinholes.
var ErrNoFirewallControl = errors.New("igdclient: the IGD has no WANIPv6FirewallControl service")

// AddPinhole opens the IPv6 pinhole p (WANIPv6FirewallControl:1
// AddPinhole) and returns its UniqueID, which UpdatePinhole and
// DeletePinhole take: the service offers no way to look a pinhole up by its
// 5-tuple, so keep it.
func (g *IGD) AddPinhole(ctx context.Context, p upnp.Pinhole) (uint16, error) {
	r, err := g.callFirewall(ctx, upnp.AddPinhole(p))
	if err != nil {
		return 0, err
	}
	id, err := upnp.UniqueID(r)
	if err != nil {
		return 0, fmt.Errorf("igdclient: AddPinhole: %w", err)
	}
	return id, nil
}

// UpdatePinhole gives pinhole id a new lease of leaseTime seconds (1 to
// upnp.MaxPinholeLeaseTime). A pinhole the IGD does not hold (704
// NoSuchEntry) matches ErrNotFound.
func (g *IGD) UpdatePinhole(ctx context.Context, id uint16, leaseTime uint32) error {
	_, err := g.callFirewall(ctx, upnp.UpdatePinhole(id, leaseTime))
	return pinholeNotFound(err)
}

// DeletePinhole closes pinhole id. A pinhole the IGD does not hold (704
// NoSuchEntry) matches ErrNotFound.
func (g *IGD) DeletePinhole(ctx context.Context, id uint16) error {
	_, err := g.callFirewall(ctx, upnp.DeletePinhole(id))
	return pinholeNotFound(err)
}

// FirewallStatus reports whether the IGD's IPv6 firewall is enabled and
// whether it lets control points open inbound pinholes
// (GetFirewallStatus).
func (g *IGD) FirewallStatus(ctx context.Context) (enabled, inboundAllowed bool, err error) {
	r, err := g.callFirewall(ctx, upnp.GetFirewallStatus())
	if err != nil {
		return false, false, err
	}
	enabled, inboundAllowed, err = upnp.FirewallStatus(r)
	if err != nil {
		return false, false, fmt.Errorf("igdclient: GetFirewallStatus: %w", err)
	}
	return enabled, inboundAllowed, nil
}

// pinholeNotFound turns 704 NoSuchEntry into ErrNotFound.
func pinholeNotFound(err error) error {
	if code, ok := faultCode(err); ok && code == upnp.NoSuchEntry {
		return &notFoundError{err}
	}
	return err
}

// callFirewall performs a on the firewall control service. A control URL
// naming another host than the description's goes to that host rebased,
// as call does.
func (g *IGD) callFirewall(ctx context.Context, a upnp.Action) (upnp.Response, error) {
	if g.Firewall == nil || g.Firewall.ControlURL == nil {
		return upnp.Response{}, fmt.Errorf("%w: %s", ErrNoFirewallControl, a.Name)
	}
	ctl := g.Firewall.ControlURL
	if !g.c.allowForeign && foreignURL(ctl, g.Location) {
		r, err := g.c.soap(ctx, upnp.RebaseToHost(ctl, g.Location), a)
		return r, g.controlRefused(ctl, err)
	}
	r, err := g.c.soap(ctx, ctl, a)
	var te *transportError
	if err == nil || ctx.Err() != nil || !errors.As(err, &te) || !otherHost(ctl, g.Location) {
		return r, err
	}
	alt := upnp.RebaseToHost(ctl, g.Location)
	if r2, err2 := g.c.soap(ctx, alt, a); err2 == nil || !errors.As(err2, &te) {
		return r2, err2
	}
	return r, err
}
