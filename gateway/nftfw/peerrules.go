package nftfw

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Pinholes and filters (RFC 6887 §11 MAP for IPv6, §13.3 FILTER, §12 PEER;
// UPnP WANIPv6FirewallControl) live in the same table as the IPv4 maps:
//
//	set pinhole6 { type ipv6_addr . inet_proto . inet_service; flags timeout; }
//	set filtered6 { type ipv6_addr . inet_proto . inet_service; flags timeout; }
//	set filtered4 { type inet_proto . inet_service; flags timeout; }
//	set peers6_64 { type ipv6_addr . inet_proto . inet_service . ipv6_addr; flags timeout; }
//	set peers6_64_port { type ipv6_addr . inet_proto . inet_service . ipv6_addr . inet_service; ... }
//	... one pair per prefix length 4, 8, ..., 128, and peers6_0_port
//	set peers4_24, peers4_24_port ... likewise for IPv4, keyed inet_proto . inet_service (external) first
//	chain forward {
//		ct status dnat meta mark set meta mark | 0x10000000 counter accept
//		iifname "wan0" ip6 daddr . meta l4proto . th dport @pinhole6 meta mark set meta mark | 0x10000000 accept
//		iifname "wan0" ip6 daddr . meta l4proto . th dport @filtered6 jump peers6
//	}
//	chain peers6 {
//		ct direction reply return
//		ip6 daddr . meta l4proto . th dport . ip6 saddr & ffff:ffff:ffff:ffff:: @peers6_64 meta mark set meta mark | 0x10000000 accept
//		... one rule per peers6 set
//		drop
//	}
//	chain prefilter {
//		type filter hook prerouting priority mangle; policy accept;
//		iifname "wan0" meta nfproto ipv4 meta l4proto . th dport @filtered4 jump peers4
//		ip daddr @extaddr4 meta l4proto . th dport @filtered4 jump peers4
//	}
//	chain peers4 {
//		ct direction reply return
//		meta l4proto . th dport . ip saddr & 255.255.255.0 @peers4_24 return
//		... one rule per peers4 set
//		drop
//	}
//
// An unfiltered pinhole is one element of pinhole6. A filtered one is an
// element of filtered6 (its endpoint) and, for each filter, the elements of
// the peers6 set of its shape; a filtered IPv4 mapping likewise an element
// of filtered4 (protocol and external port) and elements of peers4 sets.
// All of a mapping's elements carry its kernel timeout.
//
// Why sets per shape and masked lookups, and not one concatenated interval
// set (flags interval, the pipapo backend): a pipapo set clones its whole
// lookup table on every commit, so a change costs O(elements) and the
// bench's 100,000 leases would make each renewal slow. A hash set per shape
// costs O(1) per change; a packet to a filtered endpoint costs one hash
// lookup per shape (at most 65 for IPv6, 17 for IPv4), whatever the number
// of mappings. Shapes are every shapeStep bits of prefix length: a filter of
// another length is written as the 2^(step-1) or fewer prefixes of the next
// longer shape that cover it exactly, so a filter takes one element, and
// never more than 8. The common lengths (/128 and /32 for a PEER, /64, /56,
// /48, /24, /0) are one element each.
//
// Only what comes in on the WAN link (and, for IPv4, to the external
// address) is filtered; the replies of the endpoint's own outbound
// connections (ct direction reply) pass. Peers that no filter admits are
// dropped, which ends the packet whatever the host's other tables say.
//
// The mark: an accept in our table does not end the packet's way through
// the host's other forward chains; a default-drop one (OpenWrt fw4,
// Debian's examples) still drops it. So every packet our table admits
// carries the mark bit, and the operator adds ForwardAcceptRule(mark) to
// their forward chain (see CheckForwardPath).

// ctDirReply is IP_CT_DIR_REPLY, the direction of a connection's replies.
const ctDirReply = 1

// shapeStep is the step between the prefix lengths that have a set.
const shapeStep = 4

// Names of the pinhole and filter sets and chains.
const (
	pinhole6Name  = "pinhole6"
	filtered6Name = "filtered6"
	filtered4Name = "filtered4"
	peers6Chain   = "peers6"
	peers4Chain   = "peers4"
	prefilterName = "prefilter"
)

// DefaultMark is the packet mark bit (meta mark) that the forward chain
// sets on the traffic of mappings and pinholes it admits, when Config.Mark
// is zero. It is one bit, ORed into the mark: the other bits stay the
// host's. Bit 28 is clear of those that common tools use (kube-proxy
// 0x4000/0x8000, mwan3 0x3f00, Tailscale 0xff0000).
const DefaultMark uint32 = 0x10000000

// ForwardAcceptRule returns the one line an operator adds to a
// default-drop forward chain of their own firewall (before its drops and
// rejects) so that what portleased admits gets through:
//
//	meta mark & 0x10000000 == 0x10000000 accept
func ForwardAcceptRule(mark uint32) string {
	return fmt.Sprintf("meta mark & %#08x == %#08x accept", mark, mark)
}

// peerShape is a set of filter elements of one shape: prefixes of one
// length, with or without a remote port.
type peerShape struct {
	set  *nftables.Set
	v6   bool
	bits int  // prefix length
	port bool // the key ends with the remote port
}

// shapeLen returns the prefix length of the shape that holds a filter of
// length bits: the next multiple of shapeStep.
func shapeLen(bits int) int { return (bits + shapeStep - 1) / shapeStep * shapeStep }

// newPeerShapes returns the shapes of one family, with set IDs from id on.
func newPeerShapes(t *nftables.Table, v6 bool, id uint32) []peerShape {
	maxBits := 32
	if v6 {
		maxBits = 128
	}
	var shapes []peerShape
	for bits := 0; bits <= maxBits; bits += shapeStep {
		for _, port := range []bool{false, true} {
			if bits == 0 && !port {
				continue // any peer, any port: no filter at all
			}
			sh := peerShape{v6: v6, bits: bits, port: port}
			sh.set = &nftables.Set{
				Table:         t,
				ID:            id,
				Name:          sh.name(),
				HasTimeout:    true,
				Concatenation: true,
				KeyType:       nftables.MustConcatSetType(sh.keyTypes()...),
			}
			id++
			shapes = append(shapes, sh)
		}
	}
	return shapes
}

// name is the set's name, such as peers6_64 or peers4_32_port.
func (sh peerShape) name() string {
	fam := "4"
	if sh.v6 {
		fam = "6"
	}
	s := fmt.Sprintf("peers%s_%d", fam, sh.bits)
	if sh.port {
		s += "_port"
	}
	return s
}

// keyTypes are the fields of the shape's key: the mapping's (endpoint for
// IPv6, protocol and external port for IPv4), then the remote prefix (none
// for length 0) and port.
func (sh peerShape) keyTypes() []nftables.SetDatatype {
	var ts []nftables.SetDatatype
	addr := nftables.TypeIPAddr
	if sh.v6 {
		addr = nftables.TypeIP6Addr
		ts = append(ts, nftables.TypeIP6Addr)
	}
	ts = append(ts, nftables.TypeInetProto, nftables.TypeInetService)
	if sh.bits > 0 {
		ts = append(ts, addr)
	}
	if sh.port {
		ts = append(ts, nftables.TypeInetService)
	}
	return ts
}

// keyLen is the length of the shape's keys, each field padded to 4 bytes.
func (sh peerShape) keyLen() int {
	n := 0
	for _, t := range sh.keyTypes() {
		n += (int(t.Bytes) + 3) &^ 3
	}
	return n
}

// prefixMask returns the mask of a prefix of length bits, of n bytes.
func prefixMask(bits, n int) []byte {
	m := make([]byte, n)
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

// lookup returns the expressions that look the packet up in the shape's
// set: the key loaded into consecutive registers from NFT_REG32_00, the
// remote address masked to the shape's length.
func (sh peerShape) lookup() []expr.Any {
	reg := uint32(unix.NFT_REG32_00)
	var es []expr.Any
	if sh.v6 {
		es = append(es, &expr.Payload{DestRegister: unix.NFT_REG_1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16})
		reg += 4
	}
	es = append(es,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Payload{DestRegister: reg + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	)
	reg += 2
	if sh.bits > 0 {
		off, n := uint32(12), 4
		if sh.v6 {
			off, n = 8, 16
		}
		es = append(es,
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(n)},
			&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: uint32(n),
				Mask: prefixMask(sh.bits, n), Xor: make([]byte, n)},
		)
		reg += uint32(n / 4)
	}
	if sh.port {
		es = append(es, &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2})
	}
	return append(es, &expr.Lookup{SourceRegister: unix.NFT_REG32_00, SetName: sh.set.Name, SetID: sh.set.ID})
}

