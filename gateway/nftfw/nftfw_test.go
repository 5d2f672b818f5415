package nftfw

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// otherTable is a table of the host's own that the backend must leave alone.
const otherTable = `table ip hostfw {
	set blocked {
		type ipv4_addr
		elements = { 198.51.100.99 }
	}
	chain input {
		type filter hook input priority filter; policy accept;
		ip saddr @blocked drop
	}
}
`

// newFirewall makes a Firewall in ns with WAN link "wan0", closed when the
// test ends.
func newFirewall(t testing.TB, ns testNS, cfg Config) *Firewall {
	t.Helper()
	cfg.NetNS = ns.fd
	if cfg.ExternalInterface == "" {
		cfg.ExternalInterface = "wan0"
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// nftObjects lists the sets, maps and chains of table inet name in ns, as
// `nft -j` describes them, keyed "set NAME", "map NAME" or "chain NAME".
func nftObjects(t *testing.T, ns testNS, name string) map[string]map[string]any {
	t.Helper()
	var doc struct {
		Nftables []map[string]map[string]any `json:"nftables"`
	}
	out := ns.nft(t, "-j", "list", "table", "inet", name)
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j: %v\n%s", err, out)
	}
	objs := make(map[string]map[string]any)
	for _, item := range doc.Nftables {
		for kind, obj := range item {
			switch kind {
			case "set", "map", "chain":
				objs[kind+" "+fmt.Sprint(obj["name"])] = obj
			case "rule":
				objs[fmt.Sprintf("rule %v %v", obj["chain"], obj["handle"])] = obj
			}
		}
	}
	return objs
}

func TestNew(t *testing.T) {
	ns := newNS(t)
	ns.nftInput(t, otherTable)
	before := ns.nft(t, "list", "ruleset")

	f := newFirewall(t, ns, Config{})
	objs := nftObjects(t, ns, DefaultTable)
	want := map[string]string{
		"map inbound4":      `"type":["inet_proto","inet_service"]`,
		"map outbound4":     `"type":["inet_proto","ipv4_addr","inet_service"]`,
		"set extaddr4":      `"type":"ipv4_addr"`,
		"map snat4":         `"type":"ifname"`,
		"chain prerouting":  `"hook":"prerouting","name":"prerouting","policy":"accept","prio":-100`,
		"chain output":      `"hook":"output","name":"output","policy":"accept","prio":-100`,
		"chain postrouting": `"hook":"postrouting","name":"postrouting","policy":"accept","prio":90`,
		"chain forward":     `"hook":"forward","name":"forward","policy":"accept","prio":0`,
	}
	for name, frag := range want {
		obj, ok := objs[name]
		if !ok {
			t.Errorf("table inet %s has no %s; objects: %v", DefaultTable, name, slices.Sorted(maps.Keys(objs)))
			continue
		}
		b, _ := json.Marshal(obj)
		if !strings.Contains(string(b), frag) {
			t.Errorf("%s = %s; want it to contain %s", name, b, frag)
		}
	}
	for _, name := range []string{"map inbound4", "map outbound4"} {
		b, _ := json.Marshal(objs[name])
		if !strings.Contains(string(b), `"flags":["timeout"]`) {
			t.Errorf("%s = %s; want flags timeout", name, b)
		}
	}
	rules := 0
	for name := range objs {
		if strings.HasPrefix(name, "rule ") {
			rules++
		}
	}
	// 6 of the IPv4 mappings, 2 of pinholes in forward, 2 of filtered IPv4
	// mappings in prefilter, and in peers6 and peers4 one per set of
	// filters and 2 more.
	if want := 10 + len(f.rs.peers6) + len(f.rs.peers4) + 4; rules != want {
		t.Errorf("table has %d rules; want %d", rules, want)
	}

	// The host's table is untouched.
	after := ns.nft(t, "list", "table", "ip", "hostfw")
	if !strings.Contains(before, after) {
		t.Errorf("table ip hostfw changed:\n%s\nwant it as in\n%s", after, before)
	}

	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := ns.nft(t, "list", "ruleset"); got != before {
		t.Errorf("ruleset after Close:\n%s\nwant as before New:\n%s", got, before)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := context.Background()
	if err := f.Apply(ctx, []gateway.Mapping{tcpMapping(8080, "198.51.100.10:80")}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close = %v; want ErrClosed", err)
	}
	if err := f.SetExternalAddress(ctx, netip.MustParseAddr("203.0.113.1")); !errors.Is(err, ErrClosed) {
		t.Errorf("SetExternalAddress after Close = %v; want ErrClosed", err)
	}
}

// TestListingLoadsBack checks that what nft prints of the table, elements
// included, is valid nft input: operators save and restore rulesets so.
func TestListingLoadsBack(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{InternalInterfaces: []string{"lan0", "lan1"}})
	ctx := context.Background()
	if err := f.SetExternalAddress(ctx, netip.MustParseAddr("203.0.113.1")); err != nil {
		t.Fatal(err)
	}
	m := tcpMapping(8080, "198.51.100.10:80")
	m.Lifetime = time.Hour
	if err := f.Apply(ctx, []gateway.Mapping{m, udpMapping(5000, "198.51.100.11:5001")}, nil); err != nil {
		t.Fatal(err)
	}
	listing := ns.nft(t, "list", "table", "inet", DefaultTable)
	t.Logf("nft list table inet %s:\n%s", DefaultTable, listing)
	ns.nft(t, "delete", "table", "inet", DefaultTable)
	ns.nftInput(t, listing)
	again := ns.nft(t, "list", "table", "inet", DefaultTable)
	strip := func(s string) string { // expiry times differ
		var b strings.Builder
		for _, f := range strings.Fields(s) {
			if !strings.HasPrefix(f, "expires") && !strings.ContainsAny(f[:1], "0123456789") {
				b.WriteString(f + " ")
			}
		}
		return b.String()
	}
	if strip(again) != strip(listing) {
		t.Errorf("loaded back:\n%s\nwant:\n%s", again, listing)
	}
}

// TestNewOverStaleTable checks that New makes a table left by someone else
// what the configuration needs: foreign sets and chains go, a map and a
// chain of the wrong definition are made anew.
func TestNewOverStaleTable(t *testing.T) {
	ns := newNS(t)
	ns.nftInput(t, `table inet portleased {
	set junk { type ipv4_addr; elements = { 198.51.100.77 } }
	map inbound4 { type ipv4_addr : ipv4_addr; elements = { 198.51.100.1 : 198.51.100.2 } }
	chain prerouting {
		type nat hook prerouting priority 50; policy accept;
		ip daddr @junk dnat ip to 198.51.100.78
	}
	chain extra {
		ip daddr @junk accept
	}
}
`)
	f := newFirewall(t, ns, Config{})
	objs := nftObjects(t, ns, DefaultTable)
	for _, name := range []string{"set junk", "chain extra"} {
		if _, ok := objs[name]; ok {
			t.Errorf("stale %s survived New", name)
		}
	}
	b, _ := json.Marshal(objs["map inbound4"])
	if !strings.Contains(string(b), `"type":["inet_proto","inet_service"]`) {
		t.Errorf("map inbound4 after New over a stale table = %s; want the backend's", b)
	}
	b, _ = json.Marshal(objs["chain prerouting"])
	if !strings.Contains(string(b), `"prio":-100`) {
		t.Errorf("chain prerouting after New over a stale table = %s; want priority -100", b)
	}
	if ms, err := f.Elements(context.Background()); err != nil || len(ms) != 0 {
		t.Errorf("Elements after New over a stale table = %v, %v; want none", ms, err)
	}
}

// TestNewKeepsElements checks that New over the table of a run that was
// never closed (a crash, or a restart) keeps the elements of its maps and
// replaces its rules, and that the new Firewall's index starts empty.
func TestNewKeepsElements(t *testing.T) {
	ns := newNS(t)
	ctx := context.Background()
	f := newFirewall(t, ns, Config{})
	if err := f.SetExternalAddress(ctx, netip.MustParseAddr("203.0.113.1")); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(ctx, []gateway.Mapping{tcpMapping(8080, "198.51.100.10:80")}, nil); err != nil {
		t.Fatal(err)
	}
	before := nftObjects(t, ns, DefaultTable)
	g := newFirewall(t, ns, Config{})
	if g.Len() != 0 {
		t.Errorf("Len of a new Firewall = %d; want 0", g.Len())
	}
	if got, want := inboundElements(t, g), []string{"tcp 8080 -> 198.51.100.10:80"}; !slices.Equal(got, want) {
		t.Errorf("inbound elements after New = %v; want %v", got, want)
	}
	if got, want := outboundElements(t, g), []string{"tcp 198.51.100.10:80 -> 8080"}; !slices.Equal(got, want) {
		t.Errorf("outbound elements after New = %v; want %v", got, want)
	}
	if !strings.Contains(ns.nft(t, "list", "set", "inet", DefaultTable, extaddrName), "203.0.113.1") {
		t.Errorf("set %s lost the external address", extaddrName)
	}
	after := nftObjects(t, ns, DefaultTable)
	rules := func(objs map[string]map[string]any) (n int, handles []string) {
		for name := range objs {
			if strings.HasPrefix(name, "rule ") {
				n++
				handles = append(handles, name)
			}
		}
		slices.Sort(handles)
		return n, handles
	}
	n0, h0 := rules(before)
	n1, h1 := rules(after)
	if n0 != n1 || slices.Equal(h0, h1) {
		t.Errorf("rules before New %v, after %v; want as many, replaced", h0, h1)
	}
}

func TestNewConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{ExternalInterface: "a-name-far-too-long"},
		{ExternalInterface: "wan0", InternalInterfaces: []string{"wan0"}},
		{ExternalInterface: "wan0", InternalInterfaces: []string{""}},
	} {
		if _, err := New(cfg); err == nil || !strings.HasPrefix(err.Error(), "nftfw: ") {
			t.Errorf("New(%+v) = %v; want an nftfw error", cfg, err)
		}
	}
}

