package fwplan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

func tcp(eport uint16, internal string, lifetime time.Duration) gateway.Mapping {
	return gateway.Mapping{Protocol: gateway.TCP, ExternalPort: eport,
		Internal: netip.MustParseAddrPort(internal), Lifetime: lifetime}
}

// describe lists the elements of p in the order they are sent, in the
// words of nftfw's TestIndexSharedEndpoint.
func describe(p *Plan) []string {
	var out []string
	for _, e := range p.DelIn {
		out = append(out, fmt.Sprintf("del in %v %d", e.Protocol, e.ExternalPort))
	}
	for _, e := range p.DelOut {
		out = append(out, fmt.Sprintf("del out %v %v", e.Protocol, e.Internal))
	}
	for _, e := range p.AddIn {
		out = append(out, fmt.Sprintf("add in %v %d -> %v %v", e.Protocol, e.ExternalPort, e.Internal, e.Timeout))
	}
	for _, e := range p.AddOut {
		out = append(out, fmt.Sprintf("add out %v %v -> %d %v", e.Protocol, e.Internal, e.ExternalPort, e.Timeout))
	}
	return out
}

// TestPlanSharedEndpoint checks the outbound element of an endpoint with
// several mappings: it holds the port of the oldest, passes to the next
// oldest when that goes, and is added again when its owner is renewed (the
// steps of nftfw's TestIndexSharedEndpoint, less the timed-out elements,
// which the backend handles).
func TestPlanSharedEndpoint(t *testing.T) {
	base := time.Now()
	now := base
	s := New(Config{TimeoutGrace: 30 * time.Second}, base)
	const e, e2 = "198.51.100.10:80", "198.51.100.11:80"
	a, b, c, d := tcp(8080, e, time.Hour), tcp(8081, e, time.Hour), tcp(8082, e, 2*time.Hour), tcp(8083, e2, 0)
	steps := []struct {
		name        string
		after       time.Duration
		add, remove []gateway.Mapping
		want        []string
		wantOwner   uint16 // of e; 0: none
	}{{
		name: "two mappings of one endpoint: the first is installed",
		add:  []gateway.Mapping{a, b},
		want: []string{
			"add in tcp 8080 -> 198.51.100.10:80 1h0m30s",
			"add in tcp 8081 -> 198.51.100.10:80 1h0m30s",
			"add out tcp 198.51.100.10:80 -> 8080 1h0m30s",
		},
		wantOwner: 8080,
	}, {
		name:      "a third leaves the outbound element alone",
		after:     time.Minute,
		add:       []gateway.Mapping{c},
		want:      []string{"add in tcp 8082 -> 198.51.100.10:80 2h0m30s"},
		wantOwner: 8080,
	}, {
		name:   "removing the installed one installs the next oldest, with its timeout",
		after:  time.Minute,
		remove: []gateway.Mapping{a},
		want: []string{
			"del in tcp 8080",
			"del out tcp 198.51.100.10:80",
			"add out tcp 198.51.100.10:80 -> 8081 58m30s",
		},
		wantOwner: 8081,
	}, {
		name:  "renewing the owner adds the outbound element again",
		after: time.Minute,
		add:   []gateway.Mapping{b},
		want: []string{
			"del in tcp 8081",
			"del out tcp 198.51.100.10:80",
			"add in tcp 8081 -> 198.51.100.10:80 1h0m30s",
			"add out tcp 198.51.100.10:80 -> 8081 1h0m30s",
		},
		wantOwner: 8081,
	}, {
		name:      "renewing another leaves it alone",
		add:       []gateway.Mapping{c},
		remove:    []gateway.Mapping{c},
		want:      []string{"del in tcp 8082", "add in tcp 8082 -> 198.51.100.10:80 2h0m30s"},
		wantOwner: 8081,
	}, {
		name:  "the owner moves to another endpoint",
		after: time.Minute,
		add:   []gateway.Mapping{tcp(8081, e2, time.Hour)},
		want: []string{
			"del in tcp 8081",
			"del out tcp 198.51.100.10:80",
			"add in tcp 8081 -> 198.51.100.11:80 1h0m30s",
			"add out tcp 198.51.100.10:80 -> 8082 1h59m30s",
			"add out tcp 198.51.100.11:80 -> 8081 1h0m30s",
		},
		wantOwner: 8082,
	}, {
		name:   "removing the last one, and one not held",
		remove: []gateway.Mapping{c, tcp(9999, e, 0)},
		want:   []string{"del in tcp 8082", "del out tcp 198.51.100.10:80"},
	}, {
		name: "a second mapping of the other endpoint, without timeout",
		add:  []gateway.Mapping{d},
		want: []string{"add in tcp 8083 -> 198.51.100.11:80 0s"},
	}}
	for _, st := range steps {
		now = now.Add(st.after)
		p, err := s.Plan(now, st.add, st.remove)
		if err != nil {
			t.Fatalf("%s: Plan: %v", st.name, err)
		}
		s.Commit()
		if got := describe(p); !slices.Equal(got, st.want) {
			t.Errorf("%s: elements\n%q\nwant\n%q", st.name, got, st.want)
		}
		if got, _ := s.Owner(gateway.TCP, netip.MustParseAddrPort(e)); got != st.wantOwner {
			t.Errorf("%s: owner of %s = %d; want %d", st.name, e, got, st.wantOwner)
		}
	}
	if s.Len() != 2 || len(s.out) != 1 {
		t.Errorf("State holds %d mappings, %d endpoints; want 2, 1", s.Len(), len(s.out))
	}
}

