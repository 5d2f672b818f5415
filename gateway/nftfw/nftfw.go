// Package nftfw is the nftables backend of portleased: it enforces the lease
// core's port mappings in the Linux kernel over netlink
// (github.com/google/nftables), never through an nft process.
//
// The backend owns one table, "inet portleased" by default, and touches
// nothing else: the host's other tables keep working beside it, and Close
// removes the table. New does not throw away a table left by an earlier run
// (a restart, a crash): in one transaction it replaces the rules and makes
// anew only the sets and maps whose definition changed, so that the
// mappings in the maps keep forwarding through a restart. Reconcile then
// makes the maps hold exactly the lease table's mappings (adopting what
// matches, adding what is missing, removing the rest) and installs the
// table again if someone removed it or part of it. Watch reports when
// someone else (`nft flush ruleset`, `systemctl reload nftables`, `nft
// delete element ...`) changes the table, so that the daemon reconciles
// at once. Each mapping is one element of the inbound map and (for
// the first mapping of an internal endpoint) one of the outbound map, so
// adding, renewing or removing a mapping costs the same whatever the number
// of mappings, and never touches another mapping. With one mapping installed
// the table reads, as `nft list table inet portleased` prints it (WAN link
// "wan0", InternalInterfaces empty):
//
//	table inet portleased {
//		map inbound4 {
//			type inet_proto . inet_service : ipv4_addr . inet_service
//			flags timeout
//			elements = { tcp . 8080 timeout 1h30s expires 1h30s : 198.51.100.10 . 80 }
//		}
//		map outbound4 {
//			type inet_proto . ipv4_addr . inet_service : inet_service
//			flags timeout
//			elements = { tcp . 198.51.100.10 . 80 timeout 1h30s expires 1h30s : 8080 }
//		}
//		set extaddr4 {
//			type ipv4_addr
//			elements = { 203.0.113.1 }
//		}
//		map snat4 {
//			type ifname : ipv4_addr
//			elements = { "wan0" : 203.0.113.1 }
//		}
//		chain prerouting {
//			type nat hook prerouting priority dstnat; policy accept;
//			iifname "wan0" meta nfproto ipv4 dnat ip to meta l4proto . th dport map @inbound4
//			iifname != "wan0" ip daddr @extaddr4 dnat ip to meta l4proto . th dport map @inbound4
//		}
//		chain output {
//			type nat hook output priority -100; policy accept;
//			ip daddr @extaddr4 dnat ip to meta l4proto . th dport map @inbound4
//		}
//		chain postrouting {
//			type nat hook postrouting priority srcnat - 10; policy accept;
//			oifname "wan0" meta nfproto ipv4 meta l4proto { tcp, udp, dccp, sctp, udplite } snat ip to oifname map @snat4:meta l4proto . ip saddr . th sport map @outbound4
//			iifname != "wan0" oifname != "wan0" ct status dnat meta l4proto . ip daddr . th dport @outbound4 masquerade
//		}
//		chain forward {
//			type filter hook forward priority filter; policy accept;
//			ct status dnat meta mark set meta mark | 0x10000000 counter packets 0 bytes 0 accept
//			(and the rules of pinholes and filters: see peerrules.go)
//		}
//	}
//
// What nft prints of the table is also valid nft input, so that saving and
// restoring the ruleset with nft keeps working.
//
// Inbound: a packet arriving on the WAN link for (protocol, external port) is
// translated to the mapping's internal address and port (RFC 6887 §11).
//
// Hairpinning (RFC 4787 REQ-9, RFC 6887 §11.4): a packet arriving on another
// link (one of InternalInterfaces when given) for the external address is
// translated the same way, and masqueraded when it leaves towards the mapped
// LAN host, so that the replies come back through the gateway. The gateway's
// own processes reach mappings through the output chain. The backend learns
// the external address from SetExternalAddress: the rules do not embed it,
// so a new WAN address costs one small transaction. The rules do embed the
// names of the WAN and LAN links: SetInterfaces replaces the rules and the
// snat map's element in one transaction, leaving the mappings' maps alone,
// so that a reconfigured gateway forwards them through its new links
// without a gap.
//
// Outbound: a connection leaving the WAN link from a mapped internal address
// and port takes the mapping's external port as its source port, so that the
// mapping is endpoint independent (RFC 4787 REQ-1, RFC 6887 §11.1). It is a
// source NAT to the address given to SetExternalAddress; until that is
// called, and for endpoints without a mapping, the host's own masquerade
// applies. The postrouting chain runs at srcnat - 10, before a masquerade at
// the usual srcnat priority: the first NAT rule that matches the first packet
// of a connection decides the translation of the whole connection.
//
// Forwarding: the forward chain accepts connections that were translated by
// a destination NAT, and the traffic of pinholes, and marks it (Config.Mark,
// DefaultMark). In nftables an accept ends only the base chain that says it:
// a drop in another table's forward chain (the host's firewall) still wins,
// so such a firewall must itself accept the mark, with the one line
// ForwardAcceptRule returns (`meta mark & 0x10000000 == 0x10000000
// accept`); CheckForwardPath finds default-drop forward chains that lack
// it.
//
// Kernel timeouts: the elements of a mapping with a Lifetime get the kernel
// timeout Lifetime + Config.TimeoutGrace, a backup of the lease core's own
// expiry should the daemon die; the lease table stays the authority.
//
// Conntrack: removing a mapping, or moving its key to another internal
// endpoint, stops new connections, and the Firewall then deletes the
// conntrack entries of the connections that used it (package
// gateway/conntrack), in the background and within milliseconds of the
// transaction (one conntrack dump for the transactions of that time), so
// that their next packets follow the rules of the moment: a UDP flow from
// the WAN stops reaching the old host, and reaches the key's new holder.
// Renewals keep their connections. Config.KeepFlows turns this off.
//
// IPv6: pinholes (Mapping.Pinhole) and the filters of mappings and
// pinholes (Mapping.Filters) are elements of sets of their own in the same
// table, with the same kernel timeouts (see peerrules.go); an IPv6 mapping
// that would translate is refused (ErrIPv6).
package nftfw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/conntrack"
	"github.com/portlease/portlease/gateway/fwplan"
)

