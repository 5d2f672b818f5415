package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/gateway/ifaddr"
	"github.com/portlease/portlease/gateway/localport"
	"github.com/portlease/portlease/gateway/natpmpsrv"
	"github.com/portlease/portlease/gateway/nftfw"
	"github.com/portlease/portlease/natpmp"
)

// gatewayDaemon wires the configuration, the lease core, the nftables
// backend and the NAT-PMP front-end together, and handles signals.
type gatewayDaemon struct {
	file string
	log  *slog.Logger
}

// lanAddress is one address the daemon serves clients on.
type lanAddress struct {
	addr   netip.Prefix // the address with its on-link prefix
	ifname string
	index  int
}

// resolveListeners turns the "listen on" directives into LAN addresses,
// naming the configuration line of any that cannot be served.
func (d *gatewayDaemon) resolveListeners(cfg *config.Config) ([]lanAddress, error) {
	var out []lanAddress
	var errs []error
	add := func(ifc ifaddr.Interface, want func(netip.Addr) bool) int {
		n := 0
		for _, p := range ifc.Prefixes {
			if !p.Addr().Is4() || !want(p.Addr()) {
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
				errs = append(errs, fmt.Errorf("%s: the interface has no IPv4 address (NAT-PMP is IPv4 only)", where))
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
		case !l.Addr.Is4():
			d.log.Warn("ignoring an IPv6 listen address: NAT-PMP is IPv4 only", "line", l.Line, "addr", l.Addr)
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
		errs = append(errs, fmt.Errorf("%s: no IPv4 address to listen on", d.file))
	}
	return out, errors.Join(errs...)
}

// policyFor builds the lease policy: the configured rules, or, without any,
// "allow 1024-65535 SUBNET 1024-65535" for each LAN subnet served.
func policyFor(cfg *config.Config, lans []lanAddress) gateway.Policy {
	p := gateway.Policy{Ports: cfg.PortRange, MaxLifetime: cfg.MaxLifetime, Rules: cfg.Rules}
	if len(p.Rules) == 0 {
		for _, la := range lans {
			r := gateway.Rule{Allow: true, ExternalPorts: gateway.DefaultPorts, Internal: la.addr.Masked(), InternalPorts: gateway.DefaultPorts}
			if !slices.Contains(p.Rules, r) {
				p.Rules = append(p.Rules, r)
			}
		}
	}
	return p
}

// reserved returns the gateway.Config.Reserved of the daemon: the ports the
// gateway itself uses, which are never mapped, are its own NAT-PMP ports and
// whatever a local socket holds.
func reserved() func(p gateway.Protocol, port uint16) bool {
	probe := localport.NewProber()
	return func(p gateway.Protocol, port uint16) bool {
		if p == gateway.UDP && (port == natpmp.ServerPort || port == natpmp.ClientPort) {
			return true
		}
		return probe.InUse(uint8(p), port)
	}
}

// instanceLock holds an abstract unix socket named after the daemon's
// nftables table. Abstract sockets belong to the network namespace and go
// away with the process, so a second portleased in the same namespace, which
// would take over the first one's table, is refused at once and a crashed
// one never blocks the next start.
func instanceLock() (net.Listener, error) {
	ln, err := net.Listen("unix", "@portleased/"+nftfw.DefaultTable)
	if err != nil {
		return nil, errors.New("another portleased is already running in this network namespace")
	}
	return ln, nil
}

func (d *gatewayDaemon) run(cfg *config.Config, ready func()) error {
	log := d.log
	lock, err := instanceLock()
	if err != nil {
		return err
	}
	defer lock.Close()
	lans, err := d.resolveListeners(cfg)
	if err != nil {
		return err
	}
	var lanLinks []string
	for _, la := range lans {
		if !slices.Contains(lanLinks, la.ifname) {
			lanLinks = append(lanLinks, la.ifname)
		}
	}
	if _, err := ifaddr.Lookup(cfg.ExternalInterface); err != nil {
		log.Warn("external interface not present yet; waiting for it", "interface", cfg.ExternalInterface)
	}

	fw, err := nftfw.New(nftfw.Config{ExternalInterface: cfg.ExternalInterface, InternalInterfaces: lanLinks, Logger: log})
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer func() {
		if err := fw.Close(); err != nil {
			log.Error("removing the nftables table", "err", err)
		}
	}()
	policy := policyFor(cfg, lans)
	table := gateway.New(gateway.Config{Policy: policy, Firewall: fw, Reserved: reserved(), Logger: log})
	srv := &natpmpsrv.Server{Table: table, Logger: log}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 2*len(lans)+2)
	for _, la := range lans {
		conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(la.addr.Addr(), natpmp.ServerPort)))
		if err != nil {
			return fmt.Errorf("listen on %s: %w", la.addr.Addr(), err)
		}
		defer conn.Close()
		go func() { errc <- srv.Serve(conn, la.index) }()
	}
	go func() { errc <- table.Run(ctx) }()
	var upnpSvc *upnpService
	if cfg.UPnP.Enabled {
		if upnpSvc, err = startUPnP(cfg, lans, table, log, errc); err != nil {
			return err
		}
	}
	go func() {
		errc <- ifaddr.Watch(ctx, cfg.ExternalInterface, log, func(a netip.Addr) {
			if !table.SetExternalAddress(a) {
				return
			}
			if err := fw.SetExternalAddress(ctx, a); err != nil {
				log.Error("hairpin address not updated", "addr", a, "err", err)
			}
			if !a.IsValid() {
				log.Warn("external interface has no IPv4 address", "interface", cfg.ExternalInterface)
				if upnpSvc != nil {
					upnpSvc.http.ExternalAddressChanged()
				}
				return
			}
			log.Info("external address", "interface", cfg.ExternalInterface, "addr", a)
			srv.Announce()
			if upnpSvc != nil {
				upnpSvc.http.ExternalAddressChanged()
			}
		})
	}()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	log.Info("serving NAT-PMP", "listen", listenAttr(lans), "external", cfg.ExternalInterface,
		"ports", policy.Ports.String(), "max_lifetime", policy.MaxLifetime, "rules", len(policy.Rules))
	ready()

	var runErr error
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				cfg = d.reload(ctx, cfg, lans, table)
				continue
			}
			log.Info("stopping", "signal", sig.String(), "leases", table.Len())
			break loop
		case err := <-errc:
			if err != nil && !errors.Is(err, natpmpsrv.ErrServerClosed) {
				runErr = err
				break loop
			}
		}
	}
	table.Close()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in progress at exit", "err", err)
	}
	if upnpSvc != nil {
		upnpSvc.stop(sctx)
	}
	return runErr
}