func tcpMapping(eport uint16, internal string) gateway.Mapping {
	return gateway.Mapping{Protocol: gateway.TCP, ExternalPort: eport, Internal: netip.MustParseAddrPort(internal)}
}

func udpMapping(eport uint16, internal string) gateway.Mapping {
	return gateway.Mapping{Protocol: gateway.UDP, ExternalPort: eport, Internal: netip.MustParseAddrPort(internal)}
}

// outboundElements reads the outbound map: "proto internal -> eport".
func outboundElements(t *testing.T, f *Firewall) []string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	elems, err := f.conn.GetSetElements(f.rs.outbound)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range elems {
		ep, err := decodeOutboundKey(e.Key)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Val) != outboundDataLen {
			t.Fatalf("outbound element data %x", e.Val)
		}
		out = append(out, fmt.Sprintf("%v %v -> %d", ep.proto, ep.internal(), uint16(e.Val[0])<<8|uint16(e.Val[1])))
	}
	slices.Sort(out)
	return out
}

// inboundElements reads the inbound map: "proto eport -> internal".
func inboundElements(t *testing.T, f *Firewall) []string {
	t.Helper()
	ms, err := f.Elements(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%v %d -> %v", m.Protocol, m.ExternalPort, m.Internal))
	}
	slices.Sort(out)
	return out
}

