package iptfw

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/fwplan"
)

func mapping(proto gateway.Protocol, eport uint16, internal string) gateway.Mapping {
	return gateway.Mapping{Protocol: proto, ExternalPort: eport, Internal: netip.MustParseAddrPort(internal), Lifetime: time.Hour}
}

// plan plans add and remove into s, commits and returns the changes
// against m, applying them to m.
func plan(t *testing.T, s *fwplan.State, m *mirror, add, remove []gateway.Mapping) ([]change, *script) {
	t.Helper()
	p, err := s.Plan(time.Now(), add, remove)
	if err != nil {
		t.Fatal(err)
	}
	s.Commit()
	cs, err := planSpecs(p)
	if err != nil {
		t.Fatal(err)
	}
	cs, sc := m.changeScript(cs)
	m.apply(cs)
	return cs, sc
}

func TestPlanRendering(t *testing.T) {
	s, m := fwplan.New(stateConfig(false), time.Now()), newMirror()
	a := mapping(gateway.TCP, 40080, "198.51.100.10:8080")
	_, sc := plan(t, s, m, []gateway.Mapping{a}, nil)
	// The first rule of a bucket makes it, and its fanout, with their
	// jumps: port 40080 is in 39,936 to 40,959, bucket 39; 8080 in 7.
	want := "*nat\n" +
		":PORTLEASE-DNAT-TCP - [0:0]\n" +
		":PORTLEASE-DNAT-TCP-39 - [0:0]\n" +
		":PORTLEASE-SNAT-TCP - [0:0]\n" +
		":PORTLEASE-SNAT-TCP-7 - [0:0]\n" +
		"-A PORTLEASE-DNAT -p tcp -j PORTLEASE-DNAT-TCP\n" +
		"-A PORTLEASE-DNAT-TCP -p tcp -m tcp --dport 39936:40959 -j PORTLEASE-DNAT-TCP-39\n" +
		"-A PORTLEASE-DNAT-TCP-39 -p tcp -m tcp --dport 40080 -j DNAT --to-destination 198.51.100.10:8080\n" +
		"-A PORTLEASE-SNAT -p tcp -j PORTLEASE-SNAT-TCP\n" +
		"-A PORTLEASE-SNAT-TCP -p tcp -m tcp --sport 7168:8191 -j PORTLEASE-SNAT-TCP-7\n" +
		"-A PORTLEASE-SNAT-TCP-7 -s 198.51.100.10/32 -p tcp -m tcp --sport 8080 -j MASQUERADE --to-ports 40080\n" +
		"COMMIT\n"
	if got := string(sc.text(false)); got != want {
		t.Errorf("add: got\n%s\nwant\n%s", got, want)
	}
	if !sc.empty(true) {
		t.Errorf("add of an IPv4 mapping writes ip6tables lines: %s", sc.text(true))
	}

	// A renewal changes nothing: no lines, no program.
	if cs, sc := plan(t, s, m, []gateway.Mapping{a}, []gateway.Mapping{a}); len(cs) != 0 || !sc.empty(false) || !sc.empty(true) {
		t.Errorf("renewal: changes %v, script %q", cs, sc.text(false))
	}
	if cs, _ := plan(t, s, m, []gateway.Mapping{a}, nil); len(cs) != 0 {
		t.Errorf("re-add: changes %v", cs)
	}

	// A second mapping of the endpoint: its DNAT only; the first keeps the
	// outbound port.
	b := mapping(gateway.TCP, 40081, "198.51.100.10:8080")
	_, sc = plan(t, s, m, []gateway.Mapping{b}, nil)
	want = "*nat\n-A PORTLEASE-DNAT-TCP-39 -p tcp -m tcp --dport 40081 -j DNAT --to-destination 198.51.100.10:8080\nCOMMIT\n"
	if got := string(sc.text(false)); got != want {
		t.Errorf("second mapping: got\n%s\nwant\n%s", got, want)
	}

	// Removing the first moves the outbound port to the second: deletion
	// by exact spec.
	_, sc = plan(t, s, m, nil, []gateway.Mapping{{Protocol: gateway.TCP, ExternalPort: 40080}})
	want = "*nat\n" +
		"-D PORTLEASE-DNAT-TCP-39 -p tcp -m tcp --dport 40080 -j DNAT --to-destination 198.51.100.10:8080\n" +
		"-D PORTLEASE-SNAT-TCP-7 -s 198.51.100.10/32 -p tcp -m tcp --sport 8080 -j MASQUERADE --to-ports 40080\n" +
		"-A PORTLEASE-SNAT-TCP-7 -s 198.51.100.10/32 -p tcp -m tcp --sport 8080 -j MASQUERADE --to-ports 40081\n" +
		"COMMIT\n"
	if got := string(sc.text(false)); got != want {
		t.Errorf("remove owner: got\n%s\nwant\n%s", got, want)
	}
}

