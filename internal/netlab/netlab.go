// Package netlab builds the network-namespace lab used by the end-to-end
// tests and by `make demo`: LAN hosts behind a NAT gateway, and a WAN host
// standing for the outside world.
//
// Topology (see docs/architecture.md, "The lab"):
//
//	lan[i] eth0 198.51.100.10+i/24, 2001:db8:100::10+i/64, default routes via the gateway
//	   |
//	   | veth lanp<i> (a port of the bridge lan0)
//	gateway lan0 198.51.100.1/24, 2001:db8:100::1/64
//	        wan0 203.0.113.1/24, 2001:db8:203::1/64, forwarding on,
//	        masquerade for 198.51.100.0/24 leaving wan0 (nftables table ip lab),
//	        IPv6 forwarding default-drop (table inet filter, see labFirewall6)
//	   |
//	   | veth
//	wan eth0 203.0.113.2/24, 2001:db8:203::2/64, no default route; a route to
//	    the LAN's global IPv6 prefix 2001:db8:100::/64 via the gateway (IPv6 is
//	    routed, not translated: only pinholes let the WAN host in)
//
// The lab is isolated by construction: every veth pair is created with both
// ends already inside lab namespaces, so no link of the lab ever exists in the
// caller's own namespace, and only documentation addresses (198.51.100.0/24,
// 203.0.113.0/24, 2001:db8::/32) are used.
//
// Namespaces are named pl-<pid>-<random hex>-<host>, for example
// pl-4242-1f2e3d4c-gw, so that they can be recognised as ours and traced back
// to the process that made them. The package keeps no state between labs.
//
// # Cleanup
//
// Lab.Close removes every namespace of a lab; New registers it with
// t.Cleanup, and HandleInterrupt runs it on SIGINT or SIGTERM. A run that
// crashed or was killed leaves its namespaces behind: RemoveStale (called by
// New) deletes every pl-<pid>-... namespace whose pid is no longer a running
// process. It assumes that all runs share one PID namespace. By hand:
//
//	ip netns list | grep '^pl-'
//	ip netns del pl-4242-1f2e3d4c-gw
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// MaxLANHosts is the largest number of LAN hosts a lab can have.
	MaxLANHosts = 8

	// nsPrefix starts the name of every namespace made by this package.
	nsPrefix = "pl-"

	gatewayLANLink = "lan0"
	gatewayWANLink = "wan0"
	hostLink       = "eth0"

	// closeTimeout bounds the commands run by Close, which takes no context.
	closeTimeout = 30 * time.Second
)

// Addresses of the lab. They are functions, not variables, so that the
// package holds no mutable state.
func wanPrefix4() netip.Prefix { return netip.MustParsePrefix("203.0.113.0/24") }
func gatewayLAN4() netip.Addr  { return netip.MustParseAddr("198.51.100.1") }
func gatewayLAN6() netip.Addr  { return netip.MustParseAddr("2001:db8:100::1") }
func gatewayWAN4() netip.Addr  { return netip.MustParseAddr("203.0.113.1") }
func gatewayWAN6() netip.Addr  { return netip.MustParseAddr("2001:db8:203::1") }
func lanPrefix6() netip.Prefix { return netip.MustParsePrefix("2001:db8:100::/64") }
func wanHost4() netip.Addr     { return netip.MustParseAddr("203.0.113.2") }
func wanHost6() netip.Addr     { return netip.MustParseAddr("2001:db8:203::2") }

// lanHostAddrs returns the addresses of LAN host i: 198.51.100.10+i and
// 2001:db8:100::10+i (hexadecimal, so lan[1] is 2001:db8:100::11).
func lanHostAddrs(i int) (netip.Addr, netip.Addr) {
	a4 := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
	a6 := netip.MustParseAddr(fmt.Sprintf("2001:db8:100::%x", 0x10+i))
	return a4, a6
}

// Config describes a lab. The zero value is a lab with one LAN host.
type Config struct {
	// LANHosts is the number of LAN hosts, 1 to MaxLANHosts; 0 means 1.
	LANHosts int
}

