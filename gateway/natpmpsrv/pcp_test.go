package natpmpsrv

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/portlease/portlease/natpmp"
)

// fakePCP answers every packet with "pcp:" and the packet, and records
// where it came from and went to.
type fakePCP struct {
	mu       sync.Mutex
	src, dst netip.AddrPort
}

func (f *fakePCP) Handle(_ context.Context, pkt []byte, src, dst netip.AddrPort, out []byte) []byte {
	f.mu.Lock()
	f.src, f.dst = src, dst
	f.mu.Unlock()
	return append(append(out, "pcp:"...), pkt...)
}

func (f *fakePCP) Announcement(out []byte) []byte { return append(out, "announce"...) }

// TestVersionDispatch: on one socket, version 0 is NAT-PMP's and every
// other version goes to the PCP handler with the packet's source and
// destination (RFC 6887 §9).
func TestVersionDispatch(t *testing.T) {
	table := newTable()
	table.SetExternalAddress(netip.MustParseAddr("203.0.113.1"))
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakePCP{}
	c := serveOn(t, &Server{Table: table, PCP: fake}, conn)
	var r natpmp.ExternalAddressResponse
	if err := r.UnmarshalBinary(ask(t, c, []byte{0, 0})); err != nil || r.Address != netip.MustParseAddr("203.0.113.1") {
		t.Fatalf("NAT-PMP beside PCP: %+v, %v; want the external address", r, err)
	}
	for _, v := range []byte{1, 2, 3, 255} {
		req := []byte{v, 1, 0, 0}
		if got := ask(t, c, req); !bytes.Equal(got, append([]byte("pcp:"), req...)) {
			t.Errorf("version %d: answer %q; want the PCP handler's", v, got)
		}
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.src != c.LocalAddr().(*net.UDPAddr).AddrPort() || fake.dst != conn.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Errorf("PCP handler saw %v -> %v; want %v -> %v", fake.src, fake.dst, c.LocalAddr(), conn.LocalAddr())
	}
}

// TestLongDatagramSeenLong: a datagram longer than RFC 6887 §7's 1100
// bytes reaches the PCP handler longer than that, so that it refuses it as
// MALFORMED_REQUEST, not cut to 1100 bytes that may parse.
func TestLongDatagramSeenLong(t *testing.T) {
	table := newTable()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := serveOn(t, &Server{Table: table, PCP: &fakePCP{}}, conn)
	req := make([]byte, 1200)
	req[0] = 2
	if got := ask(t, c, req); len(got)-len("pcp:") <= 1100 {
		t.Fatalf("the PCP handler saw %d bytes of a 1200-byte datagram; want more than 1100", len(got)-len("pcp:"))
	}
}

// TestIPv6ServedByPCP: an IPv6 socket hands every packet, version 0 too,
// to the PCP handler, and needs one.
func TestIPv6ServedByPCP(t *testing.T) {
	conn, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	if err := (&Server{Table: newTable()}).Serve(conn, loopbackIndex(t), loopbackSubnet(conn)); err == nil {
		t.Fatal("Serve of an IPv6 socket without a PCP handler returned nil")
	}
	c := serveOn(t, &Server{Table: newTable(), PCP: &fakePCP{}}, conn)
	for _, req := range [][]byte{{0, 0}, {2, 1, 0, 0}} {
		if got := ask(t, c, req); !bytes.Equal(got, append([]byte("pcp:"), req...)) {
			t.Errorf("%x over IPv6: answer %q; want the PCP handler's", req, got)
		}
	}
}