func TestFilteredAndPinholeRendering(t *testing.T) {
	s, m := fwplan.New(stateConfig(false), time.Now()), newMirror()
	a := mapping(gateway.UDP, 40053, "198.51.100.10:53")
	a.Filters = []gateway.Filter{
		{Remote: netip.MustParsePrefix("::ffff:192.0.2.0/120")},
		{Remote: netip.MustParsePrefix("0.0.0.0/0"), Port: 7},
	}
	pin := gateway.Mapping{Protocol: gateway.TCP, ExternalPort: 80, Internal: netip.MustParseAddrPort("[2001:db8:100::10]:80"),
		Pinhole: true, Filters: []gateway.Filter{{Remote: netip.MustParsePrefix("2001:db8:5::/48"), Port: 9}}}
	_, sc := plan(t, s, m, []gateway.Mapping{a, pin}, nil)
	want4 := []string{
		"-A PORTLEASE-DNAT-UDP-39 -s 192.0.2.0/24 -p udp -m udp --dport 40053 -j DNAT --to-destination 198.51.100.10:53",
		"-A PORTLEASE-DNAT-UDP-39 -p udp -m udp --sport 7 --dport 40053 -j DNAT --to-destination 198.51.100.10:53",
	}
	got := string(sc.text(false))
	for _, w := range want4 {
		if !strings.Contains(got, w+"\n") {
			t.Errorf("filtered mapping: %q missing from\n%s", w, got)
		}
	}
	want6 := "*filter\n" +
		":PORTLEASE-PINHOLES-TCP - [0:0]\n" +
		":PORTLEASE-PINHOLES-TCP-0 - [0:0]\n" +
		"-A PORTLEASE-PINHOLES -p tcp -j PORTLEASE-PINHOLES-TCP\n" +
		"-A PORTLEASE-PINHOLES-TCP -p tcp -m tcp --dport 0:1023 -j PORTLEASE-PINHOLES-TCP-0\n" +
		"-A PORTLEASE-PINHOLES-TCP-0 -s 2001:db8:5::/48 -d 2001:db8:100::10/128 -p tcp -m tcp --sport 9 --dport 80 -j ACCEPT\n" +
		"-A PORTLEASE-PINHOLES-TCP-0 -d 2001:db8:100::10/128 -p tcp -m tcp --dport 80 -m conntrack --ctdir ORIGINAL -j DROP\n" +
		"COMMIT\n"
	if got := string(sc.text(true)); got != want6 {
		t.Errorf("pinhole: got\n%s\nwant\n%s", got, want6)
	}
	// Renewing both writes nothing.
	if cs, _ := plan(t, s, m, []gateway.Mapping{a, pin}, nil); len(cs) != 0 {
		t.Errorf("renewal of filtered mapping and pinhole: changes %v", cs)
	}
	// Dropping the filters rewrites the mapping's rules.
	a.Filters = nil
	_, sc = plan(t, s, m, []gateway.Mapping{a}, nil)
	got = string(sc.text(false))
	if !strings.Contains(got, "-D PORTLEASE-DNAT-UDP-39 -s 192.0.2.0/24 ") || !strings.Contains(got, "-A PORTLEASE-DNAT-UDP-39 -p udp -m udp --dport 40053 -j DNAT") ||
		strings.Contains(got, ":PORTLEASE") {
		t.Errorf("filters dropped: got\n%s", got)
	}
}

