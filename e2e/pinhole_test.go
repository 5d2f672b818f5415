package e2e

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// The lab's IPv6 endpoints: the LAN host's global address, where its
// servers listen, and the WAN host's two addresses (the second added by
// the tests that need it).
var (
	lanHost6  = netip.MustParseAddr("2001:db8:100::10")
	wanHost6  = netip.MustParseAddr("2001:db8:203::2")
	wanOther6 = netip.MustParseAddr("2001:db8:203::3")
	// anySource lets the kernel pick a connection's source address and port.
	anySource = netip.AddrPort{}
)

// from is a connection's source: addr, any port.
func from(addr netip.Addr) netip.AddrPort { return netip.AddrPortFrom(addr, 0) }

// TestPinholePCP: with the gateway's IPv6 forward policy default-drop
// (netlab's table inet filter), the WAN host cannot connect to a server on
// the LAN host's global IPv6 address; portlease map --to that address
// opens a pinhole over PCP (RFC 6887 §11, IPv6 MAP) and the connection gets
// through; portlease unmap with the nonce map printed closes it again; a
// pinhole with a short lifetime closes by itself when it expires.
func TestPinholePCP(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	// PCP's minimum lifetime is 120 s by default (RFC 6887 §15); the
	// short pinhole below asks for 3 s and must get them.
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, ExtraLines: []string{"pcp lifetime min 1"}})
	lan := lab.LAN[0]
	const greeting = "hello over an IPv6 pinhole"
	server := netip.AddrPortFrom(lanHost6, 8080)
	serveTCP6(t, lan, server.Port(), greeting)
	// The server answers on the LAN: what stops the WAN host is the
	// gateway.
	mustReach(t, "from the gateway", lab.Gateway, anySource, server, greeting)
	mustNotReach(t, "before a pinhole", lab.WAN, anySource, server)

	r := portleaseMapJSON(t, lan, "tcp", "8080", "--to", lanHost6.String(), "--protocol", "pcp", "--lifetime", "3600")
	if !r.Pinhole || r.Method != "pcp" || r.Internal != server.String() || r.Nonce == "" || r.Lifetime <= 0 {
		t.Fatalf("portlease map --to %v granted %+v; want a PCP pinhole to %v with a nonce", lanHost6, r, server)
	}
	mustReach(t, "through the pinhole", lab.WAN, anySource, server, greeting)
	if err := d.WaitLog(t.Context(), "pinhole"); err != nil {
		t.Errorf("the lease log does not tell of the pinhole: %v", err)
	}

	// A deletion with another nonce is refused (RFC 6887 §15) and the
	// pinhole stays.
	other := []byte(r.Nonce)
	if other[0] = '0'; r.Nonce[0] == '0' {
		other[0] = '1'
	}
	if out, code := portlease(t, lan, "unmap", "tcp", "8080", "--to", lanHost6.String(), "--protocol", "pcp",
		"--nonce", string(other)); code == 0 || !strings.Contains(out, "NOT_AUTHORIZED") {
		t.Fatalf("portlease unmap with another nonce: exit %d:\n%s\nwant PCP's NOT_AUTHORIZED", code, out)
	}
	mustReach(t, "after a refused deletion", lab.WAN, anySource, server, greeting)

	if out, code := portlease(t, lan, "unmap", "tcp", "8080", "--to", lanHost6.String(), "--protocol", "pcp",
		"--nonce", r.Nonce); code != 0 {
		t.Fatalf("portlease unmap --nonce %s: exit %d:\n%s", r.Nonce, code, out)
	}
	mustNotReach(t, "after unmap", lab.WAN, anySource, server)

	// A short pinhole: open, then closed once its lifetime is over.
	const short = 3
	r = portleaseMapJSON(t, lan, "tcp", "8080", "--to", lanHost6.String(), "--protocol", "pcp",
		"--lifetime", strconv.Itoa(short))
	if !r.Pinhole || r.Lifetime != short {
		t.Fatalf("portlease map --lifetime %d granted %+v; want a pinhole of %d s", short, r, short)
	}
	mustReach(t, "through the short pinhole", lab.WAN, anySource, server, greeting)
	eventuallyUnreachable(t, "the short pinhole closes", lab.WAN, anySource, server)
}

