package fwplan

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/portlease/portlease/gateway"
)

// ErrPending is returned by Plan while the previous Plan awaits its Commit
// or Abort.
var ErrPending = errors.New("fwplan: previous plan neither committed nor aborted")

// Config holds the rules for kernel timeouts.
type Config struct {
	// TimeoutGrace is added to a lease's lifetime to make the kernel
	// timeout of its elements, so that the lease table expires it first.
	TimeoutGrace time.Duration
	// MaxTimeout is the longest kernel timeout the backend can set; a
	// longer one is none. Zero: no bound.
	MaxTimeout time.Duration
	// KeepFlows: Plan leaves Plan.Flows empty and the State keeps no
	// vacated keys (the backend leaves conntrack alone).
	KeepFlows bool
}

// inKey identifies an IPv4 mapping, and its inbound element.
type inKey struct {
	proto gateway.Protocol
	eport uint16
}

// endpoint identifies an internal IPv4 endpoint, and its outbound element.
type endpoint struct {
	proto gateway.Protocol
	addr  [4]byte
	port  uint16
}

// entry is a mapping the State holds, but for its key. It holds no
// pointers.
type entry struct {
	// deadline is when the kernel timeout of its elements ends (see
	// nanos).
	deadline nanos
	addr     [4]byte
	iport    uint16
	// prev and next are the external ports of the next older and next
	// newer mapping of the same endpoint; zero: none.
	prev, next uint16
}

// nanos is a deadline in nanoseconds after the State's base, zero for
// none, in two halves: aligned on 4 bytes, an entry takes 20 bytes rather
// than 24, and a map slot with its key 24 rather than 32.
type nanos [2]uint32

func nanosOf(d int64) nanos { return nanos{uint32(uint64(d) >> 32), uint32(d)} }

func (n nanos) int64() int64 { return int64(uint64(n[0])<<32 | uint64(n[1])) }

func (e entry) endpoint(proto gateway.Protocol) endpoint { return endpoint{proto, e.addr, e.iport} }

// epList is an endpoint's mappings, oldest first, by external port: the
// oldest owns the outbound element.
type epList struct {
	first, last uint16
}

// State is what a backend has installed in the kernel (see the package
// doc). It is not safe for concurrent use.
//
// BenchmarkStateAdopt (100,000 mappings in batches of 1,000, 2-core Turin
// VM, otherwise idle, go1.26) against the BenchmarkIndexAdopt of the index
// nftfw kept before it moved onto the State, on the same machine and
// mappings: 52.4 bytes of live heap a mapping (nftfw
// 50.7), 1.0-1.2 µs a mapping (nftfw 1.0, which also encodes the netlink
// elements), 318 bytes and 0.037 allocations allocated a mapping (nftfw
// 541 and 0.031). Before the batch journal was sized from the batch and
// the entry packed into 20 bytes it took 69.9 bytes, 1.6-1.8 µs, 655
// bytes and 0.13 allocations: the journal's slices and map grew by
// doubling, and each map slot of in took 32 bytes.
type State struct {
	cfg  Config
	base time.Time
	in   map[inKey]entry
	out  map[endpoint]epList
	// pins holds the pinholes' deadlines; pinFilters and filters4 the
	// filters of the pinholes and IPv4 mappings that have any.
	pins       map[pinKey]nanos
	pinFilters map[pinKey][]gateway.Filter
	filters4   map[inKey][]gateway.Filter
	// vacated holds the keys that committed batches removed and nothing
	// held since (see Flows.Granted); nil until one is.
	vacated map[inKey]struct{}
	b       *batch // the pending Plan's; nil for none
}

// New returns an empty State whose deadlines count from base (keep its
// monotonic clock reading: time.Now()).
func New(cfg Config, base time.Time) *State {
	return &State{cfg: cfg, base: base, in: make(map[inKey]entry), out: make(map[endpoint]epList),
		pins: make(map[pinKey]nanos), pinFilters: make(map[pinKey][]gateway.Filter),
		filters4: make(map[inKey][]gateway.Filter)}
}

// Len returns the number of IPv4 mappings held.
func (s *State) Len() int { return len(s.in) }

// Pinholes returns the number of pinholes held.
func (s *State) Pinholes() int { return len(s.pins) }

// Owner returns the external port that the outbound element of internal
// endpoint ep of protocol proto holds, and whether it has one.
func (s *State) Owner(proto gateway.Protocol, ep netip.AddrPort) (uint16, bool) {
	l, ok := s.out[endpoint{proto, ep.Addr().Unmap().As4(), ep.Port()}]
	return l.first, ok
}

