package iptfw

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/fwplan"
)

func TestBucketBoundaries(t *testing.T) {
	for _, c := range []struct {
		kind  elemKind
		proto gateway.Protocol
		port  uint16
		chain string
		jump  string
	}{
		{kindIn, gateway.TCP, 1, "PORTLEASE-DNAT-TCP-0", "-p tcp -m tcp --dport 0:1023 -j PORTLEASE-DNAT-TCP-0"},
		{kindIn, gateway.TCP, 1023, "PORTLEASE-DNAT-TCP-0", "-p tcp -m tcp --dport 0:1023 -j PORTLEASE-DNAT-TCP-0"},
		{kindIn, gateway.TCP, 1024, "PORTLEASE-DNAT-TCP-1", "-p tcp -m tcp --dport 1024:2047 -j PORTLEASE-DNAT-TCP-1"},
		{kindIn, gateway.UDP, 65535, "PORTLEASE-DNAT-UDP-63", "-p udp -m udp --dport 64512:65535 -j PORTLEASE-DNAT-UDP-63"},
		{kindOut, gateway.UDP, 2048, "PORTLEASE-SNAT-UDP-2", "-p udp -m udp --sport 2048:3071 -j PORTLEASE-SNAT-UDP-2"},
		{kindPin, 132, 5000, "PORTLEASE-PINHOLES-SCTP-4", "-p sctp -m sctp --dport 4096:5119 -j PORTLEASE-PINHOLES-SCTP-4"},
	} {
		b := elemKey{kind: c.kind, proto: c.proto, port: c.port}.bucket()
		if got := b.chain().name; got != c.chain {
			t.Errorf("port %d: bucket %s, want %s", c.port, got, c.chain)
		}
		if got := b.jump(); got != c.jump {
			t.Errorf("port %d: jump %q, want %q", c.port, got, c.jump)
		}
		table := rootOf(c.kind).table
		if got, ok := chainOf(table, c.chain); !ok || got != b.chain() {
			t.Errorf("chainOf(%s) = %+v, %v; want %+v", c.chain, got, ok, b.chain())
		}
	}
	for _, name := range []string{"PORTLEASE-DNAT-TCP-64", "PORTLEASE-DNAT-TCP-01", "PORTLEASE-DNAT-tcp", "PORTLEASE-DNAT-ICMP",
		"PORTLEASE-DNAT-TCP-", "PORTLEASE-DNATX-TCP"} {
		if c, ok := chainOf(nat4, name); ok {
			t.Errorf("chainOf(%s) = %+v, want none", name, c)
		}
	}
	if _, ok := chainOf(filter6, "PORTLEASE-DNAT-TCP-1"); ok {
		t.Error("a DNAT bucket recognised in the ip6 filter table")
	}
}

// TestBucketsMadeOnce checks that a bucket and its fanout are made, with
// their jumps, by the first transaction that writes into them and by no
// other, and that a bucket outlives its last element.
func TestBucketsMadeOnce(t *testing.T) {
	s, m := fwplan.New(stateConfig(false), time.Now()), newMirror()
	a := mapping(gateway.TCP, 1023, "198.51.100.10:5000")
	b := mapping(gateway.TCP, 1000, "198.51.100.11:5001")
	c := mapping(gateway.TCP, 1024, "198.51.100.12:5002")
	_, sc := plan(t, s, m, []gateway.Mapping{a, b, c}, nil)
	got := string(sc.text(false))
	for line, n := range map[string]int{
		":PORTLEASE-DNAT-TCP - [0:0]\n":    1,
		":PORTLEASE-DNAT-TCP-0 - [0:0]\n":  1,
		":PORTLEASE-DNAT-TCP-1 - [0:0]\n":  1,
		":PORTLEASE-SNAT-TCP-4 - [0:0]\n":  1,
		"-A PORTLEASE-DNAT -p tcp -j ":     1,
		"-j PORTLEASE-DNAT-TCP-0\n":        1,
		"-j PORTLEASE-DNAT-TCP-1\n":        1,
		"-A PORTLEASE-SNAT -p tcp -j ":     1,
		"-A PORTLEASE-DNAT-TCP-0 -p tcp ":  2,
		"-A PORTLEASE-DNAT-TCP-1 -p tcp ":  1,
		"-A PORTLEASE-SNAT-TCP-4 -s ":      3,
		"-A PORTLEASE-DNAT-TCP -p tcp -m ": 2,
	} {
		if k := strings.Count(got, line); k != n {
			t.Errorf("%q %d times, want %d:\n%s", line, k, n, got)
		}
	}
	if i, j := strings.Index(got, "\n-"), strings.LastIndex(got, "\n:"); i < j {
		t.Errorf("a chain declared after a rule:\n%s", got)
	}

	// Deleting every element leaves the buckets; a new one in them makes
	// none again.
	_, sc = plan(t, s, m, nil, []gateway.Mapping{a, b, c})
	if got := string(sc.text(false)); strings.Contains(got, "PORTLEASE-DNAT-TCP ") || strings.Contains(got, ":PORTLEASE") {
		t.Errorf("deletion touches the dispatch:\n%s", got)
	}
	_, sc = plan(t, s, m, []gateway.Mapping{b}, nil)
	if got := string(sc.text(false)); strings.Contains(got, ":PORTLEASE") || strings.Contains(got, "-A PORTLEASE-DNAT-TCP ") ||
		!strings.Contains(got, "-A PORTLEASE-DNAT-TCP-0 -p tcp -m tcp --dport 1000 ") {
		t.Errorf("a mapping in an existing bucket:\n%s", got)
	}
}

