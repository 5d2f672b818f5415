package nftfw

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/portlease/portlease/gateway"
)

// indexMapping returns the i-th of 100,000 mappings: TCP then UDP, external
// port 1024+i%50000, a thousand internal ports on each of a hundred
// addresses, with a one-hour lifetime.
func indexMapping(i int) gateway.Mapping {
	p := gateway.TCP
	if i >= 50000 {
		p = gateway.UDP
	}
	return gateway.Mapping{
		Protocol:     p,
		ExternalPort: uint16(1024 + i%50000),
		Internal:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 1000 >> 8), byte(i / 1000)}), uint16(20000+i%1000)),
		Lifetime:     time.Hour,
	}
}

// BenchmarkIndexAdopt plans and adopts 100,000 mappings, 1,000 a
// transaction, into an empty index, without a kernel. It reports the live
// heap the index takes, per mapping.
func BenchmarkIndexAdopt(b *testing.B) {
	const n, batch = 100000, 1000
	add := make([]gateway.Mapping, n)
	for i := range add {
		add[i] = indexMapping(i)
	}
	var perMapping float64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		b.StartTimer()

		x := newIndex(time.Now())
		for i := 0; i < n; i += batch {
			x.adopt(x.plan(time.Now(), DefaultTimeoutGrace, add[i:i+batch], nil, gone{}))
		}

		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		perMapping = float64(int64(ms.HeapAlloc)-int64(before)) / n
		if len(x.in) != n || len(x.out) != n {
			b.Fatalf("index holds %d mappings and %d endpoints; want %d", len(x.in), len(x.out), n)
		}
		runtime.KeepAlive(x)
		b.StartTimer()
	}
	b.ReportMetric(perMapping, "B/mapping")
}

// endpointOf returns the internal endpoint of m.
func endpointOf(m gateway.Mapping) outKey {
	return outKey{m.Protocol, m.Internal.Addr().As4(), m.Internal.Port()}
}

// describe lists the elements of p: "del in tcp 8080", "add in tcp 8080 ->
// 198.51.100.10:80 1h0m30s", "del out tcp 198.51.100.10:80", "add out tcp
// 198.51.100.10:80 -> 8080 1h0m30s", in the order they are sent.
func describe(t *testing.T, p *plan) []string {
	t.Helper()
	var out []string
	in := func(verb string, es []nftables.SetElement) {
		for _, e := range es {
			val := e.Val
			if val == nil {
				val = make([]byte, inboundDataLen)
			}
			m, err := decodeInbound(e.Key, val)
			if err != nil {
				t.Fatal(err)
			}
			s := fmt.Sprintf("%s in %v %d", verb, m.Protocol, m.ExternalPort)
			if e.Val != nil {
				s += fmt.Sprintf(" -> %v %v", m.Internal, e.Timeout)
			}
			out = append(out, s)
		}
	}
	outb := func(verb string, es []nftables.SetElement) {
		for _, e := range es {
			ep, err := decodeOutboundKey(e.Key)
			if err != nil {
				t.Fatal(err)
			}
			s := fmt.Sprintf("%s out %v %v", verb, ep.proto, ep.internal())
			if e.Val != nil {
				if len(e.Val) != outboundDataLen {
					t.Fatalf("outbound data %x", e.Val)
				}
				s += fmt.Sprintf(" -> %d %v", uint16(e.Val[0])<<8|uint16(e.Val[1]), e.Timeout)
			}
			out = append(out, s)
		}
	}
	in("del", p.delIn)
	outb("del", p.delOut)
	in("add", p.addIn)
	outb("add", p.addOut)
	return out
}

// checkIndex checks the invariants of x: each endpoint of a mapping in x.in
// has its ports in x.out and x.shared, oldest first, its oldest installed.
func checkIndex(t *testing.T, x *index) {
	t.Helper()
	ports := make(map[outKey][]uint16)
	for k, e := range x.in {
		ep := e.endpoint(k.proto)
		ports[ep] = append(ports[ep], k.eport)
	}
	if len(ports) != len(x.out) {
		t.Errorf("index: %d endpoints in out; want %d", len(x.out), len(ports))
	}
	for ep, ps := range ports {
		users, shared := x.shared[ep]
		if !shared {
			users = []uint16{x.out[ep]}
		}
		if shared && len(users) < 2 {
			t.Errorf("index: endpoint %v %v has shared ports %v", ep.proto, ep.internal(), users)
		}
		if !slices.Equal(slices.Sorted(slices.Values(users)), slices.Sorted(slices.Values(ps))) || x.out[ep] != users[0] {
			t.Errorf("index: endpoint %v %v: installed %d, ports %v; want the oldest of %v", ep.proto, ep.internal(), x.out[ep], users, ps)
		}
	}
	for ep := range x.shared {
		if _, ok := ports[ep]; !ok {
			t.Errorf("index: endpoint %v %v without mappings in shared", ep.proto, ep.internal())
		}
	}
}

