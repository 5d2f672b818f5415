package localport

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestInUseWithoutBindService: a probe from a thread without
// CAP_NET_BIND_SERVICE, as portleased runs after its privilege drop, gets
// EACCES for a port below 1024 and still tells a held port (TCP and UDP)
// from a free one, through the socket tables.
func TestInUseWithoutBindService(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root, to hold ports below 1024")
		}
		t.Skip("needs root, to hold ports below 1024")
	}
	tcp, err := listenLow(func(port int) (interface{ Close() error }, error) {
		return net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.c.Close()
	udp, err := listenLow(func(port int) (interface{ Close() error }, error) {
		return net.ListenPacket("udp6", net.JoinHostPort("::1", strconv.Itoa(port)))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.c.Close()
	free, err := listenLow(func(port int) (interface{ Close() error }, error) {
		return net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(port)))
	})
	if err != nil {
		t.Fatal(err)
	}
	free.c.Close()

	p := NewProber()
	type result struct {
		bindErr             error
		tcpHeld, udpHeld, f bool
	}
	done := make(chan result, 1)
	go func() {
		// The thread drops CAP_NET_BIND_SERVICE for itself alone and
		// never runs anything else: it ends with the goroutine, locked.
		runtime.LockOSThread()
		if err := dropBindService(); err != nil {
			done <- result{bindErr: err}
			return
		}
		done <- result{
			bindErr: p.bind(unix.IPPROTO_TCP, uint16(free.port)),
			tcpHeld: p.InUse(unix.IPPROTO_TCP, uint16(tcp.port)),
			udpHeld: p.InUse(unix.IPPROTO_UDP, uint16(udp.port)),
			f:       p.InUse(unix.IPPROTO_TCP, uint16(free.port)),
		}
	}()
	r := <-done
	if !errors.Is(r.bindErr, unix.EACCES) {
		t.Fatalf("bind below 1024 without CAP_NET_BIND_SERVICE: %v; want EACCES (net.ipv4.ip_unprivileged_port_start?)", r.bindErr)
	}
	if !r.tcpHeld || !r.udpHeld {
		t.Errorf("InUse of TCP port %d held: %v, of UDP port %d held: %v; want both true", tcp.port, r.tcpHeld, udp.port, r.udpHeld)
	}
	if r.f {
		t.Errorf("InUse of free TCP port %d = true", free.port)
	}
}

// lowSocket is a socket on a port below 1024.
type lowSocket struct {
	c    interface{ Close() error }
	port int
}

// listenLow opens a socket with open on the first port from 600 up where it
// can.
func listenLow(open func(port int) (interface{ Close() error }, error)) (lowSocket, error) {
	var err error
	for port := 600; port < 1000; port++ {
		var c interface{ Close() error }
		if c, err = open(port); err == nil {
			return lowSocket{c, port}, nil
		}
	}
	return lowSocket{}, err
}

// dropBindService lowers CAP_NET_BIND_SERVICE in the calling thread's
// effective and permitted sets (capset(2) acts on one thread).
func dropBindService() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	const bit = uint32(1) << unix.CAP_NET_BIND_SERVICE
	data[0].Effective &^= bit
	data[0].Permitted &^= bit
	return unix.Capset(&hdr, &data[0])
}

// TestTableHolds reads the local port of each line of a socket table.
func TestTableHolds(t *testing.T) {
	table := []byte("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n")
	if !tableHolds(table, 0x277) {
		t.Error("tableHolds missed port 631")
	}
	if tableHolds(table, 632) {
		t.Error("tableHolds found port 632")
	}
	if !tableHolds(append(table, "   1: garbage\n"...), 632) {
		t.Error("tableHolds: an unreadable line must count as holding the port")
	}
}