func TestApply(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{})
	ctx := context.Background()
	steps := []struct {
		name         string
		add, remove  []gateway.Mapping
		wantIn       []string
		wantOut      []string
		wantLen      int
		wantErr      error
		wantAnyError bool
	}{{
		name:    "add",
		add:     []gateway.Mapping{tcpMapping(8080, "198.51.100.10:80"), udpMapping(5000, "198.51.100.10:5001")},
		wantIn:  []string{"tcp 8080 -> 198.51.100.10:80", "udp 5000 -> 198.51.100.10:5001"},
		wantOut: []string{"tcp 198.51.100.10:80 -> 8080", "udp 198.51.100.10:5001 -> 5000"},
	}, {
		name:    "replace by remove and add",
		remove:  []gateway.Mapping{tcpMapping(8080, "198.51.100.10:80")},
		add:     []gateway.Mapping{tcpMapping(8080, "198.51.100.11:81")},
		wantIn:  []string{"tcp 8080 -> 198.51.100.11:81", "udp 5000 -> 198.51.100.10:5001"},
		wantOut: []string{"tcp 198.51.100.11:81 -> 8080", "udp 198.51.100.10:5001 -> 5000"},
	}, {
		name:    "replace by add alone",
		add:     []gateway.Mapping{tcpMapping(8080, "198.51.100.10:80")},
		wantIn:  []string{"tcp 8080 -> 198.51.100.10:80", "udp 5000 -> 198.51.100.10:5001"},
		wantOut: []string{"tcp 198.51.100.10:80 -> 8080", "udp 198.51.100.10:5001 -> 5000"},
	}, {
		name:    "renew the same mapping",
		remove:  []gateway.Mapping{tcpMapping(8080, "198.51.100.10:80")},
		add:     []gateway.Mapping{tcpMapping(8080, "198.51.100.10:80")},
		wantIn:  []string{"tcp 8080 -> 198.51.100.10:80", "udp 5000 -> 198.51.100.10:5001"},
		wantOut: []string{"tcp 198.51.100.10:80 -> 8080", "udp 198.51.100.10:5001 -> 5000"},
	}, {
		name:    "remove what is not there",
		remove:  []gateway.Mapping{tcpMapping(9999, "198.51.100.10:99"), udpMapping(8080, "198.51.100.10:80")},
		wantIn:  []string{"tcp 8080 -> 198.51.100.10:80", "udp 5000 -> 198.51.100.10:5001"},
		wantOut: []string{"tcp 198.51.100.10:80 -> 8080", "udp 198.51.100.10:5001 -> 5000"},
	}, {
		name:    "remove twice in one call",
		remove:  []gateway.Mapping{udpMapping(5000, "198.51.100.10:5001"), udpMapping(5000, "198.51.100.10:5001")},
		wantIn:  []string{"tcp 8080 -> 198.51.100.10:80"},
		wantOut: []string{"tcp 198.51.100.10:80 -> 8080"},
	}, {
		name:    "second mapping of an endpoint keeps the first outbound port",
		add:     []gateway.Mapping{tcpMapping(8081, "198.51.100.10:80")},
		wantIn:  []string{"tcp 8080 -> 198.51.100.10:80", "tcp 8081 -> 198.51.100.10:80"},
		wantOut: []string{"tcp 198.51.100.10:80 -> 8080"},
	}, {
		name:    "outbound port passes to the remaining mapping",
		remove:  []gateway.Mapping{tcpMapping(8080, "198.51.100.10:80")},
		wantIn:  []string{"tcp 8081 -> 198.51.100.10:80"},
		wantOut: []string{"tcp 198.51.100.10:80 -> 8081"},
	}, {
		name:    "IPv4-mapped IPv6 internal address",
		add:     []gateway.Mapping{udpMapping(6000, "[::ffff:198.51.100.12]:6000")},
		wantIn:  []string{"tcp 8081 -> 198.51.100.10:80", "udp 6000 -> 198.51.100.12:6000"},
		wantOut: []string{"tcp 198.51.100.10:80 -> 8081", "udp 198.51.100.12:6000 -> 6000"},
	}, {
		name:    "IPv6 refused, nothing applied",
		add:     []gateway.Mapping{udpMapping(7000, "198.51.100.13:7000"), udpMapping(7001, "[2001:db8:100::10]:7001")},
		remove:  []gateway.Mapping{tcpMapping(8081, "198.51.100.10:80")},
		wantIn:  []string{"tcp 8081 -> 198.51.100.10:80", "udp 6000 -> 198.51.100.12:6000"},
		wantOut: []string{"tcp 198.51.100.10:80 -> 8081", "udp 198.51.100.12:6000 -> 6000"},
		wantErr: ErrIPv6,
	}, {
		name:         "port 0 refused",
		add:          []gateway.Mapping{tcpMapping(0, "198.51.100.10:80")},
		wantIn:       []string{"tcp 8081 -> 198.51.100.10:80", "udp 6000 -> 198.51.100.12:6000"},
		wantOut:      []string{"tcp 198.51.100.10:80 -> 8081", "udp 198.51.100.12:6000 -> 6000"},
		wantAnyError: true,
	}, {
		name:         "ICMP refused",
		add:          []gateway.Mapping{{Protocol: 1, ExternalPort: 1, Internal: netip.MustParseAddrPort("198.51.100.10:1")}},
		wantIn:       []string{"tcp 8081 -> 198.51.100.10:80", "udp 6000 -> 198.51.100.12:6000"},
		wantOut:      []string{"tcp 198.51.100.10:80 -> 8081", "udp 198.51.100.12:6000 -> 6000"},
		wantAnyError: true,
	}, {
		name:   "remove all",
		remove: []gateway.Mapping{{Protocol: gateway.TCP, ExternalPort: 8081}, {Protocol: gateway.UDP, ExternalPort: 6000}},
	}}
	for _, st := range steps {
		err := f.Apply(ctx, st.add, st.remove)
		switch {
		case st.wantErr != nil && !errors.Is(err, st.wantErr):
			t.Errorf("%s: Apply = %v; want %v", st.name, err, st.wantErr)
		case st.wantAnyError && err == nil:
			t.Errorf("%s: Apply = nil; want an error", st.name)
		case st.wantErr == nil && !st.wantAnyError && err != nil:
			t.Errorf("%s: Apply = %v", st.name, err)
		}
		if got := inboundElements(t, f); !slices.Equal(got, st.wantIn) {
			t.Errorf("%s: inbound4 = %q; want %q", st.name, got, st.wantIn)
		}
		if got := outboundElements(t, f); !slices.Equal(got, st.wantOut) {
			t.Errorf("%s: outbound4 = %q; want %q", st.name, got, st.wantOut)
		}
		if got := f.Len(); got != len(st.wantIn) {
			t.Errorf("%s: Len() = %d; want %d", st.name, got, len(st.wantIn))
		}
	}
}