// TestIndexSharedEndpoint checks the outbound element of an endpoint with
// several mappings: it holds the port of the oldest, passes to the next
// oldest when that goes, and is added again when its owner is renewed.
func TestIndexSharedEndpoint(t *testing.T) {
	const grace = 30 * time.Second
	base := time.Now()
	now := base
	x := newIndex(base)
	tcp := func(eport uint16, internal string, lifetime time.Duration) gateway.Mapping {
		m := tcpMapping(eport, internal)
		m.Lifetime = lifetime
		return m
	}
	const e, e2 = "198.51.100.10:80", "198.51.100.11:80"
	a, b, c, d := tcp(8080, e, time.Hour), tcp(8081, e, time.Hour), tcp(8082, e, 2*time.Hour), tcp(8083, e2, 0)
	steps := []struct {
		name        string
		after       time.Duration
		add, remove []gateway.Mapping
		absent      gone
		want        []string
		wantShared  []uint16 // of e
	}{{
		name: "two mappings of one endpoint: the first is installed",
		add:  []gateway.Mapping{a, b},
		want: []string{
			"add in tcp 8080 -> 198.51.100.10:80 1h0m30s",
			"add in tcp 8081 -> 198.51.100.10:80 1h0m30s",
			"add out tcp 198.51.100.10:80 -> 8080 1h0m30s",
		},
		wantShared: []uint16{8080, 8081},
	}, {
		name:       "a third leaves the outbound element alone",
		after:      time.Minute,
		add:        []gateway.Mapping{c},
		want:       []string{"add in tcp 8082 -> 198.51.100.10:80 2h0m30s"},
		wantShared: []uint16{8080, 8081, 8082},
	}, {
		name:   "removing the installed one installs the next oldest, with its timeout",
		after:  time.Minute,
		remove: []gateway.Mapping{a},
		want: []string{
			"del in tcp 8080",
			"del out tcp 198.51.100.10:80",
			"add out tcp 198.51.100.10:80 -> 8081 58m30s",
		},
		wantShared: []uint16{8081, 8082},
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
		wantShared: []uint16{8081, 8082},
	}, {
		name:       "renewing another leaves it alone",
		add:        []gateway.Mapping{c},
		remove:     []gateway.Mapping{c},
		want:       []string{"del in tcp 8082", "add in tcp 8082 -> 198.51.100.10:80 2h0m30s"},
		wantShared: []uint16{8081, 8082},
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
	}, {
		name:   "removing the last one, and one not held",
		remove: []gateway.Mapping{c, tcp(9999, e, 0)},
		want:   []string{"del in tcp 8082", "del out tcp 198.51.100.10:80"},
	}, {
		name: "a second mapping of the other endpoint, without timeout",
		add:  []gateway.Mapping{d},
		want: []string{"add in tcp 8083 -> 198.51.100.11:80 0s"},
	}, {
		name:   "elements the kernel timed out are not deleted",
		remove: []gateway.Mapping{tcp(8081, e2, 0)},
		absent: gone{in: map[inKey]bool{{gateway.TCP, 8081}: true}, out: map[outKey]bool{endpointOf(d): true}},
		want:   []string{"add out tcp 198.51.100.11:80 -> 8083 0s"},
	}}
	for _, st := range steps {
		now = now.Add(st.after)
		p := x.plan(now, grace, st.add, st.remove, st.absent)
		if got := describe(t, p); !slices.Equal(got, st.want) {
			t.Errorf("%s: elements\n%q\nwant\n%q", st.name, got, st.want)
		}
		x.adopt(p)
		checkIndex(t, &x)
		if got := x.shared[endpointOf(a)]; !slices.Equal(got, st.wantShared) {
			t.Errorf("%s: shared ports of %s = %v; want %v", st.name, e, got, st.wantShared)
		}
	}
	if len(x.in) != 1 || len(x.out) != 1 || len(x.shared) != 0 {
		t.Errorf("index holds %d mappings, %d endpoints, %d shared; want 1, 1, 0", len(x.in), len(x.out), len(x.shared))
	}
}

// TestPositions checks that positions numbers keys alike whether it
// searches them linearly or through its map.
func TestPositions(t *testing.T) {
	for _, hint := range []int{0, 1, linearMax + 1} {
		s := newPositions[inKey](hint)
		for round := range 2 {
			for i := range 3 * linearMax {
				k := inKey{gateway.UDP, uint16(1000 + i)}
				j, isNew := s.add(k)
				if j != i || isNew != (round == 0) {
					t.Fatalf("hint %d, round %d: add(%v) = %d, %v; want %d, %v", hint, round, k, j, isNew, i, round == 0)
				}
				if got := s.find(k); got != i {
					t.Fatalf("hint %d: find(%v) = %d; want %d", hint, k, got, i)
				}
			}
		}
		if got := s.find(inKey{gateway.TCP, 1000}); got != -1 {
			t.Errorf("hint %d: find of a key not added = %d; want -1", hint, got)
		}
	}
}
