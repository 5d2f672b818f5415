package main

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/ifaddr"
	"github.com/portlease/portlease/gateway/natpmpsrv"
)

// wanSide follows the address of the external interface: each new address
// goes to the lease table, the nftables backend (hairpinning, the outbound
// source NAT), NAT-PMP clients (an announcement, RFC 6886 §3.2.1) and the
// UPnP service's subscribers. The interface can change while running
// (SIGHUP): the watch then moves to the new one. Its methods are called
// from the daemon's main loop only.
type wanSide struct {
	table *gateway.Table
	fw    gateway.Firewall
	srv   *natpmpsrv.Server
	upnp  *upnpRunner
	log   *slog.Logger
	errc  chan<- error

	stop context.CancelFunc // ends the watch of the interface followed
	done chan struct{}      // closed when that watch has ended
}

// watch follows interface name from now on, until ctx is done, after
// ending the watch of the previous interface, if any. The new watch reports
// the interface's address at once, and each change after.
func (w *wanSide) watch(ctx context.Context, name string) {
	w.end()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	w.stop, w.done = cancel, done
	go func() {
		defer close(done)
		err := ifaddr.Watch(wctx, name, w.log, func(a netip.Addr) { w.addressChanged(ctx, name, a) })
		if err != nil {
			w.errc <- err
		}
	}()
}

// end ends the watch and waits for it, so that an address of the old
// interface never follows one of the new.
func (w *wanSide) end() {
	if w.stop == nil {
		return
	}
	w.stop()
	<-w.done
	w.stop, w.done = nil, nil
}

// addressChanged puts a, the address of interface name (the zero Addr
// while it has none), in force.
func (w *wanSide) addressChanged(ctx context.Context, name string, a netip.Addr) {
	if !w.table.SetExternalAddress(a) {
		return
	}
	if err := w.fw.SetExternalAddress(ctx, a); err != nil {
		w.log.Error("hairpin address not updated", "addr", a, "err", err)
	}
	if !a.IsValid() {
		w.log.Warn("external interface has no IPv4 address", "interface", name)
		w.upnp.externalAddressChanged()
		return
	}
	w.log.Info("external address", "interface", name, "addr", a)
	w.srv.Announce()
	w.upnp.externalAddressChanged()
}
