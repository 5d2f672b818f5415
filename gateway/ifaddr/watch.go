package ifaddr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// Resubscription waits: after a failed subscription or lost events the
// watcher waits minRetry, doubling up to maxRetry while failures follow one
// another, so that a kernel that keeps failing is not asked in a busy loop.
const (
	minRetry = 50 * time.Millisecond
	maxRetry = 5 * time.Second
	// stableAfter is how long a subscription must have lasted for the
	// next failure to start again from minRetry.
	stableAfter = 10 * time.Second
	// receiveBuffer is the socket buffer asked for each subscription:
	// room for a burst of a few thousand events before ENOBUFS.
	receiveBuffer = 1 << 20
)

// subscription is one netlink subscription to address and link events.
// Its channels are closed when the subscription ends (an overflow of the
// socket, ENOBUFS, ends it); errs carries what the subscription reported.
type subscription struct {
	addr <-chan netlink.AddrUpdate
	link <-chan netlink.LinkUpdate
	errs <-chan error
}

// subscribeFunc opens a subscription that lasts until done is closed.
type subscribeFunc func(done <-chan struct{}) (subscription, error)

// subscribeNetlink subscribes to the kernel's address and link events.
func subscribeNetlink(done <-chan struct{}) (subscription, error) {
	addr := make(chan netlink.AddrUpdate, 64)
	link := make(chan netlink.LinkUpdate, 64)
	errs := make(chan error, 1)
	onErr := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	if err := netlink.AddrSubscribeWithOptions(addr, done, netlink.AddrSubscribeOptions{
		ErrorCallback: onErr, ReceiveBufferSize: receiveBuffer,
	}); err != nil {
		return subscription{}, fmt.Errorf("ifaddr: subscribe to address events: %w", err)
	}
	if err := netlink.LinkSubscribeWithOptions(link, done, netlink.LinkSubscribeOptions{
		ErrorCallback: onErr, ReceiveBufferSize: receiveBuffer,
	}); err != nil {
		// The address subscription ends when the caller closes done;
		// the caller discards what it still sends.
		return subscription{addr: addr, errs: errs}, fmt.Errorf("ifaddr: subscribe to link events: %w", err)
	}
	return subscription{addr: addr, link: link, errs: errs}, nil
}

// follower calls a function after every burst of address and link events,
// and resynchronises when events were lost.
type follower struct {
	log       *slog.Logger
	subscribe subscribeFunc
	minRetry  time.Duration
}

func newFollower(log *slog.Logger) *follower {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &follower{log: log, subscribe: subscribeNetlink, minRetry: minRetry}
}

// follow subscribes, then calls sync, which reads the current state (a
// dump), and calls it again after each burst of events, until ctx is done;
// it then returns nil. When the subscription reports an error or ends (the
// socket overflowed: events were lost) or sync fails, it logs a warning,
// subscribes again and calls sync: the state it reads is complete whatever
// was lost. It never gives up.
func (f *follower) follow(ctx context.Context, sync func() error) error {
	retry := f.minRetry
	for {
		done := make(chan struct{})
		started := time.Now()
		sub, err := f.subscribe(done)
		if err == nil {
			if err = sync(); err == nil {
				err = f.events(ctx, sub, sync)
			}
		}
		close(done)
		discard(sub)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > stableAfter {
			retry = f.minRetry
		}
		f.log.Warn("ifaddr: netlink events lost; resynchronising from a dump", "err", err, "retry_in", retry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
		retry = min(2*retry, maxRetry)
	}
}

// events calls sync after each burst of events of sub: the events queued
// at once are read first, so a burst costs one dump. It returns nil when ctx
// is done, an error when the subscription failed or ended, or sync's error.
func (f *follower) events(ctx context.Context, sub subscription, sync func() error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-sub.errs:
			return fmt.Errorf("ifaddr: netlink events: %w", err)
		case _, ok := <-sub.addr:
			if !ok {
				return errors.New("ifaddr: address events ended")
			}
		case _, ok := <-sub.link:
			if !ok {
				return errors.New("ifaddr: link events ended")
			}
		}
		if err := drainQueued(sub); err != nil {
			return err
		}
		if err := sync(); err != nil {
			return err
		}
	}
}

// drainQueued reads the events already queued in sub without waiting.
func drainQueued(sub subscription) error {
	for {
		select {
		case _, ok := <-sub.addr:
			if !ok {
				return errors.New("ifaddr: address events ended")
			}
		case _, ok := <-sub.link:
			if !ok {
				return errors.New("ifaddr: link events ended")
			}
		default:
			return nil
		}
	}
}

// discard reads what an ended subscription still sends until it closes its
// channels, so that the goroutines feeding them can end.
func discard(sub subscription) {
	if sub.addr != nil {
		go func() {
			for range sub.addr {
			}
		}()
	}
	if sub.link != nil {
		go func() {
			for range sub.link {
			}
		}()
	}
}

// Watch calls onChange with the primary IPv4 address of interface name (the
// zero Addr while there is none, or while the interface does not exist) once
// at start and again each time it changes, until ctx is done; it then
// returns nil. It follows netlink address and link events and never polls.
// Lost events (a netlink error, an overflow of the socket under a burst of
// link changes) are logged at warning level and repaired by subscribing
// again and reading the address anew: Watch does not stop on them. A nil
// log discards the warnings.
func Watch(ctx context.Context, name string, log *slog.Logger, onChange func(netip.Addr)) error {
	return watchPrimary(ctx, newFollower(log), PrimaryIPv4, name, onChange)
}

// watchPrimary is Watch with its event source and address lookup given.
func watchPrimary(ctx context.Context, f *follower, primary func(string) (netip.Addr, error), name string, onChange func(netip.Addr)) error {
	var last netip.Addr
	first := true
	return f.follow(ctx, func() error {
		a, err := primary(name)
		if err != nil && !errors.Is(err, ErrNoInterface) {
			return err
		}
		if first || a != last {
			first = false
			last = a
			onChange(a)
		}
		return nil
	})
}

// WatchLinks calls onChange once at start and again after every burst of
// address or link events of any interface, and after every
// resynchronisation (see Watch), until ctx is done; it then returns nil.
// onChange reads what it needs itself. A nil log discards the warnings.
func WatchLinks(ctx context.Context, log *slog.Logger, onChange func()) error {
	return newFollower(log).follow(ctx, func() error {
		onChange()
		return nil
	})
}
