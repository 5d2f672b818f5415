package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/gateway/ifaddr"
	"github.com/portlease/portlease/gateway/natpmpsrv"
	"github.com/portlease/portlease/natpmp"
)

// lanAddress is one address the daemon serves clients on. The link's index
// is part of it: a LAN link deleted and created again under the same name
// is a new link, whose sockets must be opened anew.
type lanAddress struct {
	addr   netip.Prefix // the address with its on-link prefix
	ifname string
	index  int
}

// resolveListeners turns the "listen on" directives into LAN addresses,
// naming the configuration line of any that cannot be served. An interface
// (or *) stands for its IPv4 addresses, served by NAT-PMP and PCP, and its
// global and unique-local IPv6 addresses, served by PCP; link-local IPv6
// addresses are not served.
func (d *gatewayDaemon) resolveListeners(cfg *config.Config) ([]lanAddress, error) {
	var out []lanAddress
	var errs []error
	add := func(ifc ifaddr.Interface, want func(netip.Addr) bool) int {
		n := 0
		for _, p := range ifc.Prefixes {
			if !servedAddress(p.Addr()) || !want(p.Addr()) {
				continue
			}
			la := lanAddress{addr: p, ifname: ifc.Name, index: ifc.Index}
			if !slices.Contains(out, la) {
				out = append(out, la)
				n++
			}
		}
		return n
	}
	for _, l := range cfg.Listen {
		where := fmt.Sprintf("%s:%d: listen on %s", d.file, l.Line, l)
		switch {
		case l.Interface != "":
			ifc, err := ifaddr.Lookup(l.Interface)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			if add(ifc, func(netip.Addr) bool { return true }) == 0 {
				errs = append(errs, fmt.Errorf("%s: the interface has no IPv4 or global IPv6 address", where))
			}
		case l.Addr.IsUnspecified():
			links, err := net.Interfaces()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			for _, link := range links {
				if link.Name == cfg.ExternalInterface || link.Flags&net.FlagLoopback != 0 {
					continue
				}
				if ifc, err := ifaddr.Lookup(link.Name); err == nil {
					add(ifc, func(netip.Addr) bool { return true })
				}
			}
		case !servedAddress(l.Addr):
			errs = append(errs, fmt.Errorf("%s: a link-local or special address is not served; name a global or unique-local one", where))
		default:
			ifc, err := ifaddr.ByAddress(l.Addr)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: no interface of this host has that address", where))
				continue
			}
			add(ifc, func(a netip.Addr) bool { return a == l.Addr })
		}
	}
	for _, la := range out {
		if la.ifname == cfg.ExternalInterface {
			errs = append(errs, fmt.Errorf("%s: listen on %s: that is the external interface %s; the gateway never serves the WAN side",
				d.file, la.addr.Addr(), cfg.ExternalInterface))
		}
	}
	if len(errs) == 0 && len(out) == 0 {
		errs = append(errs, fmt.Errorf("%s: no address to listen on", d.file))
	}
	return out, errors.Join(errs...)
}

// servedAddress reports whether a LAN address gets a socket: every unicast
// IPv4 address, and the global and unique-local IPv6 ones (PCP only, RFC
// 6887 §8.1: clients ask the router at the address they route through).
func servedAddress(a netip.Addr) bool {
	if a.Is4() {
		return true
	}
	return a.IsGlobalUnicast() && !a.Is4In6()
}

// ipv4Only returns the IPv4 addresses of lans: what NAT-PMP's announcements
// and the UPnP service are for.
func ipv4Only(lans []lanAddress) []lanAddress {
	return slices.DeleteFunc(slices.Clone(lans), func(la lanAddress) bool { return !la.addr.Addr().Is4() })
}

// servable returns the addresses of lans that are not on the external
// interface: what resolveListeners found, less what it refused.
func servable(lans []lanAddress, external string) []lanAddress {
	return slices.DeleteFunc(slices.Clone(lans), func(la lanAddress) bool { return la.ifname == external })
}

// linksOf returns the names of the links of lans, each once.
func linksOf(lans []lanAddress) []string {
	var links []string
	for _, la := range lans {
		if !slices.Contains(links, la.ifname) {
			links = append(links, la.ifname)
		}
	}
	return links
}

func listenAttr(lans []lanAddress) []string {
	out := make([]string, len(lans))
	for i, la := range lans {
		out[i] = la.ifname + "/" + la.addr.Addr().String()
	}
	return out
}

// natpmpListeners are the sockets of port 5351, one per LAN address, each
// served by the one natpmpsrv.Server: NAT-PMP and PCP on IPv4 addresses, PCP
// on IPv6 ones. Its methods are called
// from the daemon's main loop only.
type natpmpListeners struct {
	srv  *natpmpsrv.Server
	log  *slog.Logger
	errc chan<- error
	open map[lanAddress]*natpmpListener
}

// natpmpListener is one socket; closing tells its Serve's end from a
// failure.
type natpmpListener struct {
	conn    *net.UDPConn
	closing atomic.Bool
}

func newNATPMPListeners(srv *natpmpsrv.Server, log *slog.Logger, errc chan<- error) *natpmpListeners {
	return &natpmpListeners{srv: srv, log: log, errc: errc, open: make(map[lanAddress]*natpmpListener)}
}