// TestPinholeFilter: a pinhole with a FILTER (RFC 6887 §13.3; portlease map
// --allow) admits the named WAN peer and refuses another address of the
// same WAN host; a filter naming a peer's port admits that port only.
func TestPinholeFilter(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	addWANAddr6(t, lab, wanOther6)
	const greeting = "hello to the allowed peer"
	server := netip.AddrPortFrom(lanHost6, 8081)
	serveTCP6(t, lan, server.Port(), greeting)
	mustNotReach(t, "before a pinhole", lab.WAN, from(wanHost6), server)
	mustNotReach(t, "before a pinhole", lab.WAN, from(wanOther6), server)

	r := portleaseMapJSON(t, lan, "tcp", "8081", "--to", lanHost6.String(), "--protocol", "pcp",
		"--allow", netip.PrefixFrom(wanHost6, 128).String())
	if !r.Pinhole {
		t.Fatalf("portlease map --allow granted %+v; want a pinhole", r)
	}
	mustReach(t, "the allowed peer", lab.WAN, from(wanHost6), server, greeting)
	mustNotReach(t, "another WAN address", lab.WAN, from(wanOther6), server)

	// The same endpoint asked again with a filter for the other address:
	// the nonce is the pinhole's, so PCP renews it with the new filter
	// (RFC 6887 §13.3: a renewal's FILTERs replace the old ones).
	r2 := portleaseMapJSON(t, lan, "tcp", "8081", "--to", lanHost6.String(), "--protocol", "pcp",
		"--nonce", r.Nonce, "--allow", netip.PrefixFrom(wanOther6, 128).String())
	if !r2.Pinhole || r2.Nonce != r.Nonce {
		t.Fatalf("renewal with another filter granted %+v; want the pinhole, nonce %s", r2, r.Nonce)
	}
	mustReach(t, "the newly allowed peer", lab.WAN, from(wanOther6), server, greeting)
	mustNotReach(t, "the peer no longer allowed", lab.WAN, from(wanHost6), server)

	// A filter with a port admits that remote port only.
	r3 := portleaseMapJSON(t, lan, "tcp", "8081", "--to", lanHost6.String(), "--protocol", "pcp",
		"--nonce", r.Nonce, "--allow", netip.PrefixFrom(wanHost6, 128).String()+",40001")
	if !r3.Pinhole {
		t.Fatalf("renewal with a port filter granted %+v; want the pinhole", r3)
	}
	mustNotReach(t, "the allowed peer from another port", lab.WAN, netip.AddrPortFrom(wanHost6, 40002), server)
	mustReach(t, "the allowed peer and port", lab.WAN, netip.AddrPortFrom(wanHost6, 40001), server, greeting)
	mustNotReach(t, "the other WAN address from the allowed port", lab.WAN, netip.AddrPortFrom(wanOther6, 40001), server)
}

// TestPinholePCPRestart: a PCP pinhole outlives a restart of portleased
// with a state file, traffic and nonce included: after it, another nonce
// still cannot delete it and the one map printed does.
func TestPinholePCPRestart(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true,
		StateFile: labpeers.StateDir(t) + "/leases"})
	lan := lab.LAN[0]
	const greeting = "hello after a restart"
	server := netip.AddrPortFrom(lanHost6, 8087)
	serveTCP6(t, lan, server.Port(), greeting)
	r := portleaseMapJSON(t, lan, "tcp", "8087", "--to", lanHost6.String(), "--protocol", "pcp")
	if !r.Pinhole {
		t.Fatalf("portlease map --to %v granted %+v; want a pinhole", lanHost6, r)
	}
	if err := d.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustReach(t, "after the restart", lab.WAN, anySource, server, greeting)
	if out, code := portlease(t, lan, "unmap", "tcp", "8087", "--to", lanHost6.String(), "--protocol", "pcp",
		"--nonce", "000000000000000000000001"); code == 0 || !strings.Contains(out, "NOT_AUTHORIZED") {
		t.Fatalf("portlease unmap with another nonce after the restart: exit %d:\n%s\nwant PCP's NOT_AUTHORIZED", code, out)
	}
	if out, code := portlease(t, lan, "unmap", "tcp", "8087", "--to", lanHost6.String(), "--protocol", "pcp",
		"--nonce", r.Nonce); code != 0 {
		t.Fatalf("portlease unmap --nonce %s after the restart: exit %d:\n%s", r.Nonce, code, out)
	}
	mustNotReach(t, "after unmap", lab.WAN, anySource, server)
}
