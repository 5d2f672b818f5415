package netlab

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

const exchangeTimeout = 5 * time.Second

func TestNamespacePID(t *testing.T) {
	tests := []struct {
		ns   string
		pid  int
		want bool
	}{
		{"pl-4242-1f2e3d4c-gw", 4242, true},
		{"pl-4242-1f2e3d4c-lan7", 4242, true},
		{"pl-1-00-wan", 1, true},
		{"pl-4242-1f2e3d4c", 0, false},
		{"pl-4242-xyz-gw", 0, false},
		{"pl-04242-1f2e3d4c-gw", 0, false},
		{"pl--1-1f2e3d4c-gw", 0, false},
		{"pl-0-1f2e3d4c-gw", 0, false},
		{"xx-4242-1f2e3d4c-gw", 0, false},
		{"pl-4242-1f2e3d4c-gw-extra", 0, false},
		{"docker-netns", 0, false},
	}
	for _, tt := range tests {
		pid, ok := namespacePID(tt.ns)
		if pid != tt.pid || ok != tt.want {
			t.Errorf("namespacePID(%q) = %d, %v; want %d, %v", tt.ns, pid, ok, tt.pid, tt.want)
		}
	}
}

func TestSetupRejectsConfig(t *testing.T) {
	for _, n := range []int{-1, MaxLANHosts + 1} {
		if l, err := Setup(t.Context(), Config{LANHosts: n}); err == nil {
			l.Close()
			t.Errorf("Setup(LANHosts: %d) = nil error; want an error", n)
		}
	}
}

