package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/gateway/ifaddr"
	"github.com/portlease/portlease/gateway/localport"
	"github.com/portlease/portlease/gateway/metrics"
	"github.com/portlease/portlease/gateway/natpmpsrv"
	"github.com/portlease/portlease/gateway/nftfw"
	"github.com/portlease/portlease/gateway/pcpsrv"
	"github.com/portlease/portlease/internal/sdnotify"
	"github.com/portlease/portlease/natpmp"
)

// gatewayDaemon wires the configuration, the lease core, the firewall
// backend and the NAT-PMP front-end together, and handles signals.
type gatewayDaemon struct {
	file string
	log  *slog.Logger
	// notify tells the service manager the daemon's state; nil when not
	// started by one.
	notify *sdnotify.Notifier
	// control is the operator's control socket, made before the drop;
	// nil: none.
	control *controlSocket
}

// policyFor builds the lease policy: the configured rules, or, without any,
// the default rules of each LAN link (see policyWith); and the hosts that
// may map for others.
func policyFor(cfg *config.Config, lans []lanAddress) gateway.Policy {
	return policyWith(cfg, lans, lanIPv6Prefixes(lans))
}

// policyWith is policyFor with the global IPv6 prefixes of each LAN link
// given (by link name). Without rules of the file's own, each LAN link gets
// "allow 1024-65535 PREFIX 1024-65535" for each subnet served on it and each
// of its IPv6 prefixes (for pinholes), narrowed to requests from the hosts
// of that link (gateway.Rule.Requesters: one rule per prefix of the link, so
// that a host asking over IPv4 for its own IPv6 pinhole is served): a host
// on one LAN cannot map for another LAN's subnet, whatever secure mode or
// third-party directive allows.
func policyWith(cfg *config.Config, lans []lanAddress, v6 map[string][]netip.Prefix) gateway.Policy {
	p := gateway.Policy{Ports: cfg.PortRange, MaxLifetime: cfg.MaxLifetime, PCPMinLifetime: cfg.PCP.MinLifetime, Rules: cfg.Rules, ThirdParty: cfg.ThirdParty,
		MaxPerHost: cfg.Limits.MaxPerHost, MaxLeases: cfg.Limits.MaxMappings}
	if len(p.Rules) > 0 {
		return p
	}
	for _, link := range linksOf(lans) {
		var prefixes []netip.Prefix
		for _, la := range lans {
			if la.ifname == link && !slices.Contains(prefixes, la.addr.Masked()) {
				prefixes = append(prefixes, la.addr.Masked())
			}
		}
		for _, pfx := range v6[link] {
			if !slices.Contains(prefixes, pfx.Masked()) {
				prefixes = append(prefixes, pfx.Masked())
			}
		}
		for _, internal := range prefixes {
			for _, from := range prefixes {
				r := gateway.Rule{Allow: true, ExternalPorts: gateway.DefaultPorts, Internal: internal, InternalPorts: gateway.DefaultPorts, Requesters: from}
				if !slices.Contains(p.Rules, r) {
					p.Rules = append(p.Rules, r)
				}
			}
		}
	}
	return p
}

