package labpeers

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/portlease/portlease/internal/netlab"
)

// STUN message layout (RFC 5389, section 6): a 20-byte header of type,
// length, magic cookie and transaction ID, then attributes (section 15),
// each a 4-byte type and length followed by a value padded to 4 bytes.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|0 0|     STUN Message Type     |         Message Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Magic Cookie                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Transaction ID (96 bits)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	// STUNHeaderLen is the length of a STUN message header.
	STUNHeaderLen = 20
	// STUNMagicCookie is the fixed value of bytes 4 to 8 (section 6).
	STUNMagicCookie = 0x2112A442
	// STUNBindingRequest and STUNBindingSuccess are the message types of a
	// Binding request and its success response (sections 6 and 18.1).
	STUNBindingRequest = 0x0001
	STUNBindingSuccess = 0x0101
	// STUNAttrMappedAddress and STUNAttrXORMappedAddress are the attribute
	// types of MAPPED-ADDRESS (section 15.1) and XOR-MAPPED-ADDRESS
	// (section 15.2).
	STUNAttrMappedAddress    = 0x0001
	STUNAttrXORMappedAddress = 0x0020

	stunAttrHeaderLen = 4
	stunTxIDOff       = 8 // the transaction ID follows type, length, cookie
	stunFamilyIPv4    = 0x01
	stunFamilyIPv6    = 0x02
)

// ErrNotSTUNBinding is returned by STUNBindingResponse for a packet that is
// not a well-formed STUN Binding Request.
var ErrNotSTUNBinding = errors.New("labpeers: not a STUN binding request")

// STUNBindingResponse returns the Binding Success Response to the Binding
// Request req received from from: same transaction ID, with
// XOR-MAPPED-ADDRESS and MAPPED-ADDRESS both holding from. Attributes of the
// request (such as the CHANGE-REQUEST of RFC 3489 that miniupnpd sends) are
// ignored: the answer always comes from where the request went.
func STUNBindingResponse(req []byte, from netip.AddrPort) ([]byte, error) {
	if len(req) < STUNHeaderLen ||
		binary.BigEndian.Uint16(req[0:2]) != STUNBindingRequest ||
		binary.BigEndian.Uint32(req[4:8]) != STUNMagicCookie ||
		int(binary.BigEndian.Uint16(req[2:4])) != len(req)-STUNHeaderLen {
		return nil, ErrNotSTUNBinding
	}
	addr := from.Addr().Unmap()
	var family byte = stunFamilyIPv4
	if addr.Is6() {
		family = stunFamilyIPv6
	}
	ip := addr.AsSlice()

	resp := make([]byte, STUNHeaderLen, STUNHeaderLen+2*(stunAttrHeaderLen+4+len(ip)))
	binary.BigEndian.PutUint16(resp[0:2], STUNBindingSuccess)
	copy(resp[4:STUNHeaderLen], req[4:STUNHeaderLen]) // cookie, transaction ID

	// XOR-MAPPED-ADDRESS: the port XORed with the cookie's high half, the
	// address with the cookie followed by the transaction ID (section 15.2).
	xip := make([]byte, len(ip))
	for i := range ip {
		xip[i] = ip[i] ^ resp[4+i]
	}
	resp = appendAddrAttr(resp, STUNAttrXORMappedAddress, family, from.Port()^STUNMagicCookie>>16, xip)
	resp = appendAddrAttr(resp, STUNAttrMappedAddress, family, from.Port(), ip)
	binary.BigEndian.PutUint16(resp[2:4], uint16(len(resp)-STUNHeaderLen))
	return resp, nil
}

// appendAddrAttr appends an address attribute (section 15.1): a zero byte,
// the family, the port and the address.
func appendAddrAttr(b []byte, typ uint16, family byte, port uint16, ip []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(ip)))
	b = append(b, 0, family)
	b = binary.BigEndian.AppendUint16(b, port)
	return append(b, ip...)
}

// ServeSTUN answers STUN Binding Requests read from pc until pc is closed;
// anything else is dropped. It returns nil once pc is closed.
func ServeSTUN(pc net.PacketConn) error {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("labpeers: stun: %w", err)
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		resp, err := STUNBindingResponse(buf[:n], ua.AddrPort())
		if err != nil {
			continue
		}
		// A lost answer is the client's to retry, as over any network.
		_, _ = pc.WriteTo(resp, from)
	}
}

// StartSTUN serves STUN Binding Requests on UDP port port of every address
// of host (the lab's WAN host, 203.0.113.2:3478, for miniupnpd's
// ext_perform_stun) until the test ends.
func StartSTUN(t testing.TB, host *netlab.Host, port int) {
	t.Helper()
	if err := startSTUN(t, host, port); err != nil {
		t.Fatal(err)
	}
}

// startSTUN is StartSTUN returning its error, so that a port already served
// (errors.Is(err, syscall.EADDRINUSE)) can be told from other failures.
func startSTUN(t testing.TB, host *netlab.Host, port int) error {
	pc, err := host.ListenPacket("udp", ":"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("labpeers: stun on %s port %d: %w", host.Name, port, err)
	}
	done := make(chan error, 1)
	go func() { done <- ServeSTUN(pc) }()
	t.Cleanup(func() {
		pc.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return nil
}
