package localport

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

func TestInUse(t *testing.T) {
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	defer udp.Close()
	tport := uint16(tcp.Addr().(*net.TCPAddr).Port)
	uport := uint16(udp.LocalAddr().(*net.UDPAddr).Port)
	if !InUse(unix.IPPROTO_TCP, tport) {
		t.Errorf("InUse(tcp, %d) = false with a listener on 127.0.0.1", tport)
	}
	if !InUse(unix.IPPROTO_UDP, uport) {
		t.Errorf("InUse(udp, %d) = false with a socket on [::1]", uport)
	}
	tcp.Close()
	if InUse(unix.IPPROTO_TCP, tport) {
		t.Errorf("InUse(tcp, %d) = true after the listener closed", tport)
	}
}
