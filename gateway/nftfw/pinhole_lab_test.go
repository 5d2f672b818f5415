package nftfw

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/netlab"
)

// askTCPFrom dials addr from local (an address of h) and returns the peer
// address the server saw.
func askTCPFrom(h *netlab.Host, local netip.Addr, addr netip.AddrPort) (string, error) {
	var c net.Conn
	err := h.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		defer cancel()
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
		var err error
		c, err = d.DialContext(ctx, "tcp", addr.String())
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(dialTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// pinholeLab is a lab whose gateway runs a Firewall and the lab's
// default-drop IPv6 forward chain, with a TCP server on LAN host 0 at port
// 8080 (IPv4 and IPv6) and a second address on the WAN host.
type pinholeLab struct {
	lab         *netlab.Lab
	gw          testNS
	f           *Firewall
	wan2, wan24 netip.Addr // the WAN host's second addresses
	server6     netip.AddrPort
}

func newPinholeLab(t *testing.T) *pinholeLab {
	lab := netlab.New(t, netlab.Config{})
	l := &pinholeLab{
		lab:     lab,
		gw:      labGateway(t, lab),
		wan2:    netip.MustParseAddr("2001:db8:203::3"),
		wan24:   netip.MustParseAddr("203.0.113.3"),
		server6: netip.AddrPortFrom(lab.LAN[0].Addr6, 8080),
	}
	for _, args := range [][]string{
		{"addr", "add", l.wan2.String() + "/64", "dev", lab.WAN.Link, "nodad"},
		{"addr", "add", l.wan24.String() + "/24", "dev", lab.WAN.Link},
	} {
		if out, err := lab.WAN.Run(t.Context(), "ip", args...); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	l.f = newFirewall(t, l.gw, Config{ExternalInterface: lab.GatewayWANLink, TimeoutGrace: -1})
	if err := l.f.SetExternalAddress(t.Context(), lab.GatewayWANAddr4); err != nil {
		t.Fatal(err)
	}
	ln, err := lab.LAN[0].Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	netlab.ServePeerAddr(t, ln)
	return l
}

// reaches reports whether the WAN host, from local, gets a TCP connection
// through to addr, and fails t when the server saw another peer.
func (l *pinholeLab) reaches(t *testing.T, local netip.Addr, addr netip.AddrPort) bool {
	t.Helper()
	seen, err := askTCPFrom(l.lab.WAN, local, addr)
	if err != nil {
		return false
	}
	if peer, err := netip.ParseAddrPort(seen); err != nil || peer.Addr().Unmap() != local {
		t.Errorf("server saw peer %s; want %v", seen, local)
	}
	return true
}

func pinhole(internal string, lifetime time.Duration, filters ...gateway.Filter) gateway.Mapping {
	ap := netip.MustParseAddrPort(internal)
	return gateway.Mapping{Protocol: gateway.TCP, ExternalPort: ap.Port(), Internal: ap,
		Lifetime: lifetime, Pinhole: true, Filters: filters}
}

func filterOf(prefix string, port uint16) gateway.Filter {
	return gateway.Filter{Remote: netip.MustParsePrefix(prefix), Port: port}
}

// TestPinholeTraffic: a WAN host's TCP connection to the LAN host's global
// IPv6 address gets through the gateway's default-drop forward chain only
// while a pinhole is open, and a filtered pinhole admits only its peer.
func TestPinholeTraffic(t *testing.T) {
	l := newPinholeLab(t)
	ctx := t.Context()
	wan := l.lab.WAN.Addr6
	p := pinhole(l.server6.String(), time.Hour)

	if l.reaches(t, wan, l.server6) {
		t.Fatal("WAN host reached the LAN server over IPv6 before any pinhole")
	}
	if err := l.f.Apply(ctx, []gateway.Mapping{p}, nil); err != nil {
		t.Fatal(err)
	}
	if !l.reaches(t, wan, l.server6) {
		t.Fatal("WAN host did not reach the LAN server through the pinhole")
	}
	if err := l.f.Apply(ctx, nil, []gateway.Mapping{p}); err != nil {
		t.Fatal(err)
	}
	if l.reaches(t, wan, l.server6) {
		t.Fatal("WAN host reached the LAN server after the pinhole was removed")
	}

	// The kernel timeout ends a pinhole the daemon forgot; removing it
	// afterwards is not an error.
	short := pinhole(l.server6.String(), 2*time.Second)
	if err := l.f.Apply(ctx, []gateway.Mapping{short}, nil); err != nil {
		t.Fatal(err)
	}
	if !l.reaches(t, wan, l.server6) {
		t.Fatal("WAN host did not reach the LAN server through the short pinhole")
	}
	waitFor(t, 10*time.Second, "the pinhole's kernel timeout", func() bool {
		return !l.reaches(t, wan, l.server6)
	})
	if err := l.f.Apply(ctx, nil, []gateway.Mapping{short}); err != nil {
		t.Fatalf("removing a pinhole the kernel timed out: %v", err)
	}

	// Filtered: the named peer only.
	filtered := pinhole(l.server6.String(), time.Hour, filterOf(wan.String()+"/128", 0))
	if err := l.f.Apply(ctx, []gateway.Mapping{filtered}, nil); err != nil {
		t.Fatal(err)
	}
	if !l.reaches(t, wan, l.server6) {
		t.Error("the filter's peer did not get through the filtered pinhole")
	}
	if l.reaches(t, l.wan2, l.server6) {
		t.Error("a second WAN address got through a pinhole filtered to the first")
	}
	// A filter of a prefix length between shapes (/126, as four /128
	// elements) admits both; one with a remote port refuses a peer
	// dialling from another.
	wide := pinhole(l.server6.String(), time.Hour, filterOf("2001:db8:203::/126", 0))
	if err := l.f.Apply(ctx, []gateway.Mapping{wide}, []gateway.Mapping{filtered}); err != nil {
		t.Fatal(err)
	}
	if !l.reaches(t, wan, l.server6) || !l.reaches(t, l.wan2, l.server6) {
		t.Error("a /126 filter did not admit both WAN addresses inside it")
	}
	ported := pinhole(l.server6.String(), time.Hour, filterOf(wan.String()+"/128", 1))
	if err := l.f.Apply(ctx, []gateway.Mapping{ported}, nil); err != nil {
		t.Fatal(err)
	}
	if l.reaches(t, wan, l.server6) {
		t.Error("a filter for remote port 1 admitted a connection from another port")
	}
	if err := l.f.Apply(ctx, nil, []gateway.Mapping{ported}); err != nil {
		t.Fatal(err)
	}
	if l.reaches(t, wan, l.server6) {
		t.Error("WAN host reached the LAN server after the filtered pinhole was removed")
	}
	if got := l.f.Len(); got != 0 {
		t.Errorf("Len = %d after every pinhole was removed; want 0", got)
	}
}

// TestFilteredMappingTraffic: an IPv4 mapping with a filter forwards the
// named peer only, and every peer again once the filter is gone.
func TestFilteredMappingTraffic(t *testing.T) {
	l := newPinholeLab(t)
	ctx := t.Context()
	ext := netip.AddrPortFrom(l.lab.GatewayWANAddr4, 18080)
	wan := l.lab.WAN.Addr4
	m := tcpMapping(18080, "198.51.100.10:8080")
	m.Filters = []gateway.Filter{filterOf(wan.String()+"/32", 0)}
	if err := l.f.Apply(ctx, []gateway.Mapping{m}, nil); err != nil {
		t.Fatal(err)
	}
	if !l.reaches(t, wan, ext) {
		t.Error("the filter's peer did not get through the filtered mapping")
	}
	if l.reaches(t, l.wan24, ext) {
		t.Error("a second WAN address got through a mapping filtered to the first")
	}
	// Renewed without the filter: both.
	m.Filters = nil
	if err := l.f.Apply(ctx, []gateway.Mapping{m}, []gateway.Mapping{m}); err != nil {
		t.Fatal(err)
	}
	if !l.reaches(t, wan, ext) || !l.reaches(t, l.wan24, ext) {
		t.Error("a mapping without filters did not admit both WAN addresses")
	}
	// A /24 filter (a shape of its own) admits both.
	m.Filters = []gateway.Filter{filterOf("203.0.113.0/24", 0)}
	if err := l.f.Apply(ctx, []gateway.Mapping{m}, nil); err != nil {
		t.Fatal(err)
	}
	if !l.reaches(t, wan, ext) || !l.reaches(t, l.wan24, ext) {
		t.Error("a /24 filter did not admit both WAN addresses")
	}
	if err := l.f.Apply(ctx, nil, []gateway.Mapping{m}); err != nil {
		t.Fatal(err)
	}
	if l.reaches(t, wan, ext) {
		t.Error("the mapping forwards after its removal")
	}
}

// TestPinholeReconcile: Reconcile adopts the pinholes the kernel holds as
// wanted, adds the missing ones and removes the others, filters included.
func TestPinholeReconcile(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{})
	ctx := t.Context()
	keep := pinhole("[2001:db8:100::10]:80", time.Hour)
	gone := pinhole("[2001:db8:100::10]:81", time.Hour, filterOf("2001:db8:203::/48", 0))
	added := pinhole("[2001:db8:100::11]:80", time.Hour, filterOf("2001:db8:203::2/128", 443))
	m4 := tcpMapping(8080, "198.51.100.10:80")
	m4.Filters = []gateway.Filter{filterOf("203.0.113.0/24", 0)}
	if err := f.Apply(ctx, []gateway.Mapping{keep, gone, m4}, nil); err != nil {
		t.Fatal(err)
	}
	want := []gateway.Mapping{keep, added, m4}
	r, err := f.Reconcile(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	// The IPv4 mapping is adopted as well.
	if want := (gateway.Reconciled{Adopted: 2, Added: 1, Removed: 1}); r != want {
		t.Errorf("Reconcile = %+v; want %+v", r, want)
	}
	listing := ns.nft(t, "list", "table", "inet", DefaultTable)
	for _, s := range []string{
		"2001:db8:100::10 . tcp . 80 timeout",                         // pinhole6
		"2001:db8:100::11 . tcp . 80 timeout",                         // filtered6
		"2001:db8:100::11 . tcp . 80 . 2001:db8:203::2 . 443 timeout", // peers6_128_port
		"elements = { tcp . 8080 . 203.0.113.0 }",                     // peers4_24, no lifetime
		"meta mark set meta mark | 0x10000000 accept",                 // the forward chain marks
	} {
		if !strings.Contains(listing, s) {
			t.Errorf("table lacks %q:\n%s", s, listing)
		}
	}
	if strings.Contains(listing, "2001:db8:100::10 . tcp . 81") {
		t.Errorf("table still holds the pinhole not wanted:\n%s", listing)
	}
	// Again: everything adopted, nothing changed.
	if r, err := f.Reconcile(ctx, want); err != nil || r != (gateway.Reconciled{Adopted: 3}) {
		t.Errorf("second Reconcile = %+v, %v; want 3 adopted", r, err)
	}
	// Someone deletes a pinhole's element: Reconcile adds it back, and
	// Apply works on from there.
	ns.nft(t, "delete", "element", "inet", DefaultTable, pinhole6Name, "{ 2001:db8:100::10 . tcp . 80 }")
	if r, err := f.Reconcile(ctx, want); err != nil || r != (gateway.Reconciled{Adopted: 2, Added: 1}) {
		t.Errorf("Reconcile after a deletion = %+v, %v; want 2 adopted, 1 added", r, err)
	}
	if err := f.Apply(ctx, nil, want); err != nil {
		t.Fatal(err)
	}
	for _, s := range append([]*nftables.Set{f.rs.pinhole6, f.rs.filtered6, f.rs.filtered4}, shapeSets(f)...) {
		elems, err := f.conn.GetSetElements(s)
		if err != nil || len(elems) != 0 {
			t.Errorf("set %s holds %d elements after every mapping was removed (%v)", s.Name, len(elems), err)
		}
	}
}

func shapeSets(f *Firewall) []*nftables.Set {
	var sets []*nftables.Set
	for _, sh := range f.rs.peerShapes() {
		sets = append(sets, sh.set)
	}
	return sets
}

// TestCheckForwardPath: a default-drop forward chain without the line is
// reported; with it (also in a chain it jumps to), or with policy accept,
// it is not.
func TestCheckForwardPath(t *testing.T) {
	if ForwardAcceptRule(DefaultMark) != netlab.PinholeAcceptRule {
		t.Errorf("ForwardAcceptRule(DefaultMark) = %q; netlab's lab uses %q", ForwardAcceptRule(DefaultMark), netlab.PinholeAcceptRule)
	}
	ns := newNS(t)
	newFirewall(t, ns, Config{})
	check := func(want ...string) {
		t.Helper()
		got, err := CheckForwardPath(ns.fd, DefaultTable, DefaultMark)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("CheckForwardPath = %q; want %q", got, want)
		}
	}
	check()
	ns.nftInput(t, `table inet filter {
	chain forward { type filter hook forward priority filter; policy drop; ct state established,related accept; }
}
table ip6 fw6 {
	chain fwd_wan { `+ForwardAcceptRule(DefaultMark)+`; }
	chain forward { type filter hook forward priority filter; policy drop; iifname "wan0" jump fwd_wan; }
}
table ip v4only {
	chain forward { type filter hook forward priority filter; policy drop; }
}
`)
	check("table inet filter chain forward")
	ns.nft(t, "add", "rule", "inet", "filter", "forward", "counter", "meta", "mark", "&", "0x10000000", "==", "0x10000000", "accept")
	check()
}

// TestDumpPinholeSets: the dump decoder reads the elements of the pinhole
// and filter sets (keys of 24 to 44 bytes, no data, with and without
// timeouts) as google/nftables does.
func TestDumpPinholeSets(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{})
	ms := []gateway.Mapping{
		pinhole("[2001:db8:100::10]:80", time.Hour),
		pinhole("[2001:db8:100::10]:81", 0, filterOf("2001:db8:203::/62", 0), filterOf("2001:db8:204::1/128", 53)),
	}
	if err := f.Apply(t.Context(), ms, nil); err != nil {
		t.Fatal(err)
	}
	d, err := dialNF(ns.fd)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	total := 0
	for _, s := range append([]*nftables.Set{f.rs.pinhole6, f.rs.filtered6}, shapeSets(f)...) {
		var got []elemCopy
		err := d.elements(DefaultTable, s.Name, func() { got = nil }, func(e dumpedElem) error {
			got = append(got, elemCopy{string(e.key), string(e.val), e.flags, e.timeout, e.expires})
			return nil
		})
		if err != nil {
			t.Fatalf("dump %s: %v", s.Name, err)
		}
		ref, err := f.conn.GetSetElements(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ref) {
			t.Fatalf("%s: dumped %d elements, google/nftables %d", s.Name, len(got), len(ref))
		}
		byKey := func(a, b elemCopy) int { return strings.Compare(a.key, b.key) }
		slices.SortFunc(got, byKey)
		slices.SortFunc(ref, func(a, b nftables.SetElement) int { return strings.Compare(string(a.Key), string(b.Key)) })
		for i, e := range got {
			r := ref[i]
			if e.key != string(r.Key) || e.val != "" || e.timeout != r.Timeout || (e.expires-r.Expires).Abs() > time.Second {
				t.Errorf("%s element %d: dumped %+v, google/nftables %+v", s.Name, i, e, r)
			}
		}
		total += len(got)
	}
	// 1 + 1 endpoints, the /62 as four /64s, the /128 with its port.
	if total != 7 {
		t.Errorf("the sets hold %d elements; want 7", total)
	}
}
