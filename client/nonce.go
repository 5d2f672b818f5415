package client

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Mapping nonces (RFC 6887 §11.1: "a random value ... chosen by the PCP
// client"; the server renews and deletes a mapping only with the nonce that
// made it, §11.3 and §15). Without Config.NonceKey each mapping draws a
// random one, kept for the mapping's life and lost with the process. With a
// key the nonce is derived from the key and the mapping's identity, so that
// the same mapping gets the same nonce after a restart, and a later process
// (portlease unmap, a restarted portlease keep) renews or deletes it.

// MinNonceKeyLen is the shortest Config.NonceKey accepted.
const MinNonceKeyLen = 16

// newNonce draws a random mapping nonce.
func newNonce() Nonce {
	var n Nonce
	rand.Read(n[:])
	return n
}

// DeriveNonce returns the nonce of the mapping of protocol p, internal
// address internal and internal port port under key: the first 12 bytes
// of HMAC-SHA256(key, protocol number (6 or 17, one byte) | internal
// address (16 bytes, an IPv4 address in its IPv4-mapped IPv6 form) |
// internal port (2 bytes, big-endian)). Knowing a nonce tells nothing of
// the key, nor of another mapping's nonce.
func DeriveNonce(key []byte, p Protocol, internal netip.Addr, port uint16) Nonce {
	var msg [19]byte
	msg[0] = pcpProtocol(p)
	a16 := internal.Unmap().WithZone("").As16()
	copy(msg[1:17], a16[:])
	binary.BigEndian.PutUint16(msg[17:], port)
	mac := hmac.New(sha256.New, key)
	mac.Write(msg[:])
	var n Nonce
	copy(n[:], mac.Sum(nil))
	return n
}

// withNonce returns r with its nonce for Map and Keep: r's own when set; a
// random one drawn now without Config.NonceKey; with a key none yet, since
// the internal address it is derived from is known only on the gateway
// (pcpNonce).
func (c *Client) withNonce(r Request) Request {
	if r.Nonce.IsZero() && len(c.cfg.NonceKey) == 0 {
		r.Nonce = newNonce()
	}
	return r
}

// pcpNonce returns the nonce of r's mapping, whose internal address is
// internal: r.Nonce when set, else the one derived from Config.NonceKey;
// without either, an error.
func (c *Client) pcpNonce(r Request, internal netip.Addr) (Nonce, error) {
	switch {
	case !r.Nonce.IsZero():
		return r.Nonce, nil
	case len(c.cfg.NonceKey) > 0:
		return DeriveNonce(c.cfg.NonceKey, r.Protocol, internal, r.InternalPort), nil
	}
	return Nonce{}, fmt.Errorf("%w: no PCP nonce", ErrInvalidRequest)
}
