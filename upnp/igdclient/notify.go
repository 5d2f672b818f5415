package igdclient

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/portlease/portlease/upnp"
)

// WatchNotify listens for SSDP NOTIFY on the target's interface and calls fn
// for each ssdp:alive, ssdp:byebye and ssdp:update about an IGD (a NOTIFY
// whose NT is an InternetGatewayDevice, WANDevice, WANConnectionDevice,
// WANIPConnection, WANPPPConnection or WANCommonInterfaceConfig type), until
// ctx is done; it then returns nil. Devices send several NOTIFY per
// announcement (one per type, often repeated): fn sees them all. A change of
// BOOTID.UPNP.ORG (Notify.BootID) from the same device means it rebooted and
// has probably lost its mappings (UDA 1.1 §1.2.2). Quirk: miniupnpd 2.3.1
// uses its start time in seconds as BOOTID, so a restart within the same
// second keeps it (seen in the lab): an ssdp:byebye followed by an
// ssdp:alive is the other sign of a restart.
//
// It binds 0.0.0.0:1900 with SO_REUSEADDR and SO_REUSEPORT, so that it
// coexists with other SSDP listeners, joins 239.255.255.250 on t.Interface
// (else on the interface of t.Local, else on one the kernel picks) and drops
// datagrams that arrive on other interfaces or come from off the link (see
// Target.OnLink: those of t's interface, or of every interface). It only listens: nothing is
// sent but the group membership report. fn runs on WatchNotify's goroutine.
func (c *Client) WatchNotify(ctx context.Context, t Target, fn func(from netip.AddrPort, n upnp.Notify)) error {
	lc := net.ListenConfig{Control: reuseControl}
	pc, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", upnp.SSDPPort))
	if err != nil {
		return fmt.Errorf("igdclient: notify socket: %w", err)
	}
	defer pc.Close()
	ifi, err := multicastInterface(t)
	if err != nil {
		return err
	}
	p := ipv4.NewPacketConn(pc)
	group := net.UDPAddrFromAddrPort(upnp.SSDPMulticastAddr())
	if err := p.JoinGroup(ifi, group); err != nil {
		return fmt.Errorf("igdclient: join %v: %w", group, err)
	}
	filter := ifi != nil
	if filter {
		if err := p.SetControlMessage(ipv4.FlagInterface, true); err != nil {
			// No way to tell interfaces apart: take everything.
			c.log.Debug("igdclient: no interface control messages", "err", err)
			filter = false
		}
	}
	prefixes, err := onLink(t)
	if err != nil {
		return err
	}
	read := func(b []byte) (int, net.Addr, error) {
		n, cm, from, err := p.ReadFrom(b)
		if err == nil && filter && cm != nil && cm.IfIndex != ifi.Index {
			return 0, nil, nil
		}
		if ua, ok := from.(*net.UDPAddr); ok && err == nil && !acceptedSource(ua.AddrPort().Addr(), prefixes, nil) {
			c.log.Debug("igdclient: notify from off the link ignored", "from", ua.String())
			return 0, nil, nil
		}
		return n, from, err
	}
	return c.serveNotify(ctx, pc, read, fn)
}

// ServeNotify is WatchNotify on a socket the caller opened and owns (one
// already bound to the SSDP port and joined to the group, or a test's): it
// reads pc until ctx is done, then returns nil, leaving pc open with its
// read deadline in the past.
func (c *Client) ServeNotify(ctx context.Context, pc net.PacketConn, fn func(from netip.AddrPort, n upnp.Notify)) error {
	return c.serveNotify(ctx, pc, pc.ReadFrom, fn)
}

// serveNotify reads datagrams with read (a read of pc, possibly filtered:
// a nil address means dropped) and hands IGD NOTIFYs to fn.
func (c *Client) serveNotify(ctx context.Context, pc net.PacketConn, read func([]byte) (int, net.Addr, error), fn func(netip.AddrPort, upnp.Notify)) error {
	// Cancelling ctx moves the read deadline to the past, where it stays.
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("igdclient: notify socket: %w", err)
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok || n == len(buf) {
			continue // dropped by the filter, or truncated
		}
		src := ua.AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		nt, err := upnp.ParseNotify(buf[:n])
		if err != nil {
			continue // M-SEARCH of other hosts, or noise
		}
		if !igdType(nt.NT) {
			continue
		}
		switch nt.NTS {
		case upnp.NTSAlive, upnp.NTSByeBye, upnp.NTSUpdate:
		default:
			continue
		}
		c.log.Debug("igdclient: notify", "from", src, "nt", nt.NT, "nts", nt.NTS, "bootid", nt.BootID)
		fn(src, nt)
	}
}

// igdType reports whether a NOTIFY type names a device or service of an IGD.
func igdType(nt string) bool {
	for _, t := range []string{
		":device:InternetGatewayDevice:", ":device:WANDevice:", ":device:WANConnectionDevice:",
		":service:WANIPConnection:", ":service:WANPPPConnection:", ":service:WANCommonInterfaceConfig:",
	} {
		if strings.Contains(nt, t) {
			return true
		}
	}
	return false
}

// multicastInterface returns the interface named by t, or the one holding
// t.Local, or nil (the kernel's choice).
func multicastInterface(t Target) (*net.Interface, error) {
	if t.Interface != "" {
		ifi, err := net.InterfaceByName(t.Interface)
		if err != nil {
			return nil, fmt.Errorf("igdclient: interface %q: %w", t.Interface, err)
		}
		return ifi, nil
	}
	if !t.Local.IsValid() {
		return nil, nil
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("igdclient: interfaces: %w", err)
	}
	for i := range ifs {
		addrs, err := ifs[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(p.IP); ok && ip.Unmap() == t.Local.Unmap() {
					return &ifs[i], nil
				}
			}
		}
	}
	return nil, fmt.Errorf("igdclient: no interface holds %v", t.Local)
}
