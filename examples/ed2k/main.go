// Command ed2k keeps the ports an eD2k/Kad client (aMule, eMule) needs
// mapped on the router, for as long as it runs, and deletes them when it is
// stopped (SIGINT or SIGTERM). It is an example of the client library: it
// does what aMule's UPnP option does, with NAT-PMP as well, and it follows
// the router through restarts.
//
// The ports, each one switchable:
//
//	TCP  -tcp (4662)             the eD2k listen port
//	UDP  -tcp + -udp-offset (+3) the eD2k server UDP port (4665)
//	UDP  -kad (4672)             the extended eMule / Kademlia UDP port
//	TCP  -ec (0: off)            the External Connections (remote control) port
//
// Each port is asked for the same external port, since eD2k peers and servers
// reach a client at the port it announces. When the host has a global IPv6
// address (on a link with an IPv6 default route), each port is also opened
// to it as an IPv6 firewall pinhole: over PCP to the IPv6 default router, or
// over UPnP (WANIPv6FirewallControl:1); -no-ipv6 leaves IPv6 alone, and
// NAT-PMP opens none. Usage:
//
//	ed2k [-tcp 4662] [-udp-offset 3] [-kad 4672] [-ec 4712] [-no-tcp] [-no-udp] [-no-kad]
//	     [-no-ipv6] [-protocol auto|pcp|upnp|natpmp] [-gateway ADDR] [-interface IF] [-url URL]
//	     [-lifetime 2h] [-check-interval 60s] [-replace] [-v]
//
// It prints one line per event on standard output, and logs on standard
// error. The exit status is 0 after a clean stop, 1 when nothing could be
// kept at all (bad flags), 2 when a mapping could not be deleted at exit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/portlease/portlease/client"
)

// port is one port of the eD2k client.
type port struct {
	what  string
	proto client.Protocol
	num   uint16
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		tcp       = flag.Uint("tcp", 4662, "the eD2k TCP listen port")
		udpOffset = flag.Int("udp-offset", 3, "the eD2k UDP port is the TCP port plus this")
		kad       = flag.Uint("kad", 4672, "the Kad (extended eMule) UDP port")
		ec        = flag.Uint("ec", 0, "the External Connections TCP port (0: not mapped)")
		noTCP     = flag.Bool("no-tcp", false, "do not map the TCP listen port")
		noUDP     = flag.Bool("no-udp", false, "do not map the eD2k UDP port")
		noKad     = flag.Bool("no-kad", false, "do not map the Kad UDP port")
		noIPv6    = flag.Bool("no-ipv6", false, "do not open the ports as IPv6 pinholes to this host's global IPv6 address")
		method    = flag.String("protocol", "auto", "the protocol to speak to the router: auto, pcp, upnp or natpmp")
		gateway   = flag.String("gateway", "", "the router's address (default: the default route of each interface)")
		iface     = flag.String("interface", "", "use only this interface")
		url       = flag.String("url", "", "UPnP: the IGD's description URL (skips SSDP discovery)")
		lifetime  = flag.Duration("lifetime", client.DefaultLifetime, "the lease asked for; renewed at half of what is granted")
		check     = flag.Duration("check-interval", client.DefaultCheckInterval, "how often the router is asked whether it still holds the mappings")
		replace   = flag.Bool("replace", false, "take a port another mapping holds (delete it); default: report the conflict")
		verbose   = flag.Bool("v", false, "log at debug level")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ed2k: unexpected argument %q\n", flag.Arg(0))
		return 1
	}

	var ports []port
	add := func(on bool, what string, proto client.Protocol, n int) error {
		if !on {
			return nil
		}
		if n < 1 || n > 65535 {
			return fmt.Errorf("%s port %d: want 1 to 65535", what, n)
		}
		ports = append(ports, port{what, proto, uint16(n)})
		return nil
	}
	for _, err := range []error{
		add(!*noTCP, "eD2k TCP", client.TCP, int(*tcp)),
		add(!*noUDP, "eD2k UDP", client.UDP, int(*tcp)+*udpOffset),
		add(!*noKad, "Kad UDP", client.UDP, int(*kad)),
		add(*ec != 0, "EC TCP", client.TCP, int(*ec)),
	} {
		if err != nil {
			fmt.Fprintln(os.Stderr, "ed2k:", err)
			return 1
		}
	}
	if len(ports) == 0 {
		fmt.Fprintln(os.Stderr, "ed2k: no port to map")
		return 1
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	speak, err := client.ParseMethod(*method)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ed2k: -protocol:", err)
		return 1
	}
	cfg := client.Config{
		Logger:         log,
		Method:         speak,
		Interface:      *iface,
		DescriptionURL: *url,
		CheckInterval:  *check,
	}
	if *gateway != "" {
		a, err := netip.ParseAddr(*gateway)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ed2k: -gateway %q: not an IP address\n", *gateway)
			return 1
		}
		cfg.Gateway = a
	}
	c, err := client.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ed2k:", err)
		return 1
	}
	defer c.Close()

	// The events are printed until the client is closed.
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for ev := range c.Events() {
			printEvent(ev)
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	policy := client.ConflictKeep
	if *replace {
		policy = client.ConflictReplace
	}
	var reqs []client.Request
	for _, p := range ports {
		reqs = append(reqs, client.Request{
			Protocol:     p.proto,
			InternalPort: p.num,
			ExternalPort: p.num,
			Lifetime:     *lifetime,
			Description:  "eD2k " + p.what,
			OnConflict:   policy,
		})
	}
	pinholes := 0
	if !*noIPv6 && speak != client.NATPMP {
		addrs, err := c.PinholeAddrs()
		if err != nil {
			fmt.Fprintln(os.Stderr, "ed2k: no IPv6 pinholes:", err)
		}
		for _, a := range addrs {
			for _, p := range ports {
				reqs = append(reqs, client.Request{
					Protocol:     p.proto,
					InternalPort: p.num,
					InternalAddr: a,
					Lifetime:     *lifetime,
					Description:  "eD2k " + p.what + " (IPv6)",
				})
				pinholes++
			}
		}
	}
	var kept []*client.Mapping
	for _, r := range reqs {
		m, err := c.Keep(ctx, r)
		if m == nil {
			fmt.Fprintf(os.Stderr, "ed2k: %s: %v\n", r, err)
			continue
		}
		kept = append(kept, m)
	}
	if len(kept) == 0 {
		return 1
	}
	fmt.Printf("keeping %d ports (%d of them IPv6 pinholes); stop with Ctrl-C\n", len(kept), pinholes)
	<-ctx.Done()

	// Delete the mappings, then close the client (which closes Events).
	status := 0
	dctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, m := range kept {
		r := m.Request()
		if err := m.Close(dctx); err != nil && !errors.Is(err, client.ErrNotFound) {
			fmt.Fprintf(os.Stderr, "ed2k: delete %s: %v\n", r, err)
			status = 2
		}
	}
	c.Close()
	<-printed
	fmt.Println("stopped")
	return status
}

