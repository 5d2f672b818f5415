package e2e

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/pcp"
)

// The byte offsets of RFC 6887 §7.1-§7.3 (Figure 2, Figure 9, Figure 4)
// that these tests write over a well-formed request.
const (
	pcpOffOpcode   = 1
	pcpOffLifetime = 4
	pcpOffClient   = 8
	pcpOffProtocol = pcp.HeaderLen + pcp.NonceLen // MAP and PEER
)

// pcpOption is one option in the layout of §7.3: code, reserved, length,
// then data padded to a multiple of 4.
func pcpOption(code pcp.OptionCode, length int, data []byte) []byte {
	b := []byte{byte(code), 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(length))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// pcpThirdParty is a THIRD_PARTY option (§13.1) naming a.
func pcpThirdParty(a netip.Addr) []byte {
	a16 := a.As16()
	return pcpOption(pcp.OptThirdParty, pcp.ThirdPartyLen, a16[:])
}

// pcpErrorLifetime is the lifetime of an error response of code: §7.4
// calls NETWORK_FAILURE, NO_RESOURCES, USER_EX_QUOTA and
// CANNOT_PROVIDE_EXTERNAL "short lifetime" errors, every other error a "long
// lifetime" one; the server gives 30 s and 1800 s (issue 10's contract).
func pcpErrorLifetime(code pcp.ResultCode) uint32 {
	switch code {
	case pcp.NetworkFailure, pcp.NoResources, pcp.UserExQuota, pcp.CannotProvideExternal:
		return 30
	}
	return 1800
}

// pcpPeerRequest is a PEER request (§12.1) of host for TCP internal port
// iport towards the lab's WAN host.
func pcpPeerRequest(t *testing.T, host *netlab.Host, lab *netlab.Lab, iport uint16) []byte {
	t.Helper()
	b, err := pcp.Request{Opcode: pcp.OpPeer, Lifetime: 600, Client: host.Addr4, Peer: pcp.PeerData{
		MapData:    pcp.MapData{Nonce: [pcp.NonceLen]byte{7}, Protocol: pcp.ProtocolTCP, InternalPort: iport},
		RemotePort: 80, RemoteAddr: lab.WAN.Addr4,
	}}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pcpSilence sends pkt from a socket on host to gw's PCP port, then an
// ANNOUNCE request from the same socket, and reports what came back before
// and with the ANNOUNCE's answer (RFC 6887 §14.1.1: every server answers
// it). The test fails when the ANNOUNCE gets no answer, so that silence is
// told from a dead server.
func pcpSilence(t *testing.T, host *netlab.Host, gw netip.Addr, pkt []byte) [][]byte {
	t.Helper()
	announce, err := pcp.Request{Opcode: pcp.OpAnnounce, Client: host.Addr4}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := host.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, pcp.ServerPort))
	var others [][]byte
	buf := make([]byte, 2*pcp.MaxMessageLen)
	for range 5 {
		for _, p := range [][]byte{pkt, announce} {
			if _, err := pc.WriteTo(p, to); err != nil {
				t.Fatal(err)
			}
		}
		_ = pc.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				break
			}
			got := bytes.Clone(buf[:n])
			if n == pcp.HeaderLen && got[pcpOffOpcode] == pcp.ResponseBit|byte(pcp.OpAnnounce) {
				return others
			}
			others = append(others, got)
		}
	}
	t.Fatalf("no answer to an ANNOUNCE request after %x", pkt)
	return nil
}