func TestApplyTimeouts(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{TimeoutGrace: 10 * time.Second})
	ctx := context.Background()
	long := tcpMapping(8080, "198.51.100.10:80")
	long.Lifetime = time.Hour
	forever := tcpMapping(8081, "198.51.100.10:81")
	if err := f.Apply(ctx, []gateway.Mapping{long, forever}, nil); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	elems, err := f.conn.GetSetElements(f.rs.inbound)
	f.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	timeouts := make(map[uint16]time.Duration)
	for _, e := range elems {
		m, err := decodeInbound(e.Key, e.Val)
		if err != nil {
			t.Fatal(err)
		}
		timeouts[m.ExternalPort] = e.Timeout
	}
	if got, want := timeouts[8080], time.Hour+10*time.Second; got != want {
		t.Errorf("timeout of a mapping with Lifetime 1h = %v; want %v", got, want)
	}
	if got := timeouts[8081]; got != 0 {
		t.Errorf("timeout of a mapping with no Lifetime = %v; want none", got)
	}
	ms, err := f.Elements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		switch m.ExternalPort {
		case 8080:
			if m.Lifetime <= 59*time.Minute || m.Lifetime > time.Hour {
				t.Errorf("Elements: Lifetime of 8080 = %v; want about 1h", m.Lifetime)
			}
		case 8081:
			if m.Lifetime != 0 {
				t.Errorf("Elements: Lifetime of 8081 = %v; want 0", m.Lifetime)
			}
		}
	}
}