// Lab is a running set of namespaces. Its fields describe the lab and must
// not be changed by callers. A Lab is not safe for concurrent use, except
// that Close may be called from any goroutine, any number of times.
type Lab struct {
	// ID is the unique run id used in the namespace names: "<pid>-<hex>".
	ID string

	// Gateway is the NAT gateway. Its Addr4 and Addr6 are the WAN-side
	// addresses (203.0.113.1, 2001:db8:203::1) and its Link is
	// GatewayWANLink.
	Gateway *Host
	// LAN holds the LAN hosts; LAN[i].Addr4 is 198.51.100.10+i.
	LAN []*Host
	// WAN is the outside world, 203.0.113.2.
	WAN *Host

	// GatewayLANLink is the name of the gateway's LAN bridge ("lan0"),
	// inside the gateway namespace.
	GatewayLANLink string
	// GatewayWANLink is the name of the gateway's WAN link ("wan0"), inside
	// the gateway namespace.
	GatewayWANLink string
	// GatewayLANAddr4 is the gateway's LAN address, 198.51.100.1.
	GatewayLANAddr4 netip.Addr
	// GatewayLANAddr6 is the gateway's global IPv6 LAN address,
	// 2001:db8:100::1.
	GatewayLANAddr6 netip.Addr
	// GatewayWANAddr4 is the gateway's WAN address, 203.0.113.1 until
	// SetWANAddr changes it.
	GatewayWANAddr4 netip.Addr

	wanPrefix  netip.Prefix // the gateway's current WAN IPv4 address and length
	namespaces []string     // namespaces created so far, in creation order

	closeOnce sync.Once
	closeErr  error
}

// Setup builds a lab. On any error it removes whatever it had made.
func Setup(ctx context.Context, cfg Config) (*Lab, error) {
	n := cfg.LANHosts
	if n == 0 {
		n = 1
	}
	if n < 1 || n > MaxLANHosts {
		return nil, fmt.Errorf("netlab: LANHosts %d out of range 1..%d", cfg.LANHosts, MaxLANHosts)
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	l := &Lab{
		ID:              id,
		GatewayLANLink:  gatewayLANLink,
		GatewayWANLink:  gatewayWANLink,
		GatewayLANAddr4: gatewayLAN4(),
		GatewayLANAddr6: gatewayLAN6(),
		GatewayWANAddr4: gatewayWAN4(),
		wanPrefix:       netip.PrefixFrom(gatewayWAN4(), 24),
	}
	l.Gateway = l.newHost("gw", gatewayWAN4(), gatewayWAN6(), gatewayWANLink)
	for i := range n {
		a4, a6 := lanHostAddrs(i)
		l.LAN = append(l.LAN, l.newHost(fmt.Sprintf("lan%d", i), a4, a6, hostLink))
	}
	l.WAN = l.newHost("wan", wanHost4(), wanHost6(), hostLink)

	if err := l.build(ctx); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return l, nil
}

// newID returns "<pid>-<8 random hex digits>".
func newID() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("netlab: random id: %w", err)
	}
	return strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:]), nil
}

func (l *Lab) newHost(name string, a4, a6 netip.Addr, link string) *Host {
	return &Host{Name: name, NS: nsPrefix + l.ID + "-" + name, Addr4: a4, Addr6: a6, Link: link}
}

// hosts returns every host, gateway first.
func (l *Lab) hosts() []*Host {
	hs := []*Host{l.Gateway}
	hs = append(hs, l.LAN...)
	return append(hs, l.WAN)
}

// labNAT is the masquerade that exists before any mapping: LAN traffic
// leaving the WAN link takes the gateway's WAN address.
const labNAT = `table ip lab {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" ip saddr 198.51.100.0/24 masquerade
	}
}
`

// PinholeAcceptRule is the line the operator adds to a default-drop forward
// chain for portleased's pinholes and mappings to pass:
// nftfw.ForwardAcceptRule(nftfw.DefaultMark), which nftfw's tests check it
// equals (netlab cannot import nftfw, whose tests import netlab).
const PinholeAcceptRule = "meta mark & 0x10000000 == 0x10000000 accept"

// labFirewall6 is the gateway's own firewall, as on OpenWrt (fw4) or in
// Debian's nftables examples: IPv6 forwarding drops by default; replies,
// the LAN's outbound traffic and what portleased admits (PinholeAcceptRule)
// pass. IPv4 forwarding is left as it was (accepted): the NAT keeps the
// WAN out of the LAN there.
const labFirewall6 = `table inet filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		meta nfproto ipv4 accept
		iifname "lan0" accept
		icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept
		` + PinholeAcceptRule + `
	}
}
`

// Firewall6 is the nft script of the gateway's own IPv6 firewall
// (labFirewall6), for tests that load it again after `nft flush ruleset`,
// as a reload of /etc/nftables.conf does.
const Firewall6 = labFirewall6

