package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/portlease/portlease/upnp"
	"github.com/portlease/portlease/upnp/igdclient"
)

// igdDevice is the part of a UPnP IGD connection service the client drives.
// igdclient provides it (igdAdapter); tests fake it.
type igdDevice interface {
	// info returns the static description: Location, Service,
	// FriendlyName, Version.
	info() UPnPInfo
	// udn is the device's unique name, bootID its BOOTID.UPNP.ORG when
	// found by search (-1 unknown).
	udn() string
	bootID() int
	externalAddress(ctx context.Context) (netip.Addr, error)
	connected(ctx context.Context) (bool, error)
	// add asks for a mapping. External port 0 lets the router pick. A
	// port held by another mapping fails with a *ConflictError.
	add(ctx context.Context, m upnpMapping) (upnpGrant, error)
	// remove deletes a mapping; a missing one fails with ErrNotFound.
	remove(ctx context.Context, proto Protocol, eport uint16) error
	// get reads a mapping; a missing one fails with ErrNotFound.
	get(ctx context.Context, proto Protocol, eport uint16) (Entry, error)
	list(ctx context.Context) ([]Entry, error)
	// firewall reports whether the IGD has a WANIPv6FirewallControl:1
	// service: the pinhole methods below need it.
	firewall() bool
	// addPinhole opens an IPv6 pinhole and returns its UniqueID.
	addPinhole(ctx context.Context, p upnpPinhole) (uint16, error)
	// updatePinhole renews pinhole id for lease seconds; deletePinhole
	// closes it. A pinhole the IGD does not hold fails with ErrNotFound.
	updatePinhole(ctx context.Context, id uint16, lease uint32) error
	deletePinhole(ctx context.Context, id uint16) error
}

// upnpMapping is a mapping to ask an IGD for.
type upnpMapping struct {
	proto        Protocol
	externalPort uint16
	internal     netip.AddrPort
	description  string
	lease        uint32
}

// upnpGrant is what an IGD granted.
type upnpGrant struct {
	externalPort uint16
	// lease is the lease granted in seconds, 0 when permanent.
	lease uint32
}

// igdFinder finds IGDs and their announcements. igdclient provides it
// (igdFinderAdapter); tests fake it.
type igdFinder interface {
	// discover searches for IGDs through one gateway's link.
	discover(ctx context.Context, gw route, wait time.Duration) ([]igdDevice, error)
	// dial fetches the description at location.
	dial(ctx context.Context, location string, local netip.Addr) (igdDevice, error)
	// watch calls fn for each SSDP NOTIFY about an IGD heard on the
	// gateway's link, until ctx is done. It opens its socket on the
	// calling goroutine.
	watch(ctx context.Context, gw route, fn func(from netip.AddrPort, n notice)) error
}

// notice is an SSDP NOTIFY about an IGD.
type notice struct {
	// nts is "ssdp:alive", "ssdp:byebye" or "ssdp:update".
	nts      string
	usn      string
	location string
	// bootID is BOOTID.UPNP.ORG, -1 when absent.
	bootID int
}

// igdFinderAdapter is igdFinder over igdclient.
type igdFinderAdapter struct {
	c *igdclient.Client
	// notifyAddr, when valid, is a unicast address to hear NOTIFY on
	// instead of the SSDP group (tests).
	notifyAddr netip.AddrPort
}

func (f *igdFinderAdapter) discover(ctx context.Context, gw route, wait time.Duration) ([]igdDevice, error) {
	t := igdclient.Target{
		Interface: gw.iface,
		Local:     gw.local,
		Multicast: true,
		Unicast:   []netip.AddrPort{netip.AddrPortFrom(gw.gw, upnp.SSDPPort)},
	}
	igds, err := f.c.Discover(ctx, t, wait)
	if err != nil {
		return nil, err
	}
	out := make([]igdDevice, len(igds))
	for i, g := range igds {
		out[i] = &igdAdapter{g: g}
	}
	return out, nil
}

func (f *igdFinderAdapter) dial(ctx context.Context, location string, local netip.Addr) (igdDevice, error) {
	g, err := f.c.Dial(ctx, location, local)
	if err != nil {
		return nil, err
	}
	return &igdAdapter{g: g}, nil
}

func (f *igdFinderAdapter) watch(ctx context.Context, gw route, fn func(netip.AddrPort, notice)) error {
	cb := func(from netip.AddrPort, n upnp.Notify) {
		fn(from, notice{nts: n.NTS, usn: n.USN, location: n.Location, bootID: n.BootID})
	}
	if f.notifyAddr.IsValid() {
		pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(f.notifyAddr))
		if err != nil {
			return fmt.Errorf("client: notify socket: %w", err)
		}
		defer pc.Close()
		return f.c.ServeNotify(ctx, pc, cb)
	}
	return f.c.WatchNotify(ctx, igdclient.Target{Interface: gw.iface, Local: gw.local}, cb)
}

// igdAdapter is igdDevice over an *igdclient.IGD.
type igdAdapter struct{ g *igdclient.IGD }

func (a *igdAdapter) info() UPnPInfo {
	loc := ""
	if a.g.Location != nil {
		loc = a.g.Location.String()
	}
	return UPnPInfo{
		Location:     loc,
		Service:      a.g.Service.ServiceType,
		FriendlyName: a.g.FriendlyName,
		Version:      a.g.Version(),
	}
}