// lanIPv6Prefixes returns the global IPv6 prefixes of each link of lans (no
// link-local ones: a pinhole needs a routed address). A link that cannot be
// read has none.
func lanIPv6Prefixes(lans []lanAddress) map[string][]netip.Prefix {
	out := make(map[string][]netip.Prefix)
	for _, link := range linksOf(lans) {
		ifc, err := ifaddr.Lookup(link)
		if err != nil {
			continue
		}
		for _, p := range ifc.Prefixes {
			if a := p.Addr(); a.Is6() && !a.Is4In6() && a.IsGlobalUnicast() && !slices.Contains(out[link], p.Masked()) {
				out[link] = append(out[link], p.Masked())
			}
		}
	}
	return out
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
// nftables table, whichever backend runs. Abstract sockets belong to the network namespace and go
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

func (d *gatewayDaemon) run(cfg *config.Config, firewall firewallChoice, locks xtablesLocks, ready func()) error {
	log := d.log
	started := time.Now()
	lock, err := instanceLock()
	if err != nil {
		return err
	}
	defer lock.Close()
	lans, err := d.resolveListeners(cfg)
	if err != nil {
		return err
	}
	lanLinks := linksOf(lans)
	if _, err := ifaddr.Lookup(cfg.ExternalInterface); err != nil {
		log.Warn("external interface not present yet; waiting for it", "interface", cfg.ExternalInterface)
	}

	state, err := openState(cfg.StateFile, log)
	if err != nil {
		return err
	}
	defer state.close()
	fw, err := newFirewall(firewall, locks, cfg.ExternalInterface, lanLinks, log)
	if err != nil {
		return err
	}
	defer stopFirewall(fw, firewall.backend, state, log)
	policy := policyFor(cfg, lans)
	table := gateway.New(gateway.Config{Policy: policy, Firewall: fw, Reserved: reserved(), Logger: log,
		Journal: state.journal(), EpochStart: state.epochStart()})
	state.setEpoch(table.EpochStart())
	// What works on the table and the kernel in the background ends
	// before they are let go (the deferred calls run last first).
	var background sync.WaitGroup
	defer background.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 8)
	state.restore(table)
	watchKernel(ctx, &background, fw, firewall.backend, table, log, errc)
	warnForwardPath(firewall.backend, log)
	// RFC 6887 §13.1: THIRD_PARTY only for the hosts "allow third-party"
	// names; the policy in force at the time of the request decides.
	mayActFor := func(requester, internal netip.Addr) bool { return table.Policy().MayActFor(requester, internal) }
	gm := metrics.NewGateway(table, started, nil)
	stopMetrics, err := serveMetrics(d.file, cfg, gm.Set(), log)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopMetrics(ctx)
	}()
	natpmpRate := newHostLimiter("natpmp", cfg.RequestRate, log)
	natpmpRate.refused = &gm.RateRefused
	upnpRate := newHostLimiter("upnp", cfg.RequestRate, log)
	upnpRate.refused = &gm.RateRefused
	srv := &natpmpsrv.Server{Table: table, Logger: log, Limiter: natpmpRate, Latency: gm.NATPMP, PCPLatency: gm.PCP,
		PCP: &pcpsrv.Server{Table: table, Logger: log, MayActFor: mayActFor}}
	lan := &lanSide{
		cfg: cfg, fwLinks: lanLinks, natpmpRate: natpmpRate,
		natpmp: newNATPMPListeners(srv, log, errc),
		upnp:   newUPnPRunner(table, upnpRate, log, errc, state.firstBootID(time.Now()), state.setBootID),
	}
	lan.upnp.latency = gm.UPnP
	defer lan.natpmp.closeAll()
	if err := lan.serve(lans); err != nil {
		return err
	}
	// RFC 6887 §14.1.3: an unsolicited ANNOUNCE at start, so that PCP
	// clients of a previous run learn the new epoch; each new external
	// address announces again.
	srv.Announce()
	background.Go(func() { report(ctx, errc, table.Run(ctx)) })
	stopControl := d.control.serve(table, gm.Set(), log)
	defer stopControl()
	wan := &wanSide{table: table, fw: fw, srv: srv, upnp: lan.upnp, log: log, errc: errc}
	wan.watch(ctx, cfg.ExternalInterface)
	defer wan.end()
	linkEvents := make(chan struct{}, 1)
	go func() {
		errc <- ifaddr.WatchLinks(ctx, log, func() {
			select {
			case linkEvents <- struct{}{}:
			default:
			}
		})
	}()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	log.Info("serving NAT-PMP", "listen", listenAttr(lans), "external", cfg.ExternalInterface,
		"ports", policy.Ports.String(), "max_lifetime", policy.MaxLifetime, "max_per_host", policy.MaxPerHost, "max_leases", policy.MaxLeases, "rules", len(policy.Rules))
	ready()

	var runErr error
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				d.reloadTold(func() { d.reload(ctx, lan, wan, table) })
				continue
			}
			log.Info("stopping", "signal", sig.String(), "leases", table.Len())
			break loop
		case <-linkEvents:
			d.follow(ctx, lan, wan)
		case err := <-errc:
			if err != nil && !errors.Is(err, natpmpsrv.ErrServerClosed) {
				runErr = err
				break loop
			}
		}
	}
	d.tell(sdnotify.Stopping)
	table.Close()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in progress at exit", "err", err)
	}
	lan.upnp.stop(sctx)
	return runErr
}

// report hands err to the daemon's main loop, or drops it once ctx is done
// and the loop reads no more.
func report(ctx context.Context, errc chan<- error, err error) {
	select {
	case errc <- err:
	case <-ctx.Done():
	}
}