// DefaultTable is the name of the table used when Config.Table is empty.
const DefaultTable = "portleased"

// DefaultTimeoutGrace is the time added to a mapping's Lifetime to make its
// kernel timeout, when Config.TimeoutGrace is zero.
const DefaultTimeoutGrace = 30 * time.Second

// maxKernelTimeout bounds the kernel timeouts that are set: a mapping that
// lives longer than this gets no kernel timeout at all, rather than one that
// would end it early.
const maxKernelTimeout = 365 * 24 * time.Hour

// ifNameSize is IFNAMSIZ: interface names are compared as 16 bytes, the
// name padded with zeros.
const ifNameSize = 16

// sendBuffer is the send buffer asked for: room for a transaction of about
// 40,000 mapping changes.
const sendBuffer = 4 << 20

var _ gateway.Firewall = (*Firewall)(nil)

// Errors returned by the Firewall.
var (
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("nftfw: closed")
	// ErrIPv6 is returned by Apply for a mapping that would translate to
	// an IPv6 internal address (NAT66); IPv6 pinholes are not refused.
	ErrIPv6 = errors.New("nftfw: IPv6 translation not supported")
)

// Config configures a Firewall. Only ExternalInterface is required.
type Config struct {
	// Table is the name of the inet table the backend owns; empty means
	// DefaultTable. A table of that name left by an earlier run is
	// made what the configuration needs, keeping the elements of its maps
	// (see New).
	Table string
	// ExternalInterface is the WAN link, such as "wan0".
	ExternalInterface string
	// InternalInterfaces are the LAN links whose hosts may reach mappings
	// through the external address (hairpinning). Empty means every link
	// but ExternalInterface.
	InternalInterfaces []string
	// NetNS is a file descriptor of the network namespace to work in; 0
	// means the caller's own. It must stay open while the Firewall is in
	// use.
	NetNS int
	// TimeoutGrace is added to a mapping's Lifetime to make the kernel
	// timeout of its elements. Zero means DefaultTimeoutGrace; a negative
	// value means no grace (the kernel timeout is the Lifetime itself).
	TimeoutGrace time.Duration
	// Logger receives the backend's logs; nil discards them.
	Logger *slog.Logger
	// KeepFlows leaves the conntrack entries of removed and moved mappings
	// alone: their connections keep their old translation until they end.
	// The default deletes them after each transaction that ends a mapping.
	KeepFlows bool
	// Mark is the packet mark bits the forward chain sets (ORs in) on the
	// traffic it admits, which the operator's own default-drop forward
	// chain accepts with ForwardAcceptRule(Mark); zero means DefaultMark.
	Mark uint32
}

