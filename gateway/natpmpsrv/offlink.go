package natpmpsrv

import (
	"log/slog"
	"net/netip"
	"time"
)

// offLinkInterval is the least time between two log records of datagrams
// dropped because their source is off the served subnet.
const offLinkInterval = 10 * time.Second

// offLinkLog counts the datagrams one listener dropped for their source and
// logs them at most once per offLinkInterval, so that a flood of spoofed
// packets does not become a flood of log records. It is used by the
// listener's read loop alone.
type offLinkLog struct {
	dropped int
	logged  time.Time
}

// note counts a datagram from src dropped for not being on subnet.
func (o *offLinkLog) note(log *slog.Logger, src netip.AddrPort, subnet netip.Prefix) {
	o.dropped++
	now := time.Now()
	if !o.logged.IsZero() && now.Sub(o.logged) < offLinkInterval {
		return
	}
	log.Debug("ignored packets from outside the subnet", "client", src, "subnet", subnet, "count", o.dropped)
	o.dropped = 0
	o.logged = now
}