func TestLab(t *testing.T) {
	RequireRoot(t)
	before := rootState(t)
	var id string
	// Registered before New's cleanup, so it runs after Close.
	t.Cleanup(func() {
		if after := rootState(t); after != before {
			t.Errorf("root namespace changed by the lab:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if left := labNamespaces(t, id); id != "" && len(left) != 0 {
			t.Errorf("after Close, namespaces left: %v", left)
		}
	})
	l := New(t, Config{LANHosts: 2})
	id = l.ID
	if after := rootState(t); after != before {
		t.Fatalf("root namespace changed by Setup:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	lan0, lan1, gw, wan := l.LAN[0], l.LAN[1], l.Gateway, l.WAN

	t.Run("Topology", func(t *testing.T) {
		checks := []struct {
			name      string
			got, want any
		}{
			{"len(LAN)", len(l.LAN), 2},
			{"LAN[0].Addr4", lan0.Addr4, netip.MustParseAddr("198.51.100.10")},
			{"LAN[1].Addr4", lan1.Addr4, netip.MustParseAddr("198.51.100.11")},
			{"LAN[1].Addr6", lan1.Addr6, netip.MustParseAddr("2001:db8:100::11")},
			{"LAN[1].Link", lan1.Link, "eth0"},
			{"LAN[1].Name", lan1.Name, "lan1"},
			{"Gateway.Addr4", gw.Addr4, netip.MustParseAddr("203.0.113.1")},
			{"Gateway.Link", gw.Link, "wan0"},
			{"WAN.Addr4", wan.Addr4, netip.MustParseAddr("203.0.113.2")},
			{"WAN.Addr6", wan.Addr6, netip.MustParseAddr("2001:db8:203::2")},
			{"GatewayLANLink", l.GatewayLANLink, "lan0"},
			{"GatewayWANLink", l.GatewayWANLink, "wan0"},
			{"GatewayLANAddr4", l.GatewayLANAddr4, netip.MustParseAddr("198.51.100.1")},
			{"GatewayWANAddr4", l.GatewayWANAddr4, netip.MustParseAddr("203.0.113.1")},
			{"Gateway.NS", gw.NS, "pl-" + l.ID + "-gw"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
			}
		}
		for _, fam := range []string{"-4", "-6"} {
			if out := mustRun(t, wan, "ip", fam, "route", "show", "default"); strings.TrimSpace(out) != "" {
				t.Errorf("WAN host has a default route (%s): %s", fam, out)
			}
		}
		for _, name := range []string{
			"net.ipv4.ip_forward",
			"net.ipv6.conf.all.forwarding",
			"net.ipv4.conf.wan0.promote_secondaries",
		} {
			if got := readSysctl(t, gw, name); got != "1" {
				t.Errorf("gateway %s = %q; want 1", name, got)
			}
		}
		if out := mustRun(t, gw, "nft", "list", "table", "ip", "lab"); !strings.Contains(out, "masquerade") {
			t.Errorf("gateway table ip lab has no masquerade:\n%s", out)
		}
	})

	t.Run("LANToGateway", func(t *testing.T) {
		for _, h := range l.LAN {
			if src := tcpExchange(t, h, gw, l.GatewayLANAddr4); src != h.Addr4 {
				t.Errorf("%s to gateway: source %v; want %v", h.Name, src, h.Addr4)
			}
			if src := udpExchange(t, h, gw, netip.MustParseAddr("2001:db8:100::1")); src != h.Addr6 {
				t.Errorf("%s to gateway over IPv6: source %v; want %v", h.Name, src, h.Addr6)
			}
		}
	})

	t.Run("Masquerade", func(t *testing.T) {
		for _, h := range l.LAN {
			if src := tcpExchange(t, h, wan, wan.Addr4); src != l.GatewayWANAddr4 {
				t.Errorf("%s to WAN host over TCP: source %v; want %v", h.Name, src, l.GatewayWANAddr4)
			}
			if src := udpExchange(t, h, wan, wan.Addr4); src != l.GatewayWANAddr4 {
				t.Errorf("%s to WAN host over UDP: source %v; want %v", h.Name, src, l.GatewayWANAddr4)
			}
		}
	})

	t.Run("WANToGateway", func(t *testing.T) {
		if src := tcpExchange(t, wan, gw, gw.Addr4); src != wan.Addr4 {
			t.Errorf("WAN host to gateway: source %v; want %v", src, wan.Addr4)
		}
		if src := udpExchange(t, wan, gw, gw.Addr6); src != wan.Addr6 {
			t.Errorf("WAN host to gateway over IPv6: source %v; want %v", src, wan.Addr6)
		}
	})

	t.Run("WANCannotReachLAN", func(t *testing.T) {
		for _, a := range []netip.Addr{lan0.Addr4, lan0.Addr6} {
			ln, err := lan0.Listen("tcp", netip.AddrPortFrom(a, 0).String())
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			c, err := wan.Dial(ctx, "tcp", ln.Addr().String())
			switch {
			case err == nil:
				c.Close()
				t.Errorf("WAN host dialled %v directly; want no route (IPv4) or a drop (IPv6)", ln.Addr())
			case a.Is4() && !errors.Is(err, syscall.ENETUNREACH):
				t.Errorf("WAN host dialling %v: %v; want %v", ln.Addr(), err, syscall.ENETUNREACH)
			case a.Is6() && !isTimeout(err):
				// Routed to the gateway, whose forward policy drops it.
				t.Errorf("WAN host dialling %v: %v; want a timeout (dropped)", ln.Addr(), err)
			}
		}
		out := mustRun(t, gw, "nft", "list", "table", "inet", "filter")
		for _, want := range []string{"policy drop", PinholeAcceptRule} {
			if !strings.Contains(out, want) {
				t.Errorf("gateway table inet filter lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("LANToWAN6", func(t *testing.T) {
		// IPv6 is routed: the WAN host sees the LAN host's own address.
		if src := tcpExchange(t, lan0, wan, wan.Addr6); src != lan0.Addr6 {
			t.Errorf("lan0 to WAN host over IPv6: source %v; want %v", src, lan0.Addr6)
		}
	})

	t.Run("LANToLAN", func(t *testing.T) {
		if src := tcpExchange(t, lan0, lan1, lan1.Addr4); src != lan0.Addr4 {
			t.Errorf("lan0 to lan1: source %v; want %v", src, lan0.Addr4)
		}
		if src := udpExchange(t, lan1, lan0, lan0.Addr6); src != lan1.Addr6 {
			t.Errorf("lan1 to lan0 over IPv6: source %v; want %v", src, lan1.Addr6)
		}
	})

	t.Run("Do", func(t *testing.T) {
		want, err := netns.GetFromName(lan1.NS)
		if err != nil {
			t.Fatal(err)
		}
		defer want.Close()
		err = lan1.Do(func() error {
			cur, err := netns.Get()
			if err != nil {
				return err
			}
			defer cur.Close()
			if !cur.Equal(want) {
				t.Errorf("Do: fn runs in %v; want %v", cur, want)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Do = %v", err)
		}
		sentinel := errors.New("sentinel")
		if err := lan1.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
			t.Errorf("Do(return sentinel) = %v; want sentinel", err)
		}
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Errorf("Do(panic) recovered %v; want boom", r)
				}
			}()
			_ = lan1.Do(func() error { panic("boom") })
		}()
		missing := &Host{Name: "missing", NS: "pl-" + l.ID + "-missing"}
		ran := false
		if err := missing.Do(func() error { ran = true; return nil }); err == nil || ran {
			t.Errorf("Do in a missing namespace = %v, ran %v; want an error, not run", err, ran)
		}
	})

	t.Run("Run", func(t *testing.T) {
		out := mustRun(t, lan0, "ip", "-o", "addr", "show", "dev", "eth0")
		if !strings.Contains(out, "198.51.100.10/24") || !strings.Contains(out, "2001:db8:100::10/64") {
			t.Errorf("lan0 addresses:\n%s", out)
		}
		_, err := lan0.Run(t.Context(), "ip", "link", "show", "dev", "nosuchlink")
		if err == nil || !strings.Contains(err.Error(), "nosuchlink") || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("Run(failing command) = %v; want the command and its output", err)
		}
	})

	// Last: it changes the gateway's address.
	t.Run("SetWANAddr", func(t *testing.T) {
		for _, p := range []string{"203.0.113.7/24", "203.0.113.9/32", "203.0.113.1/24"} {
			prefix := netip.MustParsePrefix(p)
			if err := l.SetWANAddr(t.Context(), prefix); err != nil {
				t.Fatal(err)
			}
			if l.GatewayWANAddr4 != prefix.Addr() || gw.Addr4 != prefix.Addr() {
				t.Errorf("after SetWANAddr(%v): GatewayWANAddr4 %v, Gateway.Addr4 %v", p, l.GatewayWANAddr4, gw.Addr4)
			}
			out := mustRun(t, gw, "ip", "-4", "-o", "addr", "show", "dev", "wan0")
			if n := strings.Count(out, " inet "); n != 1 || !strings.Contains(out, " inet "+p+" ") {
				t.Errorf("after SetWANAddr(%v), wan0 has:\n%s", p, out)
			}
			if src := tcpExchange(t, wan, gw, prefix.Addr()); src != wan.Addr4 {
				t.Errorf("after SetWANAddr(%v): WAN host to gateway source %v; want %v", p, src, wan.Addr4)
			}
			if src := tcpExchange(t, lan0, wan, wan.Addr4); src != prefix.Addr() {
				t.Errorf("after SetWANAddr(%v): masqueraded source %v; want %v", p, src, prefix.Addr())
			}
		}
		for _, p := range []string{"192.0.2.5/24", "203.0.113.2/24", "203.0.113.5/16", "2001:db8:203::5/64", "203.0.113.0/24"} {
			if err := l.SetWANAddr(t.Context(), netip.MustParsePrefix(p)); err == nil {
				t.Errorf("SetWANAddr(%v) = nil; want an error", p)
			}
		}
	})
}

func TestClose(t *testing.T) {
	RequireRoot(t)
	before := rootState(t)
	l, err := Setup(t.Context(), Config{LANHosts: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if len(labNamespaces(t, l.ID)) != 5 {
		t.Errorf("namespaces of lab %s: %v; want 5", l.ID, labNamespaces(t, l.ID))
	}
	// A process left inside a namespace must not keep it alive.
	sleeper := l.LAN[2].Command(t.Context(), "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sleeper.Wait() }()
	// An in-process socket neither.
	pc, err := l.WAN.ListenPacket("udp4", "203.0.113.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if left := labNamespaces(t, l.ID); len(left) != 0 {
		t.Errorf("after Close, namespaces left: %v", left)
	}
	select {
	case err := <-waited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("process in the lab ended with %v; want killed", err)
		}
	case <-time.After(exchangeTimeout):
		t.Errorf("process in the lab still running after Close")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if after := rootState(t); after != before {
		t.Errorf("root namespace changed by the lab:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestSetupCleansUpOnError(t *testing.T) {
	RequireRoot(t)
	ours := func() []string {
		return labNamespaces(t, strconv.Itoa(os.Getpid()))
	}
	before := ours()
	t.Cleanup(func() {
		for _, ns := range ours() {
			if !slices.Contains(before, ns) {
				removeNamespace(context.Background(), ns)
			}
		}
	})
	// Deadlines that expire at different stages of Setup.
	for d := 500 * time.Microsecond; d < 100*time.Millisecond; d += d / 2 {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		l, err := Setup(ctx, Config{LANHosts: 2})
		cancel()
		if err == nil {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("deadline %v: Setup error %v", d, err)
		if after := ours(); len(after) != len(before) {
			t.Fatalf("Setup with deadline %v (error %v) left namespaces: %v", d, err, after)
		}
	}
}

func TestHandleInterrupt(t *testing.T) {
	RequireRoot(t)
	l, err := Setup(t.Context(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	// Stopping without a signal leaves the lab alone.
	l.HandleInterrupt()()
	if got := labNamespaces(t, l.ID); len(got) != 3 {
		t.Fatalf("after stop, namespaces %v; want 3", got)
	}

	// This test's own handler also receives the signal HandleInterrupt
	// raises again, which keeps the test binary alive.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM)
	defer signal.Stop(sigs)
	stop := l.HandleInterrupt()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-sigs:
		case <-time.After(exchangeTimeout):
			t.Fatal("SIGTERM not raised again")
		}
	}
	stop()
	if left := labNamespaces(t, l.ID); len(left) != 0 {
		t.Errorf("after SIGTERM, namespaces left: %v", left)
	}
}

func TestRemoveStale(t *testing.T) {
	RequireRoot(t)
	pidMax, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(pidMax)))
	if err != nil {
		t.Fatal(err)
	}
	// No process can have a pid above pid_max.
	dead := "pl-" + strconv.Itoa(limit+1) + "-0badc0de-gw"
	alive := "pl-" + strconv.Itoa(os.Getpid()) + "-0badc0de-gw"
	for _, ns := range []string{dead, alive} {
		// Lab tests of other packages run at the same time and remove
		// stale namespaces too: one may take the dead one away while ip
		// is still making it ("Bind ... failed: No such file or
		// directory"). Try again; once made, whoever removes it is right.
		var err error
		for range 10 {
			if _, err = run(t.Context(), "", "ip", "netns", "add", ns); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeNamespace(context.Background(), ns) })
	}
	if err := RemoveStale(t.Context()); err != nil {
		t.Fatalf("RemoveStale = %v", err)
	}
	list := netnsList(t)
	if list[dead] {
		t.Errorf("RemoveStale kept %s, whose pid is dead", dead)
	}
	if !list[alive] {
		t.Errorf("RemoveStale removed %s, whose pid is alive", alive)
	}
}

// rootState describes the links, addresses and routes of the test's own
// namespace.
func rootState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"-o", "link"},
		{"-o", "addr"},
		{"-4", "route", "show", "table", "all"},
		{"-6", "route", "show", "table", "all"},
	} {
		// Not t.Context(): this also runs in cleanups, after its end.
		out, err := run(context.Background(), "", "ip", args...)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(out)
	}
	return b.String()
}

// netnsList returns the names of all named network namespaces.
func netnsList(t *testing.T) map[string]bool {
	t.Helper()
	out, err := run(context.Background(), "", "ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	names := make(map[string]bool)
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names[f[0]] = true
		}
	}
	return names
}

// labNamespaces returns the names of the namespaces of the lab with id.
func labNamespaces(t *testing.T, id string) []string {
	t.Helper()
	var ns []string
	for name := range netnsList(t) {
		if strings.HasPrefix(name, "pl-"+id+"-") {
			ns = append(ns, name)
		}
	}
	return ns
}

func mustRun(t *testing.T, h *Host, name string, args ...string) string {
	t.Helper()
	out, err := h.Run(t.Context(), name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readSysctl(t *testing.T, h *Host, name string) string {
	t.Helper()
	var v []byte
	err := h.Do(func() error {
		var err error
		v, err = os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}

// tcpExchange listens on to at addr, connects from from, exchanges a line
// each way and returns the source address the listener saw.
func tcpExchange(t *testing.T, from, to *Host, addr netip.Addr) netip.Addr {
	t.Helper()
	ln, err := to.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		src netip.Addr
		err error
	}
	done := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- accepted{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(exchangeTimeout))
		buf := make([]byte, 4)
		if _, err := c.Read(buf); err != nil {
			done <- accepted{err: err}
			return
		}
		if _, err := c.Write([]byte("pong")); err != nil {
			done <- accepted{err: err}
			return
		}
		done <- accepted{src: c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), exchangeTimeout)
	defer cancel()
	c, err := from.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("%s to %s: %v", from.Name, ln.Addr(), err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(exchangeTimeout))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil || string(buf) != "pong" {
		t.Fatalf("%s to %s: read %q, %v; want pong", from.Name, ln.Addr(), buf, err)
	}
	a := <-done
	if a.err != nil {
		t.Fatalf("%s accepting from %s: %v", to.Name, from.Name, a.err)
	}
	return a.src
}

// udpExchange listens on to at addr, sends a datagram from from, answers it
// and returns the source address the listener saw.
func udpExchange(t *testing.T, from, to *Host, addr netip.Addr) netip.Addr {
	t.Helper()
	pc, err := to.ListenPacket("udp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), exchangeTimeout)
	defer cancel()
	c, err := from.Dial(ctx, "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(exchangeTimeout)
	c.SetDeadline(deadline)
	pc.SetDeadline(deadline)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, src, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("%s from %s: read %q, %v; want ping", to.Name, from.Name, buf[:n], err)
	}
	if _, err := pc.WriteTo([]byte("pong"), src); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("%s from %s: read %q, %v; want pong", from.Name, to.Name, buf[:n], err)
	}
	return src.(*net.UDPAddr).AddrPort().Addr().Unmap()
}

// isTimeout reports whether err is a dial that ran out of time: the
// context's deadline, or the socket's (the same deadline, seen first by the
// connect).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