// putKey writes the key of a filter element of the shape to b (keyLen
// zeroed bytes): mapping is the mapping's part (endpoint or protocol and
// external port, as endpointKey and filteredKey write them), remote the
// prefix's masked address, port the remote port.
func (sh peerShape) putKey(b, mapping []byte, remote netip.Addr, port uint16) {
	n := copy(b, mapping)
	if sh.bits > 0 {
		a := remote.AsSlice()
		n += copy(b[n:], a)
	}
	if sh.port {
		b[n] = byte(port >> 8)
		b[n+1] = byte(port)
	}
}

// setMark is `meta mark set meta mark | mark`.
func setMark(mark uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: regKey},
		&expr.Bitwise{SourceRegister: regKey, DestRegister: regKey, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^mark), Xor: binaryutil.NativeEndian.PutUint32(mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: regKey},
	}
}

// isIPv6 matches IPv6 packets: meta nfproto ipv6.
func isIPv6() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: regKey},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regKey, Data: []byte{unix.NFPROTO_IPV6}},
	}
}

// endpoint6In is `ip6 daddr . meta l4proto . th dport @set`.
func endpoint6In(s *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: unix.NFT_REG_1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: unix.NFT_REG32_04},
		&expr.Payload{DestRegister: unix.NFT_REG32_05, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: unix.NFT_REG_1, SetName: s.Name, SetID: s.ID},
	}
}

