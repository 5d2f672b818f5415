package labpeers

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// rfc5769TxID is the transaction ID of the sample responses of RFC 5769
// §2.2 and §2.3.
const rfc5769TxID = "b7e7a701bc34d686fa87dfae"

// bindingRequest returns a Binding Request with transaction ID txid (hex)
// and, when attrs is not empty, those attribute bytes (hex).
func bindingRequest(t *testing.T, txid, attrs string) []byte {
	t.Helper()
	h := "0001" + hex.EncodeToString([]byte{0, byte(len(attrs) / 2)}) + "2112a442" + txid + attrs
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSTUNBindingResponse(t *testing.T) {
	tests := []struct {
		name string
		from netip.AddrPort
		// want is the whole response after the header: XOR-MAPPED-ADDRESS
		// as in RFC 5769 (the sample responses' attribute, copied
		// byte for byte), then MAPPED-ADDRESS.
		want string
	}{
		{
			name: "RFC 5769 §2.2 IPv4",
			from: netip.MustParseAddrPort("192.0.2.1:32853"),
			want: "0020 0008 0001a147 e112a643" +
				"0001 0008 00018055 c0000201",
		},
		{
			name: "RFC 5769 §2.3 IPv6",
			from: netip.MustParseAddrPort("[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
			want: "0020 0014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9" +
				"0001 0014 00028055 20010db8 12345678 00112233 44556677",
		},
		{
			name: "IPv4-mapped sender",
			from: netip.MustParseAddrPort("[::ffff:203.0.113.1]:49048"),
			want: "0020 0008 0001 9e8a ea12d543" +
				"0001 0008 0001 bf98 cb007101",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// miniupnpd's request: a CHANGE-REQUEST asking for another
			// address and port, which the responder ignores.
			req := bindingRequest(t, rfc5769TxID, "000300040000000"+"6")
			got, err := STUNBindingResponse(req, tt.from)
			if err != nil {
				t.Fatalf("STUNBindingResponse(%x) error %v", req, err)
			}
			body, _ := hex.DecodeString(strings.ReplaceAll(tt.want, " ", ""))
			want := append(bindingResponseHeader(t, len(body)), body...)
			if !bytes.Equal(got, want) {
				t.Errorf("STUNBindingResponse(%x, %v) =\n%x; want\n%x", req, tt.from, got, want)
			}
		})
	}
}

// bindingResponseHeader returns the header of a Binding Success Response to
// the requests of TestSTUNBindingResponse, with n bytes of attributes.
func bindingResponseHeader(t *testing.T, n int) []byte {
	t.Helper()
	b, err := hex.DecodeString("0101" + hex.EncodeToString([]byte{byte(n >> 8), byte(n)}) + "2112a442" + rfc5769TxID)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSTUNBindingResponseRejects(t *testing.T) {
	from := netip.MustParseAddrPort("203.0.113.1:3478")
	good := bindingRequest(t, rfc5769TxID, "")
	tests := []struct {
		name string
		req  []byte
	}{
		{"empty", nil},
		{"short", good[:STUNHeaderLen-1]},
		{"success response", append([]byte{0x01, 0x01}, good[2:]...)},
		{"RFC 3489 request without cookie", append(append([]byte{}, good[:4]...), append(make([]byte, 4), good[8:]...)...)},
		{"length beyond packet", append([]byte{0x00, 0x01, 0x00, 0x08}, good[4:]...)},
		{"trailing bytes", append(append([]byte{}, good...), 0, 0, 0, 0)},
	}
	for _, tt := range tests {
		if got, err := STUNBindingResponse(tt.req, from); !errors.Is(err, ErrNotSTUNBinding) {
			t.Errorf("%s: STUNBindingResponse(%x) = %x, %v; want ErrNotSTUNBinding", tt.name, tt.req, got, err)
		}
	}
}

// TestServeSTUN exchanges hand-made packets with ServeSTUN over the
// loopback of the test's own namespace (STUN only, nothing leaves it).
func TestServeSTUN(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ServeSTUN(pc) }()
	defer func() {
		pc.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeSTUN: %v", err)
		}
	}()

	c, err := net.Dial("udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Garbage first: dropped, and the responder keeps serving.
	if _, err := c.Write([]byte("not stun")); err != nil {
		t.Fatal(err)
	}
	req := bindingRequest(t, "0102030405060708090a0b0c", "")
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	got := buf[:n]

	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	port := local.Port()
	xport := port ^ 0x2112
	want := []byte{
		0x01, 0x01, 0x00, 0x18, 0x21, 0x12, 0xa4, 0x42, // Binding Success, 24 bytes, cookie
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, // transaction ID
		0x00, 0x20, 0x00, 0x08, 0x00, 0x01, byte(xport >> 8), byte(xport), // XOR-MAPPED-ADDRESS
		127 ^ 0x21, 0 ^ 0x12, 0 ^ 0xa4, 1 ^ 0x42,
		0x00, 0x01, 0x00, 0x08, 0x00, 0x01, byte(port >> 8), byte(port), // MAPPED-ADDRESS
		127, 0, 0, 1,
	}
	if !bytes.Equal(got, want) {
		t.Errorf("response to %x from %v =\n%x; want\n%x", req, local, got, want)
	}
}