// batch is the journal of the pending Plan: what it overwrote.
type batch struct {
	in      journal[inKey, entry]
	out     journal[endpoint, epList]
	renewed []bool // by position in in: added or renewed

	pins       journal[pinKey, nanos]
	pinFilters journal[pinKey, []gateway.Filter] // written with pins
	filters4   journal[inKey, []gateway.Filter]

	// vacated and granted are the keys the batch removes, and grants
	// again, for the State's vacated keys at Commit.
	vacated, granted []inKey
}

// newBatch returns the journal of a batch of n mappings.
func newBatch(n int) *batch {
	b := &batch{renewed: make([]bool, 0, n)}
	b.in.grow(n)
	b.out.grow(n)
	return b
}

// kernelTimeout returns the kernel timeout of a lease with lifetime l,
// rounded up to the millisecond, or zero for none.
func (s *State) kernelTimeout(l time.Duration) time.Duration {
	if l <= 0 {
		return 0
	}
	t := l + s.cfg.TimeoutGrace
	if s.cfg.MaxTimeout > 0 && t > s.cfg.MaxTimeout {
		return 0
	}
	return (t + time.Millisecond - 1).Truncate(time.Millisecond)
}

// deadline returns the deadline of timeout t from now, zero for none.
func (s *State) deadline(now time.Time, t time.Duration) int64 {
	if t <= 0 {
		return 0
	}
	return max(int64(now.Sub(s.base)+t), 1) // a now before base is not "none"
}

// until returns what is left at now of deadline d, in whole milliseconds
// and at least one, or zero for none.
func (s *State) until(now time.Time, d int64) time.Duration {
	if d == 0 {
		return 0
	}
	left := time.Duration(d) - now.Sub(s.base)
	return max((left + time.Millisecond - 1).Truncate(time.Millisecond), time.Millisecond)
}

// checkMapping checks a mapping or pinhole of a batch.
func checkMapping(m gateway.Mapping) error {
	a := m.Internal.Addr().Unmap()
	switch {
	case m.Pinhole:
		return checkPinhole(m)
	case m.ExternalPort == 0 || m.Internal.Port() == 0:
		return fmt.Errorf("fwplan: mapping %v %d -> %v: port 0", m.Protocol, m.ExternalPort, m.Internal)
	case !a.Is4() || a.IsUnspecified():
		return fmt.Errorf("fwplan: mapping %v %d -> %v: internal address not IPv4", m.Protocol, m.ExternalPort, m.Internal)
	case m.Lifetime < 0:
		return fmt.Errorf("fwplan: mapping %v %d -> %v: negative lifetime", m.Protocol, m.ExternalPort, m.Internal)
	}
	return checkFilters4(m)
}

// setIn writes entry e of k (or deletes it, !held), journalled while a
// batch is pending, and returns its position in the journal (-1 without a
// batch: Wanted builds a State without one).
func (s *State) setIn(k inKey, e entry, held bool) int {
	if s.b == nil {
		set(s.in, k, e, held)
		return -1
	}
	i := s.b.in.write(s.in, k, e, held)
	for len(s.b.renewed) <= i {
		s.b.renewed = append(s.b.renewed, false)
	}
	return i
}

// setOut writes the list of ep (or deletes it when empty), journalled
// while a batch is pending.
func (s *State) setOut(ep endpoint, l epList) {
	if s.b == nil {
		set(s.out, ep, l, l.first != 0)
		return
	}
	s.b.out.write(s.out, ep, l, l.first != 0)
}

// unlink takes mapping k, held as e, out of its endpoint's list.
func (s *State) unlink(k inKey, e entry) {
	ep := e.endpoint(k.proto)
	l := s.out[ep]
	if e.prev != 0 {
		p := s.in[inKey{k.proto, e.prev}]
		p.next = e.next
		s.setIn(inKey{k.proto, e.prev}, p, true)
	} else {
		l.first = e.next
	}
	if e.next != 0 {
		n := s.in[inKey{k.proto, e.next}]
		n.prev = e.prev
		s.setIn(inKey{k.proto, e.next}, n, true)
	} else {
		l.last = e.prev
	}
	s.setOut(ep, l)
}

// link makes mapping k, to be written as *e, the newest of its endpoint.
func (s *State) link(k inKey, e *entry) {
	ep := e.endpoint(k.proto)
	l := s.out[ep]
	e.prev, e.next = l.last, 0
	if l.last != 0 {
		p := s.in[inKey{k.proto, l.last}]
		p.next = k.eport
		s.setIn(inKey{k.proto, l.last}, p, true)
	} else {
		l.first = k.eport
	}
	l.last = k.eport
	s.setOut(ep, l)
}
