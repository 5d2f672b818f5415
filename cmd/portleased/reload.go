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
// place, the others by restarting the UPnP service) and "listen on" (the new
// sockets open before the old ones close). A file with an error, or one
// that changes what only a restart can change (see restartOnly), is refused
// whole, each problem logged with its file:line, and the running
// configuration stays.
func (d *gatewayDaemon) reload(ctx context.Context, s *lanSide, table *gateway.Table) {
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
	if err := restartOnly(d.file, s.cfg, cfg, s.fwLinks, d.linksOf); err != nil {
		refuse(err)
		return
	}
	if slices.Contains(changed, config.DirListen) {
		d.warnIPv6(cfg)
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
	// Committed from here on.
	s.natpmp.retain(lans)
	if err := plan.commit(); err != nil {
		log.Error("UPnP IGD not serving", "err", err)
	}
	lost := lostSubnets(s.lans, lans)
	s.cfg, s.lans = cfg, lans
	policy := policyFor(cfg, lans)
	removed := table.Reconfigure(ctx, policy)
	removed = append(removed, dropInside(ctx, table, lost)...)
	log.Info("configuration reloaded", "file", d.file, "changed", changed, "listen", listenAttr(lans),
		"rules", len(policy.Rules), "ports", policy.Ports.String(), "max_lifetime", policy.MaxLifetime,
		"leases_removed", len(removed), "leases", table.Len())
}

// restartOnly names, with its file:line, each directive of next that
// changes what the daemon cannot change while running:
//   - interface: nftfw's ruleset names the external link in its rules and
//     has no way to change it in place;
//   - listen on, when a directive new in the file serves a LAN link that the
//     ruleset's hairpin rules do not name (fwLinks, fixed at start);
//     addresses of the links already named can come and go;
//   - state file: the lease store is opened once, at start.
//
// linksOf returns the links a "listen on" directive serves now.
func restartOnly(file string, running, next *config.Config, fwLinks []string, linksOf func(*config.Config, config.Listen) []string) error {
	var errs []error
	at := func(line int) string {
		if line == 0 {
			return file
		}
		return fmt.Sprintf("%s:%d", file, line)
	}
	if next.ExternalInterface != running.ExternalInterface {
		errs = append(errs, fmt.Errorf("%s: interface %s: the external interface (now %s) changes only at a restart",
			at(next.InterfaceLine), next.ExternalInterface, running.ExternalInterface))
	}
	for _, l := range next.Listen {
		if slices.ContainsFunc(running.Listen, func(r config.Listen) bool { return r.String() == l.String() }) {
			continue
		}
		for _, link := range linksOf(next, l) {
			if !slices.Contains(fwLinks, link) {
				errs = append(errs, fmt.Errorf("%s: listen on %s: serving the new LAN link %s takes a restart (the nftables rules name the LAN links %v)",
					at(l.Line), l, link, fwLinks))
			}
		}
	}
	if next.StateFile != running.StateFile {
		errs = append(errs, fmt.Errorf("%s: state file: the state file changes only at a restart", at(next.StateFileLine)))
	}
	return errors.Join(errs...)
}

// linksOf returns the links that directive l of cfg serves now.
func (d *gatewayDaemon) linksOf(cfg *config.Config, l config.Listen) []string {
	one := *cfg
	one.Listen = []config.Listen{l}
	lans, _ := d.resolveListeners(&one)
	return linksOf(lans)
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
// subnets, and returns them: a LAN no longer served keeps no mapping,
// whatever the rules say.
func dropInside(ctx context.Context, table *gateway.Table, subnets []netip.Prefix) []gateway.Lease {
	if len(subnets) == 0 {
		return nil
	}
	inside := func(l gateway.Lease) bool {
		return slices.ContainsFunc(subnets, func(p netip.Prefix) bool { return p.Contains(l.Internal.Addr()) })
	}
	var protocols []gateway.Protocol
	for _, l := range table.Leases() {
		if inside(l) && !slices.Contains(protocols, l.Protocol) {
			protocols = append(protocols, l.Protocol)
		}
	}
	var removed []gateway.Lease
	for _, p := range protocols {
		removed = append(removed, table.DeleteExternalRange(ctx, p, 0, 65535, inside)...)
	}
	return removed
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