// saveOutput is iptables-save output holding the backend's chains of
// layout l and mirror m, and an operator's rules.
func saveOutput(l layout, m *mirror, v6 bool) string {
	var b strings.Builder
	for _, t := range tablesOf(v6) {
		b.WriteString("# Generated by iptables-save v1.8.9\n*" + t.name() + "\n:PREROUTING ACCEPT [0:0]\n")
		var chains []chainSpecs
		for _, c := range chainDefs() {
			if c.role == roleFixed {
				chains = append(chains, chainSpecs{c, l.fixedSpecs(c)})
			}
		}
		chains = append(chains, m.buckets.dispatch()...)
		for _, c := range chains {
			if c.def.table == t {
				b.WriteString(":" + c.def.name + " - [0:0]\n")
			}
		}
		for _, j := range jumpDefs() {
			if j.table == t {
				b.WriteString("-A " + j.builtin + " " + j.spec() + "\n")
			}
		}
		b.WriteString("-A " + "FORWARD -p tcp -m tcp --dport 22 -j ACCEPT\n")
		for _, c := range chains {
			if c.def.table != t {
				continue
			}
			specs := c.specs
			for k, s := range m.elems {
				if k.chain() == c.def {
					specs = append(specs, s...)
				}
			}
			for _, s := range specs {
				b.WriteString("-A " + c.def.name + " " + s + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

func TestDumpDigestAndList(t *testing.T) {
	s, m := fwplan.New(stateConfig(false), time.Now()), newMirror()
	l := layout{ext: "wan0", internal: []string{"lan0"}, addr: netip.MustParseAddr("203.0.113.1"), mark: DefaultMark}
	m.setFixed(l)
	a := mapping(gateway.TCP, 40080, "198.51.100.10:8080")
	b := mapping(gateway.UDP, 40053, "198.51.100.11:53")
	b.Filters = []gateway.Filter{{Remote: netip.MustParsePrefix("192.0.2.0/24"), Port: 7}}
	pin := gateway.Mapping{Protocol: gateway.UDP, ExternalPort: 5000, Internal: netip.MustParseAddrPort("[2001:db8:100::10]:5000"), Pinhole: true}
	plan(t, s, m, []gateway.Mapping{a, b, pin}, nil)

	d := newDump()
	out4, out6 := saveOutput(l, m, false), saveOutput(l, m, true)
	d.parse(out4, false)
	d.parse(out6, true)
	if d.digest != m.digest {
		t.Errorf("digest of the dump %+v, of the mirror %+v", d.digest, m.digest)
	}
	if sum := digestOf(out4, false); sum.n+digestOf(out6, true).n != m.digest.n {
		t.Errorf("digestOf counts %d rules, mirror %d", sum.n, m.digest.n)
	}
	got := d.mappings()
	for i := range got {
		got[i].Lifetime = time.Hour
	}
	for _, w := range []gateway.Mapping{a, b, pin} {
		if !slices.ContainsFunc(got, func(g gateway.Mapping) bool {
			return g.Protocol == w.Protocol && g.ExternalPort == w.ExternalPort && g.Internal == w.Internal &&
				g.Pinhole == w.Pinhole && slices.Equal(g.Filters, w.Filters)
		}) {
			t.Errorf("List lacks %+v; got %+v", w, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("List: %d mappings, want 3: %+v", len(got), got)
	}

	// A flushed chain changes the digest.
	flushed := strings.ReplaceAll(out4, "-A PORTLEASE-DNAT-TCP-39 -p tcp -m tcp --dport 40080", "-A OTHER -p tcp -m tcp --dport 40080")
	if digestOf(flushed, false) == digestOf(out4, false) {
		t.Error("a deleted rule leaves the digest as it was")
	}
}

func TestRepairScript(t *testing.T) {
	s, m := fwplan.New(stateConfig(false), time.Now()), newMirror()
	l := layout{ext: "wan0", addr: netip.MustParseAddr("203.0.113.1"), mark: DefaultMark}
	m.setFixed(l)
	a := mapping(gateway.TCP, 40080, "198.51.100.10:8080")
	b := mapping(gateway.TCP, 40081, "198.51.100.11:8080")
	plan(t, s, m, []gateway.Mapping{a, b}, nil)
	d := newDump()
	d.parse(saveOutput(l, m, false), false)
	d.parse(saveOutput(l, m, true), true)

	// Nothing to do when the kernel holds what is wanted.
	fresh := fwplan.New(stateConfig(false), time.Now())
	p, err := fresh.Plan(time.Now(), []gateway.Mapping{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := planSpecs(p)
	if err != nil {
		t.Fatal(err)
	}
	sc, r, _ := repairScript(d, l, want)
	if !sc.empty(false) || !sc.empty(true) || r != (gateway.Reconciled{Adopted: 2}) {
		t.Errorf("repair of a kernel as wanted: %+v, script\n%s%s", r, sc.text(false), sc.text(true))
	}

	// b now leads elsewhere, c is new: b replaced, c added, a adopted.
	b2 := mapping(gateway.TCP, 40081, "198.51.100.12:8080")
	c := mapping(gateway.UDP, 40082, "198.51.100.10:9")
	fresh = fwplan.New(stateConfig(false), time.Now())
	if p, err = fresh.Plan(time.Now(), []gateway.Mapping{a, b2, c}, nil); err != nil {
		t.Fatal(err)
	}
	if want, err = planSpecs(p); err != nil {
		t.Fatal(err)
	}
	sc, r, _ = repairScript(d, l, want)
	if r != (gateway.Reconciled{Adopted: 1, Added: 2, Removed: 1}) {
		t.Errorf("repair: %+v", r)
	}
	got := string(sc.text(false))
	for _, w := range []string{
		"-D PORTLEASE-DNAT-TCP-39 -p tcp -m tcp --dport 40081 -j DNAT --to-destination 198.51.100.11:8080\n",
		"-D PORTLEASE-SNAT-TCP-7 -s 198.51.100.11/32 -p tcp -m tcp --sport 8080 -j MASQUERADE --to-ports 40081\n",
		"-A PORTLEASE-DNAT-TCP-39 -p tcp -m tcp --dport 40081 -j DNAT --to-destination 198.51.100.12:8080\n",
		// A new protocol: its fanout and bucket made, with their jumps.
		":PORTLEASE-DNAT-UDP - [0:0]\n",
		":PORTLEASE-DNAT-UDP-39 - [0:0]\n",
		"-A PORTLEASE-DNAT -p udp -j PORTLEASE-DNAT-UDP\n",
		"-A PORTLEASE-DNAT-UDP -p udp -m udp --dport 39936:40959 -j PORTLEASE-DNAT-UDP-39\n",
		"-A PORTLEASE-DNAT-UDP-39 -p udp -m udp --dport 40082 -j DNAT --to-destination 198.51.100.10:9\n",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("repair script lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "40080") {
		t.Errorf("repair script touches the adopted mapping:\n%s", got)
	}

	// A flushed DNAT chain and a missing jump are written again.
	d.rules[inKeyOf(gateway.TCP, 40080).chain()] = nil
	d.jumps[jumpDef{nat4, "PREROUTING", chainPrerouting}] = 0
	sc, _, _ = repairScript(d, l, want)
	got = string(sc.text(false))
	if !strings.Contains(got, "-I PREROUTING 1 -m comment --comment portleased -j PORTLEASE-PREROUTING\n") ||
		!strings.Contains(got, "-A PORTLEASE-DNAT-TCP-39 -p tcp -m tcp --dport 40080 ") {
		t.Errorf("repair after flush:\n%s", got)
	}

	// Close deletes the jumps and chains, nothing else.
	got = string(closeScript(d).text(false))
	if strings.Contains(got, "-D FORWARD -p tcp") || !strings.Contains(got, "-X PORTLEASE-DNAT\n") || !strings.Contains(got, "-X PORTLEASE-DNAT-TCP-39\n") ||
		!strings.Contains(got, "-X PORTLEASE-SNAT-TCP\n") ||
		!strings.Contains(got, "-D POSTROUTING -m comment --comment portleased -j PORTLEASE-POSTROUTING\n") {
		t.Errorf("close script:\n%s", got)
	}
}