// reload reads the configuration file again (SIGHUP). A file with any
// error changes nothing.
func (d *gatewayDaemon) reload(ctx context.Context, running *config.Config, lans []lanAddress, table *gateway.Table) *config.Config {
	log := d.log
	cfg, err := config.ParseFile(d.file)
	if err != nil {
		var list config.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				log.Error("configuration refused; the running one stays", "error", e.Error())
			}
		} else {
			log.Error("configuration refused; the running one stays", "error", err)
		}
		return running
	}
	if cfg.ExternalInterface != running.ExternalInterface || !sameListen(cfg.Listen, running.Listen) {
		log.Warn("changes to interface and listen on take effect at the next start")
		cfg.ExternalInterface, cfg.Listen = running.ExternalInterface, running.Listen
	}
	policy := policyFor(cfg, lans)
	removed := table.Reconfigure(ctx, policy)
	log.Info("configuration reloaded", "file", d.file, "rules", len(policy.Rules), "ports", policy.Ports.String(),
		"max_lifetime", policy.MaxLifetime, "leases_removed", len(removed), "leases", table.Len())
	return cfg
}

// sameListen reports whether two lists of "listen on" directives name the
// same addresses and interfaces, wherever in the file they stand.
func sameListen(a, b []config.Listen) bool {
	return slices.EqualFunc(a, b, func(x, y config.Listen) bool { return x.String() == y.String() })
}

func listenAttr(lans []lanAddress) []string {
	out := make([]string, len(lans))
	for i, la := range lans {
		out[i] = la.ifname + "/" + la.addr.Addr().String()
	}
	return out
}