// TestRepairBuckets checks Reconcile's script for a flushed bucket, a
// missing and a doubled jump, a deleted fanout and a dump as written.
func TestRepairBuckets(t *testing.T) {
	s, m := fwplan.New(stateConfig(false), time.Now()), newMirror()
	l := layout{ext: "wan0", addr: netip.MustParseAddr("203.0.113.1"), mark: DefaultMark}
	m.setFixed(l)
	a := mapping(gateway.TCP, 40080, "198.51.100.10:8080")
	b := mapping(gateway.UDP, 1024, "198.51.100.11:53")
	add := []gateway.Mapping{a, b}
	plan(t, s, m, add, nil)
	want := func() []change {
		p, err := fwplan.New(stateConfig(false), time.Now()).Plan(time.Now(), add, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := planSpecs(p)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	parse := func(out4 string) *dump {
		d := newDump()
		d.parse(out4, false)
		d.parse(saveOutput(l, m, true), true)
		return d
	}
	out4 := saveOutput(l, m, false)

	// As written: nothing to do, the same buckets, the mirror's digest.
	d := parse(out4)
	if d.digest != m.digest {
		t.Errorf("digest of the dump %+v, of the mirror %+v", d.digest, m.digest)
	}
	sc, r, bs := repairScript(d, l, want())
	if !sc.empty(false) || r != (gateway.Reconciled{Adopted: 2}) {
		t.Errorf("repair of an intact kernel: %+v\n%s", r, sc.text(false))
	}
	if len(bs.buckets) != 4 || len(bs.fanouts) != 4 {
		t.Errorf("buckets %v, fanouts %v; want 4 of each", bs.buckets, bs.fanouts)
	}

	// A flushed bucket: its mapping written again, nothing else.
	dnat := "-A PORTLEASE-DNAT-TCP-39 -p tcp -m tcp --dport 40080 -j DNAT --to-destination 198.51.100.10:8080\n"
	sc, r, _ = repairScript(parse(strings.Replace(out4, dnat, "", 1)), l, want())
	if got := string(sc.text(false)); got != "*nat\n"+dnat+"COMMIT\n" || r != (gateway.Reconciled{Adopted: 1, Added: 1}) {
		t.Errorf("repair of a flushed bucket: %+v\n%s", r, got)
	}

	// A missing jump to a bucket, a doubled jump to a fanout.
	jump := "-A PORTLEASE-DNAT-TCP -p tcp -m tcp --dport 39936:40959 -j PORTLEASE-DNAT-TCP-39\n"
	fan := "-A PORTLEASE-DNAT -p udp -j PORTLEASE-DNAT-UDP\n"
	broken := strings.Replace(strings.Replace(out4, jump, "", 1), fan, fan+fan, 1)
	sc, r, _ = repairScript(parse(broken), l, want())
	if got := string(sc.text(false)); got != "*nat\n-D"+fan[2:]+jump+"COMMIT\n" || r != (gateway.Reconciled{Adopted: 2}) {
		t.Errorf("repair of the jumps: %+v\n%s", r, got)
	}

	// A fanout chain deleted with its jumps: made again, its buckets kept.
	gone := strings.Replace(strings.Replace(strings.Replace(out4, jump, "", 1),
		"-A PORTLEASE-DNAT -p tcp -j PORTLEASE-DNAT-TCP\n", "", 1), ":PORTLEASE-DNAT-TCP - [0:0]\n", "", 1)
	sc, _, _ = repairScript(parse(gone), l, want())
	if got := string(sc.text(false)); got != "*nat\n:PORTLEASE-DNAT-TCP - [0:0]\n-A PORTLEASE-DNAT -p tcp -j PORTLEASE-DNAT-TCP\n"+jump+"COMMIT\n" {
		t.Errorf("repair of a deleted fanout:\n%s", got)
	}
}