// TestKernelTimeout checks that an element with a short Lifetime disappears
// by itself, and that the backend copes with the kernel having dropped what
// it still holds: removing it, replacing it, or adding it back.
func TestKernelTimeout(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{TimeoutGrace: -1})
	ctx := context.Background()
	short := tcpMapping(8080, "198.51.100.10:80")
	short.Lifetime = 300 * time.Millisecond
	short2 := tcpMapping(8082, "198.51.100.10:82")
	short2.Lifetime = 300 * time.Millisecond
	keep := udpMapping(5000, "198.51.100.10:5000")
	if err := f.Apply(ctx, []gateway.Mapping{short, short2, keep}, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"udp 5000 -> 198.51.100.10:5000"}
	waitFor(t, 30*time.Second, "short mappings to time out", func() bool {
		return slices.Equal(inboundElements(t, f), want) && len(outboundElements(t, f)) == 1
	})
	if got := f.Len(); got != 3 {
		t.Errorf("Len() = %d; want 3 (the backend follows the lease table, not the kernel)", got)
	}

	// Remove one that timed out, replace the other, add a new one: one
	// transaction, which must not fail on the missing elements.
	again := tcpMapping(8082, "198.51.100.10:83")
	fresh := tcpMapping(8083, "198.51.100.10:84")
	if err := f.Apply(ctx, []gateway.Mapping{again, fresh}, []gateway.Mapping{short}); err != nil {
		t.Fatalf("Apply after kernel timeout: %v", err)
	}
	wantIn := []string{"tcp 8082 -> 198.51.100.10:83", "tcp 8083 -> 198.51.100.10:84", "udp 5000 -> 198.51.100.10:5000"}
	if got := inboundElements(t, f); !slices.Equal(got, wantIn) {
		t.Errorf("inbound4 = %q; want %q", got, wantIn)
	}
	wantOut := []string{"tcp 198.51.100.10:83 -> 8082", "tcp 198.51.100.10:84 -> 8083", "udp 198.51.100.10:5000 -> 5000"}
	if got := outboundElements(t, f); !slices.Equal(got, wantOut) {
		t.Errorf("outbound4 = %q; want %q", got, wantOut)
	}
	if got := f.Len(); got != 3 {
		t.Errorf("Len() = %d; want 3", got)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestApplyBatch(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{})
	ctx := context.Background()
	mon := startMonitor(t, ns)
	for _, n := range []int{1000, 5000} {
		batch := make([]gateway.Mapping, n)
		for i := range batch {
			batch[i] = gateway.Mapping{
				Protocol:     gateway.UDP,
				ExternalPort: uint16(10000 + i%40000),
				Internal:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i/40000)}), uint16(20000+i%40000)),
				Lifetime:     time.Hour,
			}
		}
		if n > 40000 {
			t.Fatal("batch too large for unique ports")
		}
		if err := f.Apply(ctx, batch, nil); err != nil {
			t.Fatalf("Apply(%d additions): %v", n, err)
		}
		if got := mon.waitGenerations(t, 500*time.Millisecond); got != 1 {
			t.Errorf("Apply(%d additions) committed %d transactions; want 1", n, got)
		}
		ms, err := f.Elements(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(ms, func(a, b gateway.Mapping) int { return cmp.Compare(a.ExternalPort, b.ExternalPort) })
		if len(ms) != n || f.Len() != n {
			t.Fatalf("after Apply(%d additions): %d elements, Len() = %d", n, len(ms), f.Len())
		}
		for i, m := range ms {
			if m.ExternalPort != batch[i].ExternalPort || m.Internal != batch[i].Internal {
				t.Fatalf("element %d = %+v; want %+v", i, m, batch[i])
			}
		}
		if err := f.Apply(ctx, nil, batch); err != nil {
			t.Fatalf("Apply(%d removals): %v", n, err)
		}
		if got := mon.waitGenerations(t, 500*time.Millisecond); got != 1 {
			t.Errorf("Apply(%d removals) committed %d transactions; want 1", n, got)
		}
		if got := inboundElements(t, f); len(got) != 0 || f.Len() != 0 {
			t.Errorf("after removing all: %d elements, Len() = %d", len(got), f.Len())
		}
	}
}

