package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/nftfw"
)

// watchKernel starts the watch of the firewall that repairs what other
// programs change (healKernel), once the start-up reconciliation is done:
// with a monitor listening, nftables would make an event of each of the
// elements that reconciliation may add, which costs it ten times the
// transaction itself. What changed between that reconciliation and the
// watch's start is reported by Watch, and repaired.
func watchKernel(ctx context.Context, wg *sync.WaitGroup, fw gateway.Firewall, b backend, table *gateway.Table, log *slog.Logger, errc chan<- error) {
	heal := healKernel(table, b, log)
	opened := make(chan struct{})
	wg.Go(func() { report(ctx, errc, fw.Watch(ctx, heal, func() { close(opened) })) })
	select {
	case <-opened:
	case <-time.After(2 * time.Second):
		log.Warn("firewall watch not started yet: changes by other programs are repaired once it is")
	}
}

// healKernel returns what the firewall's watcher calls when someone else
// changed the kernel's state (nft flush ruleset, a deleted element, an
// iptables -F): the table is put back into the kernel. The messages name
// the backend b.
func healKernel(table *gateway.Table, b backend, log *slog.Logger) func() {
	changed := string(b) + " changed by another program"
	return func() {
		counts, err := table.Resync()
		if err != nil {
			log.Error(changed+"; not repaired yet, retrying", "err", err)
			return
		}
		attrs := []any{"adopted", counts.Adopted, "added", counts.Added, "removed", counts.Removed}
		if counts.Added == 0 && counts.Removed == 0 {
			log.Debug(changed+"; the leases were intact", attrs...)
			return
		}
		log.Warn(changed+"; repaired", attrs...)
	}
}

// stopFirewall lets go of the kernel at exit. Without a state file every
// mapping is removed, since nothing would bring it back. With one,
// nftables' table stays, so that mappings keep forwarding across a
// restart, which adopts them; should portleased not come back, each ends
// with its kernel timeout (its lease, or at most
// gateway.DefaultKernelTimeout for long and permanent leases). iptables
// rules have no timeout: the iptables backends remove their chains either
// way (Release is Close), and the state file brings the mappings back at
// the next start.
func stopFirewall(fw gateway.Firewall, b backend, state *durableState, log *slog.Logger) {
	if state.file == nil {
		if err := fw.Close(); err != nil {
			log.Error("removing the firewall's rules", "backend", b, "err", err)
		}
		return
	}
	if err := fw.Release(); err != nil {
		log.Error("letting go of the firewall", "backend", b, "err", err)
	}
	if b == backendNftables {
		log.Info("mappings left in the kernel for the next start; each ends with its kernel timeout unless adopted")
		return
	}
	log.Info("chains removed from the kernel (iptables rules have no timeout); the state file brings the mappings back at the next start", "backend", b)
}

// warnForwardPath warns about each default-drop forward chain of another
// table that would drop what portleased's pinholes and filtered mappings
// admit (OpenWrt's fw4, Debian's example firewalls), with the one line the
// operator must add to it. Only nftables' own table marks what it admits
// so: the other backends check nothing.
func warnForwardPath(b backend, log *slog.Logger) {
	if b != backendNftables {
		return
	}
	chains, err := nftfw.CheckForwardPath(0, nftfw.DefaultTable, nftfw.DefaultMark)
	if err != nil {
		log.Warn("cannot check the forward chains of other tables for pinhole traffic", "err", err)
		return
	}
	for _, c := range chains {
		log.Warn("a forward chain drops by default and will drop the traffic of IPv6 pinholes; add this rule to it",
			"chain", c, "rule", nftfw.ForwardAcceptRule(nftfw.DefaultMark))
	}
}
