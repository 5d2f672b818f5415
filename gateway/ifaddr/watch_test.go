package ifaddr

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// fakeKernel stands in for netlink: each subscription gets channels the
// test feeds, and the primary address is what the test sets.
type fakeKernel struct {
	mu        sync.Mutex
	addr      netip.Addr
	subs      chan fakeSub
	fail      int // subscriptions still to refuse
	dumpFails int // dumps still to fail
}

type fakeSub struct {
	addr chan netlink.AddrUpdate
	link chan netlink.LinkUpdate
	errs chan error
	done <-chan struct{}
}

func newFakeKernel() *fakeKernel { return &fakeKernel{subs: make(chan fakeSub, 16)} }

func (k *fakeKernel) subscribe(done <-chan struct{}) (subscription, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail > 0 {
		k.fail--
		return subscription{}, errors.New("fake: subscription refused")
	}
	s := fakeSub{addr: make(chan netlink.AddrUpdate, 64), link: make(chan netlink.LinkUpdate, 64), errs: make(chan error, 1), done: done}
	k.subs <- s
	return subscription{addr: s.addr, link: s.link, errs: s.errs}, nil
}

func (k *fakeKernel) set(a netip.Addr) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.addr = a
}

func (k *fakeKernel) primary(string) (netip.Addr, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dumpFails > 0 {
		k.dumpFails--
		return netip.Addr{}, errors.New("fake: dump interrupted")
	}
	return k.addr, nil
}

// nextSub waits for the watcher's next subscription.
func (k *fakeKernel) nextSub(t *testing.T) fakeSub {
	t.Helper()
	select {
	case s := <-k.subs:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not subscribe")
		return fakeSub{}
	}
}

// startWatch runs watchPrimary on k and returns the addresses it reports
// and the channel of its result.
func startWatch(t *testing.T, k *fakeKernel) (<-chan netip.Addr, <-chan error, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan netip.Addr, 16)
	res := make(chan error, 1)
	f := &follower{log: slog.New(slog.DiscardHandler), subscribe: k.subscribe, minRetry: time.Millisecond}
	go func() { res <- watchPrimary(ctx, f, k.primary, "wan0", func(a netip.Addr) { got <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-res; err != nil {
			t.Errorf("Watch returned %v after its context ended; want nil", err)
		}
	})
	return got, res, cancel
}

func wantAddr(t *testing.T, got <-chan netip.Addr, want netip.Addr) {
	t.Helper()
	select {
	case a := <-got:
		if a != want {
			t.Fatalf("onChange(%v); want %v", a, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("onChange was not called; want %v", want)
	}
}

// TestWatchResyncsAfterLostEvents: an error callback (ENOBUFS) and a
// subscription that ends are repaired by a new subscription and a dump; the
// address that changed while events were lost is reported, and Watch keeps
// running.
func TestWatchResyncsAfterLostEvents(t *testing.T) {
	k := newFakeKernel()
	a1, a2, a3 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("203.0.113.9")
	k.set(a1)
	got, res, _ := startWatch(t, k)
	s := k.nextSub(t)
	wantAddr(t, got, a1)

	// The address changes while the socket overflows: no event arrives,
	// only the error.
	k.set(a2)
	s.errs <- syscall.ENOBUFS
	s2 := k.nextSub(t)
	wantAddr(t, got, a2)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the failed subscription was not ended")
	}

	// netlink closes the channels of a subscription whose socket failed.
	k.set(a3)
	close(s2.link)
	close(s2.addr)
	k.nextSub(t)
	wantAddr(t, got, a3)

	select {
	case err := <-res:
		t.Fatalf("Watch returned %v after lost events; want it to keep running", err)
	default:
	}
}

// TestWatchRetriesFailedDumpsAndSubscriptions: a dump that fails and
// subscriptions the kernel refuses are retried until the address is known.
func TestWatchRetriesFailedDumpsAndSubscriptions(t *testing.T) {
	k := newFakeKernel()
	a := netip.MustParseAddr("203.0.113.1")
	k.set(a)
	k.fail, k.dumpFails = 3, 2
	got, _, _ := startWatch(t, k)
	for range 3 { // two failed dumps, then the one that succeeds
		k.nextSub(t)
	}
	wantAddr(t, got, a)
}

// TestWatchCoalescesBursts: a burst of events queued at once costs one dump
// and reports only changes.
func TestWatchCoalescesBursts(t *testing.T) {
	k := newFakeKernel()
	a1, a2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	k.set(a1)
	got, _, _ := startWatch(t, k)
	s := k.nextSub(t)
	wantAddr(t, got, a1)
	k.set(a2)
	for range 50 {
		s.link <- netlink.LinkUpdate{}
	}
	wantAddr(t, got, a2)
	s.addr <- netlink.AddrUpdate{}
	select {
	case a := <-got:
		t.Fatalf("onChange(%v) without a change", a)
	case <-time.After(200 * time.Millisecond):
	}
}