func TestSetExternalAddress(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{})
	ctx := context.Background()
	read := func() (addrs, snat []string) {
		t.Helper()
		f.mu.Lock()
		defer f.mu.Unlock()
		es, err := f.conn.GetSetElements(f.rs.extaddr)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			addrs = append(addrs, netip.AddrFrom4([4]byte(e.Key)).String())
		}
		es, err = f.conn.GetSetElements(f.rs.snat)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			snat = append(snat, strings.TrimRight(string(e.Key), "\x00")+" "+netip.AddrFrom4([4]byte(e.Val)).String())
		}
		return addrs, snat
	}
	for _, tc := range []struct {
		addr      netip.Addr
		wantAddrs []string
		wantSNAT  []string
	}{
		{netip.MustParseAddr("203.0.113.1"), []string{"203.0.113.1"}, []string{"wan0 203.0.113.1"}},
		{netip.MustParseAddr("203.0.113.5"), []string{"203.0.113.5"}, []string{"wan0 203.0.113.5"}},
		{netip.MustParseAddr("::ffff:203.0.113.6"), []string{"203.0.113.6"}, []string{"wan0 203.0.113.6"}},
		{netip.Addr{}, nil, nil},
	} {
		if err := f.SetExternalAddress(ctx, tc.addr); err != nil {
			t.Fatalf("SetExternalAddress(%v): %v", tc.addr, err)
		}
		addrs, snat := read()
		if !slices.Equal(addrs, tc.wantAddrs) || !slices.Equal(snat, tc.wantSNAT) {
			t.Errorf("after SetExternalAddress(%v): extaddr4 %q, snat4 %q; want %q, %q", tc.addr, addrs, snat, tc.wantAddrs, tc.wantSNAT)
		}
	}
	if err := f.SetExternalAddress(ctx, netip.MustParseAddr("2001:db8:203::1")); !errors.Is(err, ErrIPv6) {
		t.Errorf("SetExternalAddress(IPv6) = %v; want ErrIPv6", err)
	}
}

// TestApplyConcurrent runs Apply from several goroutines: each transaction
// must stay whole (run with -race).
func TestApplyConcurrent(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{})
	ctx := context.Background()
	const workers, each = 8, 50
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				m := tcpMapping(uint16(10000+w*each+i), fmt.Sprintf("198.51.100.%d:%d", 10+w, 1000+i))
				if err := f.Apply(ctx, []gateway.Mapping{m}, nil); err != nil {
					errs <- err
					return
				}
				if i%2 == 1 {
					if err := f.Apply(ctx, nil, []gateway.Mapping{m}); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got, want := len(inboundElements(t, f)), workers*each/2; got != want || f.Len() != want {
		t.Errorf("%d elements, Len() = %d; want %d", got, f.Len(), want)
	}
}

func TestContextCancelled(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Apply(ctx, []gateway.Mapping{tcpMapping(8080, "198.51.100.10:80")}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply(cancelled) = %v; want context.Canceled", err)
	}
	if f.Len() != 0 {
		t.Errorf("Len() = %d after a cancelled Apply", f.Len())
	}
}