func (l *Lab) build(ctx context.Context) error {
	// Namespaces, each with lo up and DAD off before any link exists, so
	// that links created later (including veth peers created from the
	// gateway namespace) inherit the defaults.
	for _, h := range l.hosts() {
		// Recorded first: an interrupted `ip netns add` may still have
		// made the namespace, and Close ignores missing ones.
		l.namespaces = append(l.namespaces, h.NS)
		if err := ip(ctx, "", "netns", "add", h.NS); err != nil {
			return err
		}
		if err := ip(ctx, "", "-n", h.NS, "link", "set", "lo", "up"); err != nil {
			return err
		}
		if err := h.sysctl(
			"net.ipv6.conf.all.accept_dad", "0",
			"net.ipv6.conf.default.accept_dad", "0",
		); err != nil {
			return err
		}
	}
	gw := l.Gateway
	if err := gw.sysctl(
		"net.ipv4.ip_forward", "1",
		"net.ipv6.conf.all.forwarding", "1",
		"net.ipv6.conf.default.forwarding", "1",
		"net.ipv4.conf.all.promote_secondaries", "1",
		"net.ipv4.conf.default.promote_secondaries", "1",
	); err != nil {
		return err
	}

	// The LAN bridge. STP is off and forward_delay 0, so ports forward at
	// once; multicast snooping is off so that multicast (SSDP) reaches every
	// port whether or not anyone sent a membership report.
	steps := [][]string{
		{"-n", gw.NS, "link", "add", gatewayLANLink, "type", "bridge",
			"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"},
		{"-n", gw.NS, "addr", "add", netip.PrefixFrom(gatewayLAN4(), 24).String(), "dev", gatewayLANLink},
		{"-n", gw.NS, "addr", "add", netip.PrefixFrom(gatewayLAN6(), 64).String(), "dev", gatewayLANLink, "nodad"},
		{"-n", gw.NS, "link", "set", gatewayLANLink, "up"},
	}
	for i, h := range l.LAN {
		port := fmt.Sprintf("lanp%d", i)
		steps = append(steps,
			// Both ends are born inside lab namespaces.
			[]string{"-n", gw.NS, "link", "add", port, "type", "veth", "peer", "name", h.Link, "netns", h.NS},
			[]string{"-n", gw.NS, "link", "set", port, "master", gatewayLANLink},
			[]string{"-n", gw.NS, "link", "set", port, "up"},
			[]string{"-n", h.NS, "addr", "add", netip.PrefixFrom(h.Addr4, 24).String(), "dev", h.Link},
			[]string{"-n", h.NS, "addr", "add", netip.PrefixFrom(h.Addr6, 64).String(), "dev", h.Link, "nodad"},
			[]string{"-n", h.NS, "link", "set", h.Link, "up"},
			[]string{"-n", h.NS, "-4", "route", "add", "default", "via", gatewayLAN4().String(), "dev", h.Link},
			[]string{"-n", h.NS, "-6", "route", "add", "default", "via", gatewayLAN6().String(), "dev", h.Link},
		)
	}
	w := l.WAN
	steps = append(steps,
		[]string{"-n", gw.NS, "link", "add", gatewayWANLink, "type", "veth", "peer", "name", w.Link, "netns", w.NS},
		[]string{"-n", gw.NS, "addr", "add", l.wanPrefix.String(), "dev", gatewayWANLink},
		[]string{"-n", gw.NS, "addr", "add", netip.PrefixFrom(gatewayWAN6(), 64).String(), "dev", gatewayWANLink, "nodad"},
		[]string{"-n", gw.NS, "link", "set", gatewayWANLink, "up"},
		// The WAN host gets its connected routes only: no default route,
		// no route to the LAN.
		[]string{"-n", w.NS, "addr", "add", netip.PrefixFrom(w.Addr4, 24).String(), "dev", w.Link},
		[]string{"-n", w.NS, "addr", "add", netip.PrefixFrom(w.Addr6, 64).String(), "dev", w.Link, "nodad"},
		[]string{"-n", w.NS, "link", "set", w.Link, "up"},
		[]string{"-n", w.NS, "-6", "route", "add", lanPrefix6().String(), "via", gatewayWAN6().String(), "dev", w.Link},
	)
	for _, args := range steps {
		if err := ip(ctx, "", args...); err != nil {
			return err
		}
	}
	if err := gw.sysctl("net.ipv4.conf."+gatewayWANLink+".promote_secondaries", "1"); err != nil {
		return err
	}
	return ip(ctx, labNAT+labFirewall6, "netns", "exec", gw.NS, "nft", "-f", "-")
}