// Firewall is the nftables backend. It is safe for concurrent use.
type Firewall struct {
	log   *slog.Logger
	grace time.Duration
	rs    *ruleset
	netns int
	// plan is the configuration of the planner's State.
	plan fwplan.Config
	// flows deletes the conntrack entries of changed mappings in the
	// background.
	flows *conntrack.Forgetter

	// own holds the netlink port IDs of the Firewall's connections, which
	// tell its own changes from others' (see Watch).
	own ownConns

	mu     sync.Mutex // serialises transactions and guards what follows
	conn   *nftables.Conn
	closed bool
	// st is what the Firewall installed in the kernel: its mappings,
	// pinholes and filters, and which mapping owns each endpoint's
	// outbound element (gateway/fwplan).
	st *fwplan.State
	// ext is the address last given to SetExternalAddress, which Reconcile
	// installs again; extSet says whether there was one.
	ext    netip.Addr
	extSet bool
}

// New installs the backend's table in one transaction. A table of the same
// name left by an earlier run is made what this configuration needs without
// a gap: its chains get their rules replaced, sets and maps of another
// definition are made anew, and the maps that match keep their elements, so
// that established mappings keep forwarding through a restart. The host's
// other tables are left alone. The Firewall's State starts empty: call
// Reconcile with the lease table's mappings before Apply.
func New(cfg Config) (*Firewall, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if err := checkInterfaces(cfg.ExternalInterface, cfg.InternalInterfaces); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	grace := cfg.TimeoutGrace
	switch {
	case grace == 0:
		grace = DefaultTimeoutGrace
	case grace < 0:
		grace = 0
	}

	mark := cfg.Mark
	if mark == 0 {
		mark = DefaultMark
	}
	f := &Firewall{
		log:   log,
		grace: grace,
		rs:    newRuleset(cfg.Table, cfg.ExternalInterface, cfg.InternalInterfaces, mark),
		netns: cfg.NetNS,
		plan:  fwplan.Config{TimeoutGrace: grace, MaxTimeout: maxKernelTimeout, KeepFlows: cfg.KeepFlows},
		flows: conntrack.NewForgetter(cfg.NetNS, log),
	}
	f.st = fwplan.New(f.plan, time.Now())
	conn, err := dial(cfg.NetNS, &f.own)
	if err != nil {
		return nil, err
	}
	f.conn = conn
	have, err := f.rs.readTable(conn, false)
	if err == nil {
		err = f.rs.install(conn, have)
	}
	if err == nil {
		err = conn.Flush()
	}
	if err != nil {
		_ = conn.CloseLasting()
		return nil, fmt.Errorf("nftfw: install table inet %s: %w", cfg.Table, err)
	}
	log.Info("nftables table installed", "table", cfg.Table, "external", cfg.ExternalInterface,
		"kept", have.exists)
	return f, nil
}

// dial opens the lasting netlink connection of a Firewall, with a send
// buffer large enough for big transactions: the kernel refuses a batch
// larger than the socket's send buffer. Its port ID is added to own.
func dial(netns int, own *ownConns) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{
		nftables.AsLasting(),
		nftables.WithSockOptions(setSendBuffer, setRecvBuffer, own.record, widenDumps),
	}
	if netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(netns))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftfw: open netlink: %w", err)
	}
	return conn, nil
}

// setSendBuffer sets the send buffer of c to sendBuffer bytes. It forces the
// size (SO_SNDBUFFORCE, which needs CAP_NET_ADMIN like nftables itself) and
// falls back to asking for it (SO_SNDBUF, capped at net.core.wmem_max).
func setSendBuffer(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer)
	}); err != nil {
		return err
	}
	if serr != nil {
		return c.SetWriteBuffer(sendBuffer)
	}
	return nil
}

// recvBuffer is the receive buffer asked for: room for the kernel's answers
// to the messages of the transaction that installs the table (one per set,
// chain and rule: about 200), which google/nftables reads only once the
// whole transaction is sent.
const recvBuffer = 1 << 20

// setRecvBuffer sets the receive buffer of c to recvBuffer bytes, forced
// as setSendBuffer forces the send buffer.
func setRecvBuffer(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBuffer)
	}); err != nil {
		return err
	}
	if serr != nil {
		return c.SetReadBuffer(recvBuffer)
	}
	return nil
}

// resetConn replaces the netlink connection, dropping whatever was queued on
// the old one. If a lasting connection cannot be opened, the new Conn opens
// a socket per operation instead. The caller holds f.mu.
func (f *Firewall) resetConn() error {
	_ = f.conn.CloseLasting()
	conn, err := dial(f.netns, &f.own)
	if err != nil {
		var opts []nftables.ConnOption
		if f.netns != 0 {
			opts = append(opts, nftables.WithNetNSFd(f.netns))
		}
		// Without AsLasting, New opens nothing and cannot fail. Each
		// operation's socket is recorded, so that Watch knows it.
		opts = append(opts, nftables.WithSockOptions(f.own.record, setRecvBuffer))
		conn, _ = nftables.New(opts...)
	}
	f.conn = conn
	return err
}