// model is the plain reference for the owner rule: the mappings, oldest
// first; a renewal on the same endpoint keeps its place, one that moves
// goes last.
type model []gateway.Mapping

func (m *model) apply(add, remove []gateway.Mapping) {
	key := func(x gateway.Mapping) any {
		if x.Pinhole {
			return pinKeyOf(x)
		}
		return inKey{x.Protocol, x.ExternalPort}
	}
	readd := func(k any) bool {
		return slices.ContainsFunc(add, func(x gateway.Mapping) bool { return key(x) == k })
	}
	for _, r := range remove {
		if !readd(key(r)) {
			*m = slices.DeleteFunc(*m, func(x gateway.Mapping) bool { return key(x) == key(r) })
		}
	}
	for _, a := range add {
		i := slices.IndexFunc(*m, func(x gateway.Mapping) bool { return key(x) == key(a) })
		switch {
		case i >= 0 && (*m)[i].Internal == a.Internal:
			(*m)[i] = a
		case i >= 0:
			*m = append(slices.Delete(*m, i, i+1), a)
		default:
			*m = append(*m, a)
		}
	}
}

// kernel is what a kernel holds after applying plans: element data by key,
// filters as text.
type kernel struct {
	in   map[inKey]netip.AddrPort
	out  map[endpoint]uint16
	pins map[pinKey]string
	f4   map[inKey]string
}

// del and add change m as a kernel does: deleting what it lacks and adding
// what it holds fail.
func del[K comparable, V any](t *testing.T, m map[K]V, k K, what string) {
	t.Helper()
	if _, ok := m[k]; !ok {
		t.Fatalf("plan deletes %s %v, which the kernel lacks", what, k)
	}
	delete(m, k)
}

func add[K comparable, V any](t *testing.T, m map[K]V, k K, v V, what string) {
	t.Helper()
	if _, dup := m[k]; dup {
		t.Fatalf("plan adds %s %v, which the kernel holds", what, k)
	}
	m[k] = v
}