// add opens and serves the addresses of lans not served yet, and returns
// them. On an error it closes what it opened: nothing changed.
func (n *natpmpListeners) add(lans []lanAddress) ([]lanAddress, error) {
	var added []lanAddress
	for _, la := range lans {
		if n.open[la] != nil {
			continue
		}
		network := "udp4"
		if !la.addr.Addr().Is4() {
			network = "udp6"
		}
		conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(la.addr.Addr(), natpmp.ServerPort)))
		if err != nil {
			n.remove(added)
			return nil, fmt.Errorf("listen on %s: %w", la.addr.Addr(), err)
		}
		l := &natpmpListener{conn: conn}
		n.open[la] = l
		added = append(added, la)
		go func() {
			err := n.srv.Serve(conn, la.index, la.addr)
			if l.closing.Load() || errors.Is(err, natpmpsrv.ErrServerClosed) {
				return
			}
			n.errc <- fmt.Errorf("NAT-PMP and PCP on %s: %w", la.addr.Addr(), err)
		}()
	}
	return added, nil
}

// remove closes the sockets of las.
func (n *natpmpListeners) remove(las []lanAddress) {
	for _, la := range las {
		if l := n.open[la]; l != nil {
			l.closing.Store(true)
			_ = l.conn.Close()
			delete(n.open, la)
		}
	}
}

// retain closes every socket whose address is not in lans.
func (n *natpmpListeners) retain(lans []lanAddress) {
	var gone []lanAddress
	for la := range n.open {
		if !slices.Contains(lans, la) {
			gone = append(gone, la)
		}
	}
	n.remove(gone)
}

// closeAll closes every socket, at exit.
func (n *natpmpListeners) closeAll() { n.retain(nil) }

// lanSide is what serves the LAN: the NAT-PMP sockets and the UPnP service,
// following the configuration (SIGHUP) and the LAN links (netlink events).
// It is used from the daemon's main loop only.
type lanSide struct {
	cfg  *config.Config // the configuration in force
	lans []lanAddress   // the addresses served
	// fwLinks are the LAN links the nftables ruleset names (hairpinning):
	// those of lans at start, and at each reload.
	fwLinks []string
	natpmp  *natpmpListeners
	// natpmpRate is the request rate per host of NAT-PMP and PCP.
	natpmpRate *hostLimiter
	upnp       *upnpRunner
}

// serve starts serving lans at start: an error stops the daemon.
func (s *lanSide) serve(lans []lanAddress) error {
	if _, err := s.natpmp.add(lans); err != nil {
		return err
	}
	if err := s.upnp.apply(s.cfg, lans); err != nil {
		return err
	}
	s.lans = lans
	return nil
}

// follow serves the LAN addresses the running configuration names now,
// after address or link events: the sockets of a new address (a LAN link
// created again, an address added to a "listen on IF" link) are opened,
// those of an address gone are closed, and the UPnP service is restarted
// on the new set. A directive that names nothing for now is logged and
// served again when its address comes back; nothing here stops the daemon.
func (d *gatewayDaemon) follow(ctx context.Context, s *lanSide, w *wanSide) {
	lans, err := d.resolveListeners(s.cfg)
	lans = servable(lans, s.cfg.ExternalInterface)
	if slices.Equal(lans, s.lans) {
		// The UPnP service's IPv6 addresses may have changed (it takes
		// the IPv4 ones of lans and finds its IPv6 ones itself).
		if err := s.upnp.apply(s.cfg, lans); err != nil {
			d.log.Error("UPnP IGD not serving", "err", err)
		}
		return
	}
	if err != nil {
		for _, e := range unjoin(err) {
			d.log.Warn("LAN address not served for now", "err", e.Error())
		}
	}
	added, err := s.natpmp.add(lans)
	if err != nil {
		// Another process holds the port: serve what can be served.
		d.log.Error("NAT-PMP/PCP listener not opened", "err", err)
		for _, la := range lans {
			if _, err := s.natpmp.add([]lanAddress{la}); err == nil {
				added = append(added, la)
			}
		}
	}
	s.natpmp.retain(lans)
	if err := s.upnp.apply(s.cfg, lans); err != nil {
		d.log.Error("UPnP IGD not serving", "err", err)
	}
	// A link that appeared (listen on *) is named in the hairpin rules
	// too; one that went stays named until the next reload.
	links := slices.Clone(s.fwLinks)
	for _, l := range linksOf(lans) {
		if !slices.Contains(links, l) {
			links = append(links, l)
		}
	}
	if len(links) != len(s.fwLinks) {
		if err := w.fw.SetInterfaces(ctx, s.cfg.ExternalInterface, links); err != nil {
			d.log.Error("hairpinning not extended to the new LAN links", "links", links, "err", err)
		} else {
			s.fwLinks = links
		}
	}
	// Without rules of the file's own, the default ones grow to allow a
	// new LAN subnet; they do not shrink here, so that a link that comes
	// and goes keeps its hosts' leases (a reload applies removals).
	if len(s.cfg.Rules) == 0 {
		p := w.table.Policy()
		grown := false
		for _, r := range policyFor(s.cfg, lans).Rules {
			if !slices.Contains(p.Rules, r) {
				p.Rules = append(p.Rules, r)
				grown = true
			}
		}
		if grown {
			w.table.Reconfigure(ctx, p)
		}
	}
	s.lans = lans
	d.log.Info("LAN addresses changed", "listen", listenAttr(lans), "opened", listenAttr(added))
}

// unjoin returns the errors joined in err, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