// TestPCPRefusals sends the real daemon a request of every malformed kind
// of RFC 6887 §7 and §8.3, and the options' own errors of §13: each gets the
// result code the RFC names, in a version 2 response that carries the
// request's opcode with the R bit and copies the rest of the request (§8.3),
// with §7.4's error lifetime: long for permanent errors, short for transient
// ones. Requests too short to answer and responses (R bit set) get no answer
// at all. natpmpc, on the same port, still maps afterwards.
func TestPCPRefusals(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan, gw := lab.LAN[0], lab.GatewayLANAddr4
	// mapReq is a well-formed MAP request (nonce 1, TCP 9000, 600 s) with
	// the options opts appended, and edit applied to it.
	mapReq := func(edit func([]byte) []byte, opts ...[]byte) []byte {
		b := pcpMapRequest(t, lan, 1, 9000, 0, 600)
		for _, o := range opts {
			b = append(b, o...)
		}
		if edit != nil {
			b = edit(b)
		}
		return b
	}
	set := func(off int, v byte) func([]byte) []byte {
		return func(b []byte) []byte { b[off] = v; return b }
	}
	other := netip.MustParseAddr("198.51.100.99")
	self := pcpThirdParty(lan.Addr4)
	filter := func(port uint16) []byte {
		d := make([]byte, pcp.FilterLen)
		d[1] = 96 + 32
		binary.BigEndian.PutUint16(d[2:], port)
		a := lab.WAN.Addr4.As16()
		copy(d[4:], a[:])
		return pcpOption(pcp.OptFilter, pcp.FilterLen, d)
	}

	for _, tc := range []struct {
		name string
		pkt  []byte
		want pcp.ResultCode
	}{
		// §9: a version the server does not speak gets UNSUPP_VERSION
		// with the version it does speak.
		{"version 1", mapReq(set(0, 1)), pcp.UnsuppVersion},
		{"version 3", mapReq(set(0, 3)), pcp.UnsuppVersion},
		// §7: "All PCP messages ... are a multiple of 4 octets",
		// "MUST NOT exceed 1100 octets".
		{"not a multiple of 4", mapReq(func(b []byte) []byte { return append(b, 0, 0) }), pcp.MalformedRequest},
		{"longer than 1100 octets", mapReq(func(b []byte) []byte {
			return append(b, pcpOption(pcp.OptionCode(200), pcp.MaxMessageLen, make([]byte, pcp.MaxMessageLen))...)
		}), pcp.MalformedRequest},
		{"MAP shorter than its data", mapReq(func(b []byte) []byte { return b[:pcp.HeaderLen+20] }), pcp.MalformedRequest},
		// §8.3: the client's address against the packet's source.
		{"client address of another host", mapReq(func(b []byte) []byte {
			a := other.As16()
			copy(b[pcpOffClient:], a[:])
			return b
		}), pcp.AddressMismatch},
		{"unknown opcode", mapReq(set(pcpOffOpcode, 5)), pcp.UnsuppOpcode},
		// §7.3: an unknown mandatory option is refused, an unknown
		// optional one ignored.
		{"unknown mandatory option", mapReq(nil, pcpOption(100, 4, []byte{1, 2, 3, 4})), pcp.UnsuppOption},
		{"unknown optional option", mapReq(nil, pcpOption(200, 4, []byte{1, 2, 3, 4})), pcp.Success},
		// §7.3 and §13: malformed options.
		{"THIRD_PARTY of 8 octets", mapReq(nil, pcpOption(pcp.OptThirdParty, 8, make([]byte, 8))), pcp.MalformedOption},
		{"THIRD_PARTY twice", mapReq(nil, self, self), pcp.MalformedOption},
		{"PREFER_FAILURE with data", mapReq(nil, pcpOption(pcp.OptPreferFailure, 4, make([]byte, 4))), pcp.MalformedOption},
		{"PREFER_FAILURE twice", mapReq(nil, pcpOption(pcp.OptPreferFailure, 0, nil), pcpOption(pcp.OptPreferFailure, 0, nil)), pcp.MalformedOption},
		{"option overrunning the message", mapReq(func(b []byte) []byte {
			return append(b, pcpOption(pcp.OptThirdParty, pcp.ThirdPartyLen, nil)...)
		}), pcp.MalformedOption},
		{"FILTER prefix length 129", mapReq(nil, func() []byte { f := filter(0); f[5] = 129; return f }()), pcp.MalformedOption},
		{"FILTER with PEER", append(pcpPeerRequest(t, lan, lab, 9001), filter(80)...), pcp.MalformedOption},
		{"PREFER_FAILURE with PEER", append(pcpPeerRequest(t, lan, lab, 9001), pcpOption(pcp.OptPreferFailure, 0, nil)...), pcp.MalformedOption},
		// §11.1: protocol 0 ("all protocols") with a port.
		{"all protocols with a port", mapReq(set(pcpOffProtocol, 0)), pcp.MalformedRequest},
		// §7.4: "Unsupported transport protocol, e.g., SCTP".
		{"SCTP", mapReq(set(pcpOffProtocol, 132)), pcp.UnsuppProtocol},
		// §13.1 by the default policy: no host may map for another.
		{"THIRD_PARTY for another host", mapReq(nil, pcpThirdParty(netip.MustParseAddr("198.51.100.20"))), pcp.NotAuthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, raw := pcpAsk(t, lan, gw, tc.pkt)
			if len(raw) < pcp.HeaderLen {
				t.Fatalf("answer %x shorter than a response header", raw)
			}
			code := pcp.ResultCode(raw[3])
			lifetime := binary.BigEndian.Uint32(raw[pcpOffLifetime:])
			if raw[0] != pcp.Version || raw[pcpOffOpcode] != tc.pkt[pcpOffOpcode]|pcp.ResponseBit || code != tc.want {
				t.Fatalf("answered version %d opcode %#x %v; want version 2, opcode %#x, %v",
					raw[0], raw[pcpOffOpcode], code, tc.pkt[pcpOffOpcode]|pcp.ResponseBit, tc.want)
			}
			if tc.want == pcp.Success {
				return
			}
			if want := pcpErrorLifetime(tc.want); lifetime != want {
				t.Errorf("%v with lifetime %d; want %d (§7.4)", code, lifetime, want)
			}
			// §8.3: the rest of the request is copied, up to 1100
			// octets and a multiple of 4.
			n := min(len(tc.pkt), pcp.MaxMessageLen) &^ 3
			if len(raw) != n || !bytes.Equal(raw[pcp.HeaderLen:], tc.pkt[pcp.HeaderLen:n]) {
				t.Errorf("answer of %d octets does not copy the request's %d after the header", len(raw), n)
			}
		})
	}

	silent := []struct {
		name string
		pkt  []byte
	}{
		{"one octet", []byte{pcp.Version}},
		{"20 octets", mapReq(func(b []byte) []byte { return b[:20] })},
		{"R bit set", mapReq(set(pcpOffOpcode, pcp.ResponseBit|byte(pcp.OpMap)))},
		{"ANNOUNCE response", mapReq(func(b []byte) []byte { b[pcpOffOpcode] = pcp.ResponseBit; return b[:pcp.HeaderLen] })},
	}
	for _, tc := range silent {
		t.Run("silent/"+tc.name, func(t *testing.T) {
			if got := pcpSilence(t, lan, gw, tc.pkt); len(got) != 0 {
				t.Fatalf("%x answered %x; want no answer (§8.3)", tc.pkt, got)
			}
		})
	}

	if port := natpmpcMap(t, lab, lan, 9100, 9100, "udp", 600); port == 0 {
		t.Fatal("natpmpc after the malformed requests got no port")
	}
}
