package client

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nsRunner opens sockets in the network namespace the Client was created in.
//
// On Linux a socket (and a netlink handle) belongs to the network namespace
// of the thread that creates it, and a thread's namespace can differ from
// the process's: a program, or a test, may switch one locked thread into
// another namespace and create a Client there (netlab's Host.Do does). The
// Client's own goroutines, and the goroutines the net/http transport dials
// on, run on other threads. So New records the namespace of the thread it
// runs on, and every place that opens a socket or a netlink handle goes
// through do, which runs fn directly when the current thread is already
// there (always, in an ordinary program) and otherwise on a thread of its
// own switched into the namespace for the duration of fn. A socket keeps its
// namespace for its whole life, whichever thread reads or writes it.
type nsRunner struct {
	// mu guards handle against close while a switch is under way.
	mu sync.RWMutex
	// handle is the recorded namespace, -1 when it could not be opened
	// (no /proc): then do runs everything where it is.
	handle netns.NsHandle
	// dev and ino identify the namespace without opening it.
	dev, ino uint64
}

// threadNetNS is the current thread's network namespace.
const threadNetNS = "/proc/thread-self/ns/net"

// newNSRunner records the current thread's network namespace. It must run
// on the goroutine that calls New.
func newNSRunner() *nsRunner {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var st unix.Stat_t
	if err := unix.Stat(threadNetNS, &st); err != nil {
		return &nsRunner{handle: -1}
	}
	h, err := netns.Get()
	if err != nil {
		return &nsRunner{handle: -1}
	}
	return &nsRunner{handle: h, dev: st.Dev, ino: st.Ino}
}

// here reports whether the current thread is in the recorded namespace. The
// caller has locked the thread.
func (n *nsRunner) here() bool {
	var st unix.Stat_t
	if err := unix.Stat(threadNetNS, &st); err != nil {
		return false
	}
	return st.Dev == n.dev && st.Ino == n.ino
}

// do runs fn in the recorded namespace and returns its error. fn must not
// start goroutines that open sockets: they would run elsewhere.
func (n *nsRunner) do(fn func() error) error {
	if n.dev == 0 && n.ino == 0 {
		return fn()
	}
	runtime.LockOSThread()
	if n.here() {
		defer runtime.UnlockOSThread()
		return fn()
	}
	runtime.UnlockOSThread()
	n.mu.RLock()
	defer n.mu.RUnlock()
	if !n.handle.IsOpen() {
		return ErrClosed
	}

	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		// A goroutine of its own, locked to its thread: if the thread
		// cannot be switched back, the goroutine ends still locked and
		// the runtime discards the thread instead of reusing it.
		runtime.LockOSThread()
		var res result
		back := true
		func() {
			orig, err := netns.Get()
			if err != nil {
				res.err = fmt.Errorf("client: open the current network namespace: %w", err)
				return
			}
			defer orig.Close()
			if err := netns.Set(n.handle); err != nil {
				res.err = fmt.Errorf("client: enter the client's network namespace: %w", err)
				return
			}
			func() {
				defer func() { res.panic = recover() }()
				res.err = fn()
			}()
			if err := netns.Set(orig); err != nil {
				res.err = errors.Join(res.err, fmt.Errorf("client: leave the client's network namespace: %w", err))
				back = false
			}
		}()
		if back {
			runtime.UnlockOSThread()
		}
		done <- res
	}()
	res := <-done
	if res.panic != nil {
		panic(res.panic)
	}
	return res.err
}

// close releases the recorded namespace.
func (n *nsRunner) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handle.IsOpen() {
		n.handle.Close()
	}
}
