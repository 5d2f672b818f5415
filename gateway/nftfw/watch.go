package nftfw

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Timing of Watch: a burst of changes is reported once it has been quiet
// for watchQuiet, and at the latest watchMaxDelay after its first change.
// A monitor socket that cannot be opened is tried again after watchRetry.
const (
	watchQuiet    = 50 * time.Millisecond
	watchMaxDelay = 200 * time.Millisecond
	watchRetry    = time.Second
)

// monitorBuffer is the receive buffer asked for the monitor socket: room
// for the events of a transaction of tens of thousands of elements, so
// that one of our own big transactions does not overflow it.
const monitorBuffer = 16 << 20

// nftaTableName is the attribute that names the table in every nftables
// event of a table or of something in it (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE,
// NFTA_RULE_TABLE, NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE, ...).
const nftaTableName = 1

// Watch watches the nftables events of the Firewall's network namespace and
// calls changed when someone other than this Firewall changed or deleted
// anything of its table: the table itself (`nft flush ruleset`, `nft delete
// table`), a chain, a rule, a set or map, or elements. The Firewall's own
// transactions are told apart by the netlink port ID that the kernel puts
// in each event (nlmsg_pid: that of the socket whose transaction caused it).
// A burst of changes makes one call, once the events have been quiet for
// 50 ms and at most 200 ms after the first; changed runs on a goroutine of
// its own, one call at a time, and a change during a call makes another.
//
// If the monitor socket overflows (ENOBUFS: events were lost) or fails,
// Watch calls changed, since a resynchronisation is always safe, and opens
// it again. Watch calls opened (when not nil) once the monitor socket is
// first open, and changed as well when the ruleset's generation moved
// between Watch's call and then: a caller that reconciled the kernel
// before calling Watch misses no change made by others. Watch returns
// ctx's error when ctx is done, after changed has returned.
func (f *Firewall) Watch(ctx context.Context, changed, opened func()) error {
	before, genErr := f.Generation()
	kick := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		coalesce(ctx, kick, changed)
	}()
	defer func() { <-done }()

	failed := false
	for ctx.Err() == nil {
		conn, err := f.openMonitor()
		if err != nil {
			f.log.Error("nftables monitor not opened", "err", err)
			if !failed {
				signal(kick)
			}
			select {
			case <-ctx.Done():
			case <-time.After(watchRetry):
			}
			failed = true
			continue
		}
		if failed {
			signal(kick) // events were lost since the failure
		}
		if opened != nil {
			if after, err := f.Generation(); genErr != nil || err != nil || after != before {
				signal(kick) // changed before the monitor could see it
			}
			opened()
			opened = nil
		}
		err = f.readEvents(ctx, conn, kick)
		_ = conn.Close()
		if ctx.Err() != nil {
			break
		}
		f.log.Warn("nftables monitor failed; resynchronising", "err", err, "overflow", errors.Is(err, unix.ENOBUFS))
		signal(kick)
		failed = true
	}
	return ctx.Err()
}

// signal makes a pending report, unless one is pending already.
func signal(kick chan<- struct{}) {
	select {
	case kick <- struct{}{}:
	default:
	}
}

// coalesce calls changed for each burst of signals on kick, until ctx is
// done.
func coalesce(ctx context.Context, kick <-chan struct{}, changed func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		quiet := time.NewTimer(watchQuiet)
		latest := time.NewTimer(watchMaxDelay)
	burst:
		for {
			select {
			case <-ctx.Done():
				quiet.Stop()
				latest.Stop()
				return
			case <-kick:
				quiet.Reset(watchQuiet)
			case <-quiet.C:
				break burst
			case <-latest.C:
				break burst
			}
		}
		quiet.Stop()
		latest.Stop()
		changed()
	}
}

// openMonitor opens a netlink socket in the Firewall's namespace that
// receives the nftables events.
func (f *Firewall) openMonitor() (*netlink.Conn, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: f.netns})
	if err != nil {
		return nil, fmt.Errorf("nftfw: open monitor: %w", err)
	}
	if err := setReceiveBuffer(conn); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("nftfw: monitor receive buffer: %w", err)
	}
	if err := conn.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("nftfw: join nftables events: %w", err)
	}
	return conn, nil
}

// setReceiveBuffer sets the receive buffer of c to monitorBuffer bytes,
// forcing it (SO_RCVBUFFORCE, which needs CAP_NET_ADMIN) or else asking for
// it (capped at net.core.rmem_max).
func setReceiveBuffer(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, monitorBuffer)
	}); err != nil {
		return err
	}
	if serr != nil {
		return c.SetReadBuffer(monitorBuffer)
	}
	return nil
}

// readEvents reads events from conn and signals kick for each batch that
// holds a foreign change of the table, until conn fails or ctx is done.
func (f *Firewall) readEvents(ctx context.Context, conn *netlink.Conn, kick chan<- struct{}) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		msgs, err := conn.Receive()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if f.foreignChange(m) {
				signal(kick)
				break
			}
		}
	}
}

// foreignChange reports whether m is an nftables event about the
// Firewall's table (or something in it) that another socket caused.
func (f *Firewall) foreignChange(m netlink.Message) bool {
	t := m.Header.Type
	if uint16(t)>>8 != unix.NFNL_SUBSYS_NFTABLES || uint16(t)&0xff == unix.NFT_MSG_NEWGEN {
		return false
	}
	// nfgenmsg: family, version, resource ID; then the attributes.
	if len(m.Data) < 4 || m.Data[0] != unix.NFPROTO_INET {
		return false
	}
	if !bytes.Equal(tableAttr(m.Data[4:]), []byte(f.rs.table.Name)) {
		return false
	}
	return !f.own.has(m.Header.PID)
}

// tableAttr returns the value of the first attribute of type nftaTableName
// in b, without its terminating NUL, or nil.
func tableAttr(b []byte) []byte {
	for len(b) >= 4 {
		n := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if n < 4 || n > len(b) {
			return nil
		}
		if typ == nftaTableName {
			return bytes.TrimRight(b[4:n], "\x00")
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	return nil
}