// checkInterfaces reports whether external and internal can be the
// Firewall's WAN link and LAN links.
func checkInterfaces(external string, internal []string) error {
	if err := checkIfName(external); err != nil {
		return fmt.Errorf("nftfw: external interface: %w", err)
	}
	for _, name := range internal {
		if err := checkIfName(name); err != nil {
			return fmt.Errorf("nftfw: internal interface: %w", err)
		}
		if name == external {
			return fmt.Errorf("nftfw: internal interface %q is the external interface", name)
		}
	}
	return nil
}

// checkIfName reports whether name can be an interface name.
func checkIfName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) >= ifNameSize {
		return fmt.Errorf("name %q longer than %d bytes", name, ifNameSize-1)
	}
	return nil
}

// SetExternalAddress sets the address of the external interface, which
// hairpinned traffic is addressed to and which outbound traffic of mapped
// endpoints is translated to. It may be called again whenever the address
// changes; an invalid (zero) addr clears it, which turns hairpinning and the
// outbound port mapping off.
func (f *Firewall) SetExternalAddress(ctx context.Context, addr netip.Addr) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	addr = addr.Unmap()
	if addr.IsValid() && !addr.Is4() {
		return fmt.Errorf("nftfw: external address %v: %w", addr, ErrIPv6)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	if err := f.rs.setExternal(f.conn, addr); err != nil {
		// Part of the transaction is queued: drop it with the connection.
		return fmt.Errorf("nftfw: set external address %v: %w", addr, errors.Join(err, f.resetConn()))
	}
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("nftfw: set external address %v: %w", addr, err)
	}
	f.ext, f.extSet = addr, true
	f.log.Info("external address set", "addr", addr)
	return nil
}

// Len returns the number of mappings the backend holds.
func (f *Firewall) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Len() + f.st.Pinholes()
}

// Elements reads the inbound map back from the kernel and returns its
// mappings, in no particular order. The Lifetime of a mapping is what is
// left of its kernel timeout minus the grace (at least a millisecond), or
// zero when it has no kernel timeout.
func (f *Firewall) Elements(ctx context.Context) ([]gateway.Mapping, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	elems, err := f.conn.GetSetElements(f.rs.inbound)
	if err != nil {
		return nil, fmt.Errorf("nftfw: read map %s: %w", f.rs.inbound.Name, err)
	}
	ms := make([]gateway.Mapping, 0, len(elems))
	for _, e := range elems {
		m, err := decodeInbound(e.Key, e.Val)
		if err != nil {
			return nil, err
		}
		if e.Timeout > 0 {
			m.Lifetime = max(e.Expires-f.grace, time.Millisecond)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// Close deletes the backend's table, and with it every mapping. It is safe
// to call more than once; later calls return nil.
func (f *Firewall) Close() error { return f.close(true) }

// Release closes the backend's netlink connection and leaves its table and
// every mapping in the kernel, for the next run to adopt (New keeps the
// table, Reconcile adopts the elements): mappings keep forwarding across a
// restart, and each ends with its kernel timeout if no run comes back. It
// is safe to call more than once, and after Close.
func (f *Firewall) Release() error { return f.close(false) }

// close closes the netlink connection, deleting the table first when
// deleteTable is set.
func (f *Firewall) close(deleteTable bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.flows.Close() // the flows of the last transactions, before netlink closes
	f.st = fwplan.New(f.plan, time.Now())
	var err error
	if deleteTable {
		f.conn.DelTable(f.rs.table)
		err = f.conn.Flush()
		if errors.Is(err, unix.ENOENT) {
			err = nil // someone deleted it already
		}
		if err != nil {
			err = fmt.Errorf("nftfw: delete table inet %s: %w", f.rs.table.Name, err)
		}
	}
	if cerr := f.conn.CloseLasting(); cerr != nil && err == nil {
		err = fmt.Errorf("nftfw: close netlink: %w", cerr)
	}
	switch {
	case err != nil:
		f.log.Error("nftables table not removed", "table", f.rs.table.Name, "err", err)
	case deleteTable:
		f.log.Info("nftables table removed", "table", f.rs.table.Name)
	default:
		f.log.Info("nftables table left in place", "table", f.rs.table.Name)
	}
	return err
}

var _ gateway.Firewall = (*Firewall)(nil)