// Close removes every namespace of the lab, first killing the processes
// still inside them. Sockets opened through Host.Do keep their namespace
// alive until they are closed, but its name is gone. Close is idempotent:
// later calls return the result of the first.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		var errs []error
		// Reverse order: hosts before the gateway they hang off.
		for i := len(l.namespaces) - 1; i >= 0; i-- {
			if err := removeNamespace(ctx, l.namespaces[i]); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// removeNamespace kills the processes inside ns and deletes it. A namespace
// that no longer exists is not an error.
func removeNamespace(ctx context.Context, ns string) error {
	self := os.Getpid()
	for attempt := 0; ; attempt++ {
		out, err := ipOutput(ctx, "", "netns", "pids", ns)
		if err != nil {
			if strings.Contains(err.Error(), "No such file or directory") {
				return nil
			}
			return err
		}
		var pids []int
		for _, f := range strings.Fields(out) {
			pid, err := strconv.Atoi(f)
			if err != nil || pid == self {
				continue
			}
			pids = append(pids, pid)
		}
		if len(pids) == 0 {
			break
		}
		if attempt == 50 {
			return fmt.Errorf("netlab: processes %v still in namespace %s", pids, ns)
		}
		for _, pid := range pids {
			// ESRCH: it exited meanwhile.
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netlab: remove namespace %s: %w", ns, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	err := ip(ctx, "", "netns", "del", ns)
	if err != nil && strings.Contains(err.Error(), "No such file or directory") {
		return nil
	}
	return err
}

// RemoveStale removes the namespaces left by earlier runs that died without
// cleaning up: those named pl-<pid>-... whose pid is no longer a running
// process. Namespaces of live processes, including this one, are kept.
func RemoveStale(ctx context.Context) error {
	out, err := ipOutput(ctx, "", "netns", "list")
	if err != nil {
		return err
	}
	var errs []error
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line) // "name" or "name (id: 3)"
		if len(fields) == 0 {
			continue
		}
		ns := fields[0]
		pid, ok := namespacePID(ns)
		if !ok || pid == os.Getpid() || processExists(pid) {
			continue
		}
		if err := removeNamespace(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// namespacePID returns the pid in a name made by this package,
// pl-<pid>-<hex>-<host>.
func namespacePID(ns string) (int, bool) {
	parts := strings.Split(ns, "-")
	if len(parts) != 4 || parts[0]+"-" != nsPrefix || parts[2] == "" || parts[3] == "" {
		return 0, false
	}
	if _, err := hex.DecodeString(parts[2]); err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 || strconv.Itoa(pid) != parts[1] {
		return 0, false
	}
	return pid, true
}

// processExists reports whether pid names a process (possibly one we may not
// signal).
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// SetWANAddr replaces the gateway's WAN IPv4 address with addr: it adds the
// new address, then deletes the old one (net.ipv4.conf.wan0.promote_secondaries
// keeps the new one when both share a subnet). The address must lie in
// 203.0.113.0/24 with a prefix of /24 or longer, so that the WAN host, which
// has all of 203.0.113.0/24 on its link, still reaches it; when the new
// prefix does not cover the whole /24, the gateway gets a route back to
// 203.0.113.0/24 through wan0.
func (l *Lab) SetWANAddr(ctx context.Context, addr netip.Prefix) error {
	wanNet := wanPrefix4()
	if !addr.IsValid() || !addr.Addr().Is4() || addr.Bits() < wanNet.Bits() || !wanNet.Contains(addr.Addr()) {
		return fmt.Errorf("netlab: WAN address %v not a /24 or longer inside %v", addr, wanNet)
	}
	if addr.Addr() == l.WAN.Addr4 || addr.Addr() == wanNet.Addr() {
		return fmt.Errorf("netlab: WAN address %v not usable for the gateway", addr)
	}
	old := l.wanPrefix
	if addr == old {
		return nil
	}
	gw := l.Gateway.NS
	if err := ip(ctx, "", "-n", gw, "addr", "add", addr.String(), "dev", gatewayWANLink); err != nil {
		return err
	}
	if err := ip(ctx, "", "-n", gw, "addr", "del", old.String(), "dev", gatewayWANLink); err != nil {
		return err
	}
	if addr.Bits() > wanNet.Bits() {
		err := ip(ctx, "", "-n", gw, "route", "replace", wanNet.String(),
			"dev", gatewayWANLink, "scope", "link", "src", addr.Addr().String())
		if err != nil {
			return err
		}
	}
	l.wanPrefix = addr
	l.GatewayWANAddr4 = addr.Addr()
	l.Gateway.Addr4 = addr.Addr()
	return nil
}

// HandleInterrupt removes the lab when the process receives SIGINT or
// SIGTERM, then raises the signal again so that it has its usual effect
// (ending the program unless something else handles it). A failure to remove
// the lab is reported on standard error. The returned stop function ends the
// handling and waits for a removal already under way.
func (l *Lab) HandleInterrupt() (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case sig := <-sigs:
			signal.Stop(sigs)
			if err := l.Close(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
			if s, ok := sig.(syscall.Signal); ok {
				_ = syscall.Kill(os.Getpid(), s)
			}
		case <-quit:
			signal.Stop(sigs)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// ip runs the ip command with args, feeding it stdin when not empty.
func ip(ctx context.Context, stdin string, args ...string) error {
	_, err := ipOutput(ctx, stdin, args...)
	return err
}

// ipOutput runs the ip command with args and returns its standard output;
// the error includes the command line and its output.
func ipOutput(ctx context.Context, stdin string, args ...string) (string, error) {
	return run(ctx, stdin, "ip", args...)
}