func (k *kernel) apply(t *testing.T, p *Plan) {
	t.Helper()
	for _, e := range p.DelIn {
		ik := inKey{e.Protocol, e.ExternalPort}
		if _, ok := k.in[ik]; !ok {
			t.Fatalf("plan deletes inbound %v %d, which the kernel lacks", e.Protocol, e.ExternalPort)
		}
		delete(k.in, ik)
	}
	for _, e := range p.DelOut {
		ok := endpoint{e.Protocol, e.Internal.Addr().As4(), e.Internal.Port()}
		if _, held := k.out[ok]; !held {
			t.Fatalf("plan deletes outbound %v %v, which the kernel lacks", e.Protocol, e.Internal)
		}
		delete(k.out, ok)
	}
	for _, e := range p.DelPin {
		pk := pinKey{e.Protocol, e.Internal.Addr().As16(), e.Internal.Port()}
		if k.pins[pk] != fmt.Sprint(e.Filters) {
			t.Fatalf("plan deletes pinhole %v with filters %v; the kernel holds %s", pk, e.Filters, k.pins[pk])
		}
		del(t, k.pins, pk, "pinhole")
	}
	for _, e := range p.DelFiltered {
		ik := inKey{e.Protocol, e.ExternalPort}
		if k.f4[ik] != fmt.Sprint(e.Filters) {
			t.Fatalf("plan deletes filters %v of %v; the kernel holds %s", e.Filters, ik, k.f4[ik])
		}
		del(t, k.f4, ik, "filters of")
	}
	for _, e := range p.AddPin {
		add(t, k.pins, pinKey{e.Protocol, e.Internal.Addr().As16(), e.Internal.Port()}, fmt.Sprint(e.Filters), "pinhole")
	}
	for _, e := range p.AddFiltered {
		if len(e.Filters) == 0 {
			t.Fatalf("plan adds no filters of %v %d", e.Protocol, e.ExternalPort)
		}
		add(t, k.f4, inKey{e.Protocol, e.ExternalPort}, fmt.Sprint(e.Filters), "filters of")
	}
	for _, e := range p.AddIn {
		ik := inKey{e.Protocol, e.ExternalPort}
		if _, dup := k.in[ik]; dup {
			t.Fatalf("plan adds inbound %v %d, which the kernel holds", e.Protocol, e.ExternalPort)
		}
		k.in[ik] = e.Internal
	}
	for _, e := range p.AddOut {
		ok := endpoint{e.Protocol, e.Internal.Addr().As4(), e.Internal.Port()}
		if _, dup := k.out[ok]; dup {
			t.Fatalf("plan adds outbound %v %v, which the kernel holds", e.Protocol, e.Internal)
		}
		k.out[ok] = e.ExternalPort
	}
}

// check compares the kernel with what the model says it must hold.
func (k *kernel) check(t *testing.T, step int, m model) {
	t.Helper()
	in := make(map[inKey]netip.AddrPort)
	out := make(map[endpoint]uint16)
	pins := make(map[pinKey]string)
	f4 := make(map[inKey]string)
	for _, x := range m {
		fs := effectiveFilters(x.Filters)
		if x.Pinhole {
			pins[pinKeyOf(x)] = fmt.Sprint(fs)
			continue
		}
		if len(fs) > 0 {
			f4[inKey{x.Protocol, x.ExternalPort}] = fmt.Sprint(fs)
		}
		in[inKey{x.Protocol, x.ExternalPort}] = x.Internal
		ep := endpoint{x.Protocol, x.Internal.Addr().As4(), x.Internal.Port()}
		if _, ok := out[ep]; !ok {
			out[ep] = x.ExternalPort
		}
	}
	if len(in) != len(k.in) || len(out) != len(k.out) {
		t.Fatalf("step %d: kernel holds %d inbound, %d outbound; want %d, %d", step, len(k.in), len(k.out), len(in), len(out))
	}
	if !mapsEqual(pins, k.pins) || !mapsEqual(f4, k.f4) {
		t.Fatalf("step %d: kernel holds pinholes %v, filters %v; want %v, %v", step, k.pins, k.f4, pins, f4)
	}
	for ik, v := range in {
		if k.in[ik] != v {
			t.Fatalf("step %d: inbound %v %d -> %v; want %v", step, ik.proto, ik.eport, k.in[ik], v)
		}
	}
	for ep, v := range out {
		if k.out[ep] != v {
			t.Fatalf("step %d: outbound %v %v -> %d; want %d", step, ep.proto, ep.addr, k.out[ep], v)
		}
	}
}

