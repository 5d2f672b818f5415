package upnpsrv

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
)

// DefaultLinkStats returns a LinkStats function that reads the counters of
// link ifname from the kernel over netlink (RTM_GETLINK, the link's 64-bit
// statistics), in the network namespace of the calling thread, and its speed
// from /sys/class/net/ifname/speed when the driver reports one. A link is up
// when its operational state is up, or unknown (PPP, tunnels) with the
// interface flag up.
func DefaultLinkStats(ifname string) func() (LinkStats, error) {
	return func() (LinkStats, error) {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return LinkStats{}, fmt.Errorf("upnpsrv: link %s: %w", ifname, err)
		}
		a := l.Attrs()
		var st LinkStats
		if s := a.Statistics; s != nil {
			st.BytesSent, st.BytesReceived = s.TxBytes, s.RxBytes
			st.PacketsSent, st.PacketsReceived = s.TxPackets, s.RxPackets
		}
		st.Up = a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown && a.Flags&net.FlagUp != 0
		if mbit := linkSpeed(ifname); mbit > 0 {
			bits := min(uint64(mbit)*1_000_000, 0xFFFFFFFF)
			st.MaxBitRateUp, st.MaxBitRateDown = uint32(bits), uint32(bits)
		}
		return st, nil
	}
}

// linkSpeed returns the link's speed in Mbit/s as the driver reports it in
// sysfs, or 0 when it reports none (virtual links answer -1 or an error).
func linkSpeed(ifname string) int64 {
	if ifname == "" || strings.ContainsAny(ifname, "/\x00") || ifname == "." || ifname == ".." {
		return 0
	}
	b, err := os.ReadFile("/sys/class/net/" + ifname + "/speed")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}
