// Package client keeps network ports reachable through NAT routers: it finds
// the gateways, speaks UPnP IGD and NAT-PMP (RFC 6886) to them, and keeps
// each mapping alive for as long as the application wants it, through
// router restarts and lost leases. It is what an application (a P2P client,
// a game, a home server) embeds, and what the portlease command is built on.
//
// # Use
//
// An application creates one Client, asks it to keep its ports, reads the
// events, and deletes the mappings when it exits:
//
//	c, err := client.New(client.Config{Logger: logger})
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	go func() {
//		for ev := range c.Events() { // ends when c is closed
//			logger.Info("port mapping", "event", ev) // Mapped, Renewed, Recreated, Failed, ExternalAddressChanged, ...
//		}
//	}()
//	m, err := c.Keep(ctx, client.Request{Protocol: client.TCP, InternalPort: 4662, Description: "eD2k"})
//	if m == nil {
//		return err // an invalid request
//	}
//	// err, if any, was the first attempt's failure: the keeper goes on trying.
//	<-ctx.Done()                       // the application runs
//	return m.Close(context.Background()) // delete the mapping from the router
//
// Map, Unmap, List and Probe are the one-shot operations (`portlease map`,
// `unmap`, `list`, `probe`).
//
// # Gateways and protocols
//
// The gateways are the routers of the IPv4 default routes of each interface
// (lowest metric first: read over netlink on Linux, from the routing socket
// on macOS and the BSDs, with the IP Helper API on Windows), or
// Config.Gateway. On each, as
// needed (Probe: both at once), the client asks NAT-PMP for the external
// address (three tries, 1.75 s at most) and searches for UPnP Internet
// Gateway Devices with SSDP M-SEARCH,
// multicast on the gateway's link and unicast to the gateway, for IGD:1 and
// IGD:2 (or fetches Config.DescriptionURL). With Method Auto it prefers
// NAT-PMP, whose renewals cost one small packet and whose epoch tells when
// the router lost its state; it uses UPnP where NAT-PMP does not answer or
// fails, and for another device's address, which only UPnP can map. A
// gateway that answers NAT-PMP with version 2 speaks only PCP, which this
// package does not speak: it is reported (NATPMPInfo.PCPOnly) and skipped.
//
// # Keeping a mapping
//
// A kept Mapping is renewed at half of the lifetime the gateway granted
// (gateways shorten, fix or ignore the lifetime asked for; a UPnP gateway
// that grants only permanent leases gets no renewals but checks). It is
// made again at once when the gateway lost it:
//
//   - NAT-PMP: the epoch of any answer or announcement going backwards (RFC
//     6886 §3.6); announcements are heard on 224.0.0.1:5350, from the
//     gateway's address only (§3.2.1), and the epoch is also asked for
//     every Config.CheckInterval. Each burst of announcements (§3.2.1: up
//     to ten after a restart or an address change) also has every NAT-PMP
//     mapping on the gateway asked for again at once, once per burst: a
//     renewal where the gateway kept it, a re-creation where it lost it,
//     which repairs a router that restarted within the seconds of slack
//     the epoch check allows. A verification that finds a mapping as it
//     was is quiet (no event).
//   - UPnP: the entry missing or disabled when it is read back
//     (GetSpecificPortMappingEntry) every Config.CheckInterval, and at once
//     when the IGD announces itself anew over SSDP: an ssdp:alive with a
//     new BOOTID.UPNP.ORG (GatewayRestarted), or after an ssdp:byebye. An entry that now
//     leads to another host is a conflict, handled as Request.OnConflict
//     says.
//
// A failed attempt is retried with backoff (1 s doubling, at most
// Config.CheckInterval); after two failures in a row every gateway and
// protocol is looked at again. Events reports each step; the external
// address and its changes too, and DoubleNATDetected when it is private or
// carrier-grade NAT space, where mappings are not reachable from the
// internet (Gateway.DoubleNAT, Classify).
//
// Conflicts: over UPnP a port held by another mapping fails with
// ErrConflict (ConflictKeep), or the holder is deleted and the port taken
// (ConflictReplace, upnp-daemon's behaviour). A Request without an external
// port takes the internal one when free, else any. NAT-PMP gateways choose
// the external port themselves.
//
// # Network namespaces
//
// A Client works in the network namespace of the thread that called New.
// Its own goroutines, and net/http's, may run on threads of another
// namespace (a program, or a test, that switched one locked thread into a
// namespace to call New); so every socket and netlink handle it opens later
// is opened through a runner that switches a thread of its own into the
// recorded namespace when the current one is elsewhere (Linux setns; it
// needs CAP_SYS_ADMIN only in that case, never in an ordinary program).
// A socket keeps its namespace whichever thread uses it. This is Linux's
// alone: other systems have no per-thread network namespace, and there a
// Client's sockets are the process's.
//
// # Testing against fakes
//
// Config.NATPMPPort, Config.AnnounceAddr and Config.NotifyAddr point every
// socket the client opens at addresses of the caller's choosing, such as
// 127.0.0.1 and ports of a test's own, with Config.Gateway and
// Config.DescriptionURL naming the fakes; see the Example.
package client
