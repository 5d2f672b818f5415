package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/portlease/portlease/pcp"
)

func TestDeriveNonce(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	a4 := netip.MustParseAddr("198.51.100.10")
	base := DeriveNonce(key, TCP, a4, 8080)

	// The documented construction, computed here by hand.
	msg := append([]byte{6}, netip.AddrFrom16(a4.As16()).AsSlice()...)
	msg = append(msg, 8080>>8, 8080&0xff)
	mac := hmac.New(sha256.New, key)
	mac.Write(msg)
	if want := mac.Sum(nil)[:12]; string(base[:]) != string(want) {
		t.Fatalf("DeriveNonce = %x; want %x", base, want)
	}
	if again := DeriveNonce(key, TCP, netip.AddrFrom16(a4.As16()), 8080); again != base {
		t.Error("an IPv4-mapped address derives another nonce than its IPv4 form")
	}
	others := map[string]Nonce{
		"protocol": DeriveNonce(key, UDP, a4, 8080),
		"address":  DeriveNonce(key, TCP, netip.MustParseAddr("198.51.100.11"), 8080),
		"port":     DeriveNonce(key, TCP, a4, 8081),
		"key":      DeriveNonce([]byte("another key of 16+ bytes"), TCP, a4, 8080),
		"IPv6":     DeriveNonce(key, TCP, netip.MustParseAddr("2001:db8::10"), 8080),
	}
	for what, n := range others {
		if n == base || n.IsZero() {
			t.Errorf("another %s derives nonce %x (base %x)", what, n, base)
		}
	}
}

func TestNonceKeyTooShort(t *testing.T) {
	if _, err := New(Config{NonceKey: []byte("short")}); err == nil {
		t.Fatal("New took a 5-byte nonce key")
	}
}

// TestNonceKeySurvivesRestart: a second Client with the same key renews
// and deletes the first one's PCP mapping, without being told its nonce
// (RFC 6887 §11.3, §15); one without the key is refused.
func TestNonceKeySurvivesRestart(t *testing.T) {
	f := newFakePCP(t)
	key := []byte("a secret key of at least 16 bytes")
	withKey := func(cfg *Config) { cfg.NonceKey = key }
	first := pcpTestClient(t, f, nil, withKey)
	res, err := first.Map(t.Context(), Request{Protocol: TCP, InternalPort: 8080, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := DeriveNonce(key, TCP, loopback, 8080); res.Nonce != want {
		t.Fatalf("Map's nonce %s; want the derived %s", res.Nonce, want)
	}
	first.Close()

	random := pcpTestClient(t, f, nil, func(cfg *Config) { cfg.Method = PCP })
	var pe *PCPError
	if _, err := random.Map(t.Context(), Request{Protocol: TCP, InternalPort: 8080}); !errors.As(err, &pe) || pe.Code != pcp.NotAuthorized {
		t.Fatalf("Map without the key = %v; want NOT_AUTHORIZED", err)
	}

	second := pcpTestClient(t, f, nil, withKey)
	m, err := second.Keep(t.Context(), Request{Protocol: TCP, InternalPort: 8080, Lifetime: time.Hour})
	if err != nil {
		t.Fatalf("Keep after a restart: %v", err)
	}
	ev := waitEvent(t, second.Client, Mapped)
	if ev.Result.External != res.External || ev.Result.Nonce != res.Nonce {
		t.Fatalf("Keep after a restart granted %+v; want %v with nonce %s", ev.Result, res.External, res.Nonce)
	}
	m.Stop()
	if err := second.Unmap(t.Context(), Request{Protocol: TCP, InternalPort: 8080}); err != nil {
		t.Fatalf("Unmap without a nonce, with the key: %v", err)
	}
	if _, ok := f.lease(pcp.ProtocolTCP, netip.AddrPortFrom(loopback, 8080)); ok {
		t.Error("the mapping is still there after Unmap")
	}
	last := f.maps()[len(f.maps())-1]
	if last.Lifetime != 0 || last.Map.Nonce != res.Nonce {
		t.Errorf("deletion %+v; want lifetime 0 and nonce %s", last, res.Nonce)
	}
}

// TestUnmapAutoDerivedRefused: with Auto, a PCP refusal of the derived
// nonce (a mapping made another way) lets NAT-PMP try, where an explicit
// nonce's refusal stops there.
func TestUnmapAutoDerivedRefused(t *testing.T) {
	f := newFakePCP(t)
	pmp := newFakePMP(t)
	other := pcpTestClient(t, f, pmp, nil) // Auto, random nonces
	if _, err := other.Map(t.Context(), Request{Protocol: UDP, InternalPort: 4672}); err != nil {
		t.Fatal(err)
	}
	c := pcpTestClient(t, f, pmp, func(cfg *Config) { cfg.NonceKey = []byte("a secret key of at least 16 bytes") })
	before := len(pmp.mapRequests())
	if err := c.Unmap(t.Context(), Request{Protocol: UDP, InternalPort: 4672}); err != nil {
		t.Fatalf("Unmap = %v; want NAT-PMP's deletion after PCP's refusal", err)
	}
	if len(pmp.mapRequests()) == before {
		t.Error("NAT-PMP was not tried after PCP refused the derived nonce")
	}
	before = len(pmp.mapRequests())
	if err := c.Unmap(t.Context(), Request{Protocol: UDP, InternalPort: 4672, Nonce: newNonce()}); err == nil {
		t.Error("Unmap with a wrong explicit nonce succeeded")
	}
	if len(pmp.mapRequests()) != before {
		t.Error("NAT-PMP was tried after PCP refused an explicit nonce")
	}
}