func (a *igdAdapter) udn() string { return a.g.UDN }
func (a *igdAdapter) bootID() int { return a.g.BootID }

func (a *igdAdapter) externalAddress(ctx context.Context) (netip.Addr, error) {
	return a.g.ExternalIPAddress(ctx)
}

func (a *igdAdapter) connected(ctx context.Context) (bool, error) { return a.g.Connected(ctx) }

func (a *igdAdapter) add(ctx context.Context, m upnpMapping) (upnpGrant, error) {
	g, err := a.g.AddPortMapping(ctx, upnp.PortMapping{
		ExternalPort:   m.externalPort,
		Protocol:       string(m.proto),
		InternalPort:   m.internal.Port(),
		InternalClient: m.internal.Addr().String(),
		Enabled:        true,
		Description:    m.description,
		LeaseDuration:  m.lease,
	})
	if err != nil {
		return upnpGrant{}, convertIGDError(err, m.proto, m.externalPort)
	}
	lease := g.Mapping.LeaseDuration
	if g.Permanent {
		lease = 0
	}
	return upnpGrant{externalPort: g.Mapping.ExternalPort, lease: lease}, nil
}

func (a *igdAdapter) remove(ctx context.Context, proto Protocol, eport uint16) error {
	return convertIGDError(a.g.DeletePortMapping(ctx, string(proto), eport), proto, eport)
}

func (a *igdAdapter) get(ctx context.Context, proto Protocol, eport uint16) (Entry, error) {
	m, err := a.g.GetSpecificPortMappingEntry(ctx, string(proto), eport)
	if err != nil {
		return Entry{}, convertIGDError(err, proto, eport)
	}
	if m.ExternalPort == 0 {
		m.ExternalPort = eport
	}
	if m.Protocol == "" {
		m.Protocol = string(proto)
	}
	return entryOf(m), nil
}

func (a *igdAdapter) list(ctx context.Context) ([]Entry, error) {
	ms, err := a.g.PortMappings(ctx)
	out := make([]Entry, len(ms))
	for i, m := range ms {
		out[i] = entryOf(m)
	}
	return out, err
}

func (a *igdAdapter) firewall() bool { return a.g.Firewall != nil }

func (a *igdAdapter) addPinhole(ctx context.Context, p upnpPinhole) (uint16, error) {
	proto := upnp.PinholeTCP
	if p.proto == UDP {
		proto = upnp.PinholeUDP
	}
	id, err := a.g.AddPinhole(ctx, upnp.Pinhole{
		RemoteHost:     p.remote,
		RemotePort:     p.remotePort,
		InternalClient: p.internal.Addr(),
		InternalPort:   p.internal.Port(),
		Protocol:       proto,
		LeaseTime:      p.lease,
	})
	return id, convertPinholeError(err, 0)
}

func (a *igdAdapter) updatePinhole(ctx context.Context, id uint16, lease uint32) error {
	return convertPinholeError(a.g.UpdatePinhole(ctx, id, lease), id)
}

func (a *igdAdapter) deletePinhole(ctx context.Context, id uint16) error {
	return convertPinholeError(a.g.DeletePinhole(ctx, id), id)
}

// convertPinholeError turns igdclient's pinhole sentinels into this
// package's, keeping the original in the chain.
func convertPinholeError(err error, id uint16) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, igdclient.ErrNotFound):
		return fmt.Errorf("%w: pinhole %d (%w)", ErrNotFound, id, err)
	case errors.Is(err, igdclient.ErrNoFirewallControl):
		return fmt.Errorf("%w (%w)", ErrUnsupported, err)
	}
	return err
}

// entryOf converts a UPnP mapping entry.
func entryOf(m upnp.PortMapping) Entry {
	addr, _ := netip.ParseAddr(strings.TrimSpace(m.InternalClient))
	var internal netip.AddrPort
	if addr.IsValid() {
		internal = netip.AddrPortFrom(addr.Unmap(), m.InternalPort)
	}
	return Entry{
		Protocol:     Protocol(strings.ToUpper(m.Protocol)),
		ExternalPort: m.ExternalPort,
		Internal:     internal,
		Description:  m.Description,
		Lifetime:     time.Duration(m.LeaseDuration) * time.Second,
		RemoteHost:   m.RemoteHost,
		Enabled:      m.Enabled,
	}
}

// convertIGDError turns igdclient's sentinels into this package's, keeping
// the original in the chain (so *upnp.Fault still matches errors.As).
func convertIGDError(err error, proto Protocol, eport uint16) error {
	if err == nil {
		return nil
	}
	var ce *igdclient.ConflictError
	if errors.As(err, &ce) {
		out := &ConflictError{Protocol: proto, ExternalPort: eport}
		if ce.HolderKnown {
			out.Holder = entryOf(ce.Holder)
		}
		return fmt.Errorf("%w (%w)", out, err)
	}
	if errors.Is(err, igdclient.ErrConflict) {
		return fmt.Errorf("%w (%w)", &ConflictError{Protocol: proto, ExternalPort: eport}, err)
	}
	if errors.Is(err, igdclient.ErrNotFound) {
		return fmt.Errorf("%w: %s %d (%w)", ErrNotFound, proto, eport, err)
	}
	return err
}
