package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/config"
)

// reload reads the configuration file again (SIGHUP) and puts every
// directive in force: the policy, the "upnp" directives (secure mode in
// place, the others by restarting the UPnP service), "listen on" (the new
// sockets open before the old ones close) and "interface" (the nftables
// rules move to the new WAN link without a gap for the mappings, and the
// address watch with them). A file with an error, or one that changes what
// only a restart can change (see restartOnly), is refused whole, each
// problem logged with its file:line, and the running configuration stays.
func (d *gatewayDaemon) reload(ctx context.Context, s *lanSide, w *wanSide, table *gateway.Table) {
	log := d.log
	refuse := func(err error) {
		for _, e := range unjoinList(err) {
			log.Error("configuration refused; the running one stays", "error", e.Error())
		}
	}
	cfg, err := config.ParseFile(d.file)
	if err != nil {
		refuse(err)
		return
	}
	changed := config.Changed(s.cfg, cfg)
	if err := restartOnly(d.file, s.cfg, cfg); err != nil {
		refuse(err)
		return
	}
	lans, err := d.resolveListeners(cfg)
	if err != nil {
		refuse(err)
		return
	}
	added, err := s.natpmp.add(lans)
	if err != nil {
		refuse(err)
		return
	}
	plan, err := s.upnp.prepare(cfg, lans)
	if err != nil {
		s.natpmp.remove(added)
		refuse(err)
		return
	}
	// The links the rules name: the new WAN link, and the LAN links served
	// from now on, hairpinning from the new ones included.
	links := linksOf(lans)
	moved := cfg.ExternalInterface != s.cfg.ExternalInterface
	if moved || !slices.Equal(links, s.fwLinks) {
		if err := w.fw.SetInterfaces(ctx, cfg.ExternalInterface, links); err != nil {
			s.natpmp.remove(added)
			plan.abort()
			refuse(fmt.Errorf("%s: interface %s, listen on %v: %w", d.file, cfg.ExternalInterface, links, err))
			return
		}
		s.fwLinks = links
	}
	// Committed from here on.
	s.natpmp.retain(lans)
	s.natpmpRate.set(cfg.RequestRate)
	s.upnp.rate.set(cfg.RequestRate)
	if err := plan.commit(); err != nil {
		log.Error("UPnP IGD not serving", "err", err)
	}
	if moved {
		// The new interface's address (or none) comes at once.
		w.watch(ctx, cfg.ExternalInterface)
	}
	lost := lostSubnets(s.lans, lans)
	s.cfg, s.lans = cfg, lans
	policy := policyFor(cfg, lans)
	removed := table.Reconfigure(ctx, policy)
	removed = append(removed, dropInside(ctx, table, lost)...)
	log.Info("configuration reloaded", "file", d.file, "changed", changed, "external", cfg.ExternalInterface,
		"listen", listenAttr(lans), "rules", len(policy.Rules), "ports", policy.Ports.String(),
		"max_lifetime", policy.MaxLifetime, "max_per_host", policy.MaxPerHost, "max_leases", policy.MaxLeases, "leases_removed", len(removed), "leases", table.Len())
}

// restartOnly names, with its file:line, each directive of next that
// changes what the daemon cannot change while running: the state file,
// which the lease store opens once, at start, the user, whose privileges
// the daemon gave up at start, and the firewall backend, which holds the
// mappings in the kernel and decided the privileges kept; and, for now,
// the control socket, the metrics address and the status page's settings.
func restartOnly(file string, running, next *config.Config) error {
	at := func(line int) string {
		if line == 0 {
			return file
		}
		return fmt.Sprintf("%s:%d", file, line)
	}
	var errs []error
	if next.StateFile != running.StateFile {
		errs = append(errs, fmt.Errorf("%s: state file: the state file changes only at a restart", at(next.StateFileLine)))
	}
	if next.User != running.User {
		errs = append(errs, fmt.Errorf("%s: user: the user changes only at a restart", at(next.UserLine)))
	}
	if next.Firewall != running.Firewall {
		errs = append(errs, fmt.Errorf("%s: firewall: the firewall backend changes only at a restart (running: firewall %s)", at(next.FirewallLine), running.Firewall))
	}
	ro, no := running.Observe, next.Observe
	if no.ControlSocket != ro.ControlSocket {
		errs = append(errs, fmt.Errorf("%s: control socket: the control socket changes only at a restart (it is made as root)", at(no.ControlSocketLine)))
	}
	if no.MetricsListen != ro.MetricsListen {
		errs = append(errs, fmt.Errorf("%s: metrics listen: the metrics address changes only at a restart", at(no.MetricsLine)))
	}
	if no.StatusPage != ro.StatusPage || no.StatusAdmin != ro.StatusAdmin || no.StatusToken != ro.StatusToken {
		errs = append(errs, fmt.Errorf("%s: status page: the status page's settings change only at a restart", at(no.StatusLine)))
	}
	return errors.Join(errs...)
}

// lostSubnets returns the subnets of before that after no longer serves.
func lostSubnets(before, after []lanAddress) []netip.Prefix {
	var lost []netip.Prefix
	for _, b := range before {
		p := b.addr.Masked()
		if slices.ContainsFunc(after, func(a lanAddress) bool { return a.addr.Masked() == p }) || slices.Contains(lost, p) {
			continue
		}
		lost = append(lost, p)
	}
	return lost
}

// dropInside removes the leases whose internal address lies in one of
// subnets, pinholes included, and returns them: a LAN no longer served
// keeps no mapping, whatever the rules say. Their events say "lan gone".
func dropInside(ctx context.Context, table *gateway.Table, subnets []netip.Prefix) []gateway.Lease {
	if len(subnets) == 0 {
		return nil
	}
	return table.DeleteInside(ctx, subnets)
}

// unjoinList returns the errors of a config.ErrorList or of errors.Join,
// one per problem.
func unjoinList(err error) []error {
	var list config.ErrorList
	if errors.As(err, &list) {
		return list.Unwrap()
	}
	return unjoin(err)
}