// filtered4In is `meta l4proto . th dport @filtered4`.
func (rs *ruleset) filtered4In() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: unix.NFT_REG32_00},
		&expr.Payload{DestRegister: unix.NFT_REG32_01, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: unix.NFT_REG32_00, SetName: rs.filtered4.Name, SetID: rs.filtered4.ID},
	}
}

// ctReply matches packets of the reply direction: ct direction reply.
func ctReply() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: regKey},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regKey, Data: []byte{ctDirReply}},
	}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func jump(chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}
}

// peerRules adds the rules of pinholes and filters, with rule (see
// ruleset.rules), after the forward chain's first rule.
func (rs *ruleset) peerRules(chains map[string]*nftables.Chain, rule func(*nftables.Chain, ...[]expr.Any)) {
	fwd, pre := chains[forwardName], chains[prefilterName]
	p6, p4 := chains[peers6Chain], chains[peers4Chain]
	wan := ifnameIs(expr.MetaKeyIIFNAME, rs.ext, true)
	rule(fwd, wan, isIPv6(), endpoint6In(rs.pinhole6), setMark(rs.mark), verdict(expr.VerdictAccept))
	rule(fwd, wan, isIPv6(), endpoint6In(rs.filtered6), jump(peers6Chain))
	rule(p6, ctReply(), verdict(expr.VerdictReturn))
	for _, sh := range rs.peers6 {
		rule(p6, isIPv6(), sh.lookup(), setMark(rs.mark), verdict(expr.VerdictAccept))
	}
	rule(p6, verdict(expr.VerdictDrop))

	rule(pre, wan, isIPv4(), rs.filtered4In(), jump(peers4Chain))
	rule(pre, isIPv4(), rs.daddrExternal(), rs.filtered4In(), jump(peers4Chain))
	rule(p4, ctReply(), verdict(expr.VerdictReturn))
	for _, sh := range rs.peers4 {
		rule(p4, isIPv4(), sh.lookup(), verdict(expr.VerdictReturn))
	}
	rule(p4, verdict(expr.VerdictDrop))
}