// TestPlanAgainstModel applies random batches (few external ports and
// endpoints, so that they collide; a quarter of them pinholes, and filters
// on a third, some admitting every peer) and checks after each that a kernel
// following the plans holds what the plain model says, that no plan
// deletes what the kernel lacks or adds what it holds, and that an aborted
// plan leaves the State as it was.
func TestPlanAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	filters := func(v6 bool) []gateway.Filter {
		ps := []string{"203.0.113.0/24", "203.0.113.7/32", "0.0.0.0/0"}
		if v6 {
			ps = []string{"2001:db8:203::/64", "2001:db8:203::7/128", "::/0"}
		}
		var fs []gateway.Filter
		for range rng.IntN(3) * rng.IntN(2) {
			fs = append(fs, gateway.Filter{Remote: netip.MustParsePrefix(ps[rng.IntN(3)]), Port: uint16(rng.IntN(2) * 53)})
		}
		return fs
	}
	mapping := func() gateway.Mapping {
		proto := []gateway.Protocol{gateway.TCP, gateway.UDP}[rng.IntN(2)]
		lifetime := time.Duration(rng.IntN(3)) * time.Hour
		if rng.IntN(4) == 0 {
			a := netip.MustParseAddr("2001:db8:100::10").As16()
			a[15] += byte(rng.IntN(3))
			port := uint16(80 + rng.IntN(3))
			return gateway.Mapping{Protocol: proto, ExternalPort: port, Pinhole: true,
				Internal: netip.AddrPortFrom(netip.AddrFrom16(a), port), Lifetime: lifetime, Filters: filters(true)}
		}
		addr := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + rng.IntN(3))})
		return gateway.Mapping{
			Protocol:     proto,
			ExternalPort: uint16(1 + rng.IntN(12)),
			Internal:     netip.AddrPortFrom(addr, uint16(80+rng.IntN(3))),
			Lifetime:     lifetime,
			Filters:      filters(false),
		}
	}
	batch := func(max int) []gateway.Mapping {
		var ms []gateway.Mapping
		for range rng.IntN(max + 1) {
			ms = append(ms, mapping())
		}
		return ms
	}
	base := time.Now()
	s := New(Config{TimeoutGrace: time.Second}, base)
	k := &kernel{in: make(map[inKey]netip.AddrPort), out: make(map[endpoint]uint16),
		pins: make(map[pinKey]string), f4: make(map[inKey]string)}
	var m model
	for step := range 3000 {
		add, remove := batch(4), batch(4)
		if step%50 == 0 {
			add = batch(40) // past linearMax
		}
		now := base.Add(time.Duration(step) * time.Second)
		if step%7 == 0 {
			in, out, pins := clone(s.in), clone(s.out), clone(s.pins)
			pinFilters, filters4 := fmt.Sprint(s.pinFilters), fmt.Sprint(s.filters4)
			if _, err := s.Plan(now, add, remove); err != nil {
				t.Fatal(err)
			}
			s.Abort()
			if !mapsEqual(in, s.in) || !mapsEqual(out, s.out) || !mapsEqual(pins, s.pins) ||
				pinFilters != fmt.Sprint(s.pinFilters) || filters4 != fmt.Sprint(s.filters4) {
				t.Fatalf("step %d: Abort left the State changed", step)
			}
		}
		p, err := s.Plan(now, add, remove)
		if err != nil {
			t.Fatal(err)
		}
		s.Commit()
		k.apply(t, p)
		m.apply(add, remove)
		k.check(t, step, m)
		if step%100 == 99 {
			// Reconciled: the wanted State and its Plan, into an
			// empty kernel, and Plan goes on from that State.
			w, wp, err := s.Wanted(now, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(wp.DelIn)+len(wp.DelOut)+len(wp.DelPin)+len(wp.DelFiltered) != 0 {
				t.Fatalf("step %d: Wanted's Plan deletes", step)
			}
			s = w
			k = &kernel{in: make(map[inKey]netip.AddrPort), out: make(map[endpoint]uint16),
				pins: make(map[pinKey]string), f4: make(map[inKey]string)}
			k.apply(t, wp)
			k.check(t, step, m)
		}
	}
}

func clone[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func mapsEqual[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestPlanPending checks that a second Plan before Commit or Abort is
// refused, and that a batch with a pinhole that is not a global IPv6
// endpoint is refused whole.
func TestPlanPending(t *testing.T) {
	s := New(Config{}, time.Now())
	if _, err := s.Plan(time.Now(), []gateway.Mapping{tcp(1, "198.51.100.10:1", 0)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Plan(time.Now(), nil, nil); err != ErrPending {
		t.Errorf("Plan while pending = %v; want ErrPending", err)
	}
	s.Commit()
	pin := tcp(1, "198.51.100.10:1", 0)
	pin.Pinhole = true
	if _, err := s.Plan(time.Now(), []gateway.Mapping{tcp(2, "198.51.100.10:2", 0), pin}, nil); err == nil {
		t.Error("Plan of an IPv4 pinhole: no error")
	}
	if s.Len() != 1 {
		t.Errorf("a refused batch left %d mappings; want 1", s.Len())
	}
}
