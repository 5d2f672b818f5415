package localport

import (
	"net"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestInUse: a socket of either family, on a specific or the wildcard
// address, makes its port in use for its protocol, and only while it is
// open.
func TestInUse(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp4", "0.0.0.0:0"},
		{"tcp6", "[::1]:0"},
		{"udp4", "127.0.0.1:0"},
		{"udp4", "0.0.0.0:0"},
		{"udp6", "[::1]:0"},
	} {
		t.Run(tc.network+" "+tc.addr, func(t *testing.T) {
			var port uint16
			var closer interface{ Close() error }
			proto := uint8(unix.IPPROTO_UDP)
			if strings.HasPrefix(tc.network, "tcp") {
				proto = unix.IPPROTO_TCP
				ln, err := net.Listen(tc.network, tc.addr)
				if err != nil {
					t.Skip("cannot listen:", err)
				}
				port, closer = uint16(ln.Addr().(*net.TCPAddr).Port), ln
			} else {
				c, err := net.ListenPacket(tc.network, tc.addr)
				if err != nil {
					t.Skip("cannot listen:", err)
				}
				port, closer = uint16(c.LocalAddr().(*net.UDPAddr).Port), c
			}
			if !InUse(proto, port) {
				t.Errorf("InUse(%d, %d) = false with a socket bound to it", proto, port)
			}
			closer.Close()
			if InUse(proto, port) {
				t.Errorf("InUse(%d, %d) = true after the socket closed", proto, port)
			}
		})
	}
}