// printEvent prints one line for ev. A mapping reads "TCP 4662 -> 203.0.113.1:4662",
// a pinhole "TCP 4662 pinhole [2001:db8::10]:4662".
func printEvent(ev client.Event) {
	r, res := ev.Request, ev.Result
	switch ev.Kind {
	case client.Mapped, client.Renewed, client.Recreated:
		lt := "permanent"
		if res.Lifetime > 0 {
			lt = "for " + res.Lifetime.String()
		}
		fmt.Printf("%s %s via %s (gateway %s), %s\n",
			strings.ToLower(ev.Kind.String()), granted(res), res.Method, res.Gateway, lt)
	case client.Failed:
		if r.Protocol == "" {
			fmt.Printf("failed: %v\n", ev.Err)
		} else {
			fmt.Printf("failed %s: %v\n", r, ev.Err)
		}
	case client.Deleted:
		fmt.Printf("deleted %s\n", granted(res))
	case client.ExternalAddressChanged:
		fmt.Printf("external address %s (gateway %s)\n", ev.ExternalAddress, ev.Gateway)
	case client.DoubleNATDetected:
		fmt.Printf("WARNING: external address %s is not public: another NAT lies beyond the router, and the ports are not reachable from the internet (LowID)\n", ev.ExternalAddress)
	case client.GatewayRestarted:
		fmt.Printf("gateway %s restarted: mapping again\n", ev.Gateway)
	default:
		fmt.Println(ev)
	}
}

// granted returns "TCP 4662 -> 203.0.113.1:4662" for a mapping, "TCP 4662
// pinhole [2001:db8::10]:4662" for a pinhole.
func granted(res client.Result) string {
	if res.Pinhole {
		return fmt.Sprintf("%s %d pinhole %s", res.Protocol, res.Internal.Port(), res.Internal)
	}
	return fmt.Sprintf("%s %d -> %s", res.Protocol, res.Internal.Port(), res.External)
}
