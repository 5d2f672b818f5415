package nftfw

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Names of the table's sets, maps and chains.
const (
	inboundName     = "inbound4"
	outboundName    = "outbound4"
	extaddrName     = "extaddr4"
	snatName        = "snat4"
	preroutingName  = "prerouting"
	outputName      = "output"
	postroutingName = "postrouting"
	forwardName     = "forward"
)

// Registers, laid out as nft lays them out for the same rules, so that nft
// can print the rules back. Concatenations are loaded into consecutive 32-bit
// registers, each field padded to 4 bytes; NFT_REG_1 is the same storage as
// NFT_REG32_00 to NFT_REG32_03, NFT_REG_2 as NFT_REG32_04 to NFT_REG32_07.
const (
	regIfname  = unix.NFT_REG_1    // an interface name, 16 bytes
	regKey     = unix.NFT_REG_1    // a concatenated key: proto . port
	regAddr    = unix.NFT_REG_1    // a looked-up address . port
	regPort    = unix.NFT_REG32_01 // ... whose port is here
	regOutKey  = unix.NFT_REG_2    // proto . saddr . sport: NFT_REG32_04 to _06
	regOutPort = unix.NFT_REG_2    // the looked-up external port
	regOutAddr = unix.NFT_REG_1    // the looked-up external address
)

// ipsDstNAT is IPS_DST_NAT, the conntrack status bit of a connection whose
// destination was translated. The status is loaded in host byte order.
const ipsDstNAT = 1 << 5

// Set IDs, unique within the transaction that creates the table; rules refer
// to the sets by name and ID.
const (
	inboundID = 1 + iota
	outboundID
	extaddrID
	snatID
	protosID
	pinhole6ID
	filtered6ID
	filtered4ID
	peersFirstID // the peers sets' IDs follow
)

// ruleset describes the backend's table. Its fields are fixed after
// newRuleset, but for the interface names ext and internal, which
// setInterfaces changes under the Firewall's mu (the only lock they are
// read under).
type ruleset struct {
	table    *nftables.Table
	inbound  *nftables.Set
	outbound *nftables.Set
	extaddr  *nftables.Set
	snat     *nftables.Set
	protos   *nftables.Set // anonymous, of the snat rule
	// pinhole6, filtered6, filtered4 and the peers sets hold the pinholes
	// and filters (see peerrules.go).
	pinhole6, filtered6, filtered4 *nftables.Set
	peers6, peers4                 []peerShape
	mark                           uint32 // the mark bit of admitted traffic
	ext                            string
	internal                       []string
}

func newRuleset(table, ext string, internal []string, mark uint32) *ruleset {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	endpoint6 := nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService)
	peers6 := newPeerShapes(t, true, peersFirstID)
	rs := &ruleset{
		pinhole6: &nftables.Set{Table: t, ID: pinhole6ID, Name: pinhole6Name, HasTimeout: true,
			Concatenation: true, KeyType: endpoint6},
		filtered6: &nftables.Set{Table: t, ID: filtered6ID, Name: filtered6Name, HasTimeout: true,
			Concatenation: true, KeyType: endpoint6},
		filtered4: &nftables.Set{Table: t, ID: filtered4ID, Name: filtered4Name, HasTimeout: true,
			Concatenation: true, KeyType: nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)},
		peers6: peers6,
		peers4: newPeerShapes(t, false, peersFirstID+uint32(len(peers6))),
		mark:   mark,
		table:  t,
		inbound: &nftables.Set{
			Table:         t,
			ID:            inboundID,
			Name:          inboundName,
			IsMap:         true,
			HasTimeout:    true,
			Concatenation: true,
			KeyType:       nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
			DataType:      nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
		},
		outbound: &nftables.Set{
			Table:         t,
			ID:            outboundID,
			Name:          outboundName,
			IsMap:         true,
			HasTimeout:    true,
			Concatenation: true,
			KeyType:       nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeIPAddr, nftables.TypeInetService),
			DataType:      nftables.TypeInetService,
		},
		extaddr: &nftables.Set{
			Table:   t,
			ID:      extaddrID,
			Name:    extaddrName,
			KeyType: nftables.TypeIPAddr,
		},
		snat: &nftables.Set{
			Table:    t,
			ID:       snatID,
			Name:     snatName,
			IsMap:    true,
			KeyType:  nftables.TypeIFName,
			DataType: nftables.TypeIPAddr,
			// Interface names are strings: nft prints them right only
			// when told their byte order.
			KeyByteOrder: binaryutil.NativeEndian,
		},
		protos: &nftables.Set{
			Table:     t,
			ID:        protosID,
			Name:      "__set%d", // the kernel numbers anonymous sets
			Anonymous: true,
			Constant:  true,
			KeyType:   nftables.TypeInetProto,
		},
	}
	rs.ext, rs.internal = ext, append([]string(nil), internal...)
	return rs
}

// chainDef is one of the table's chains: a base chain, or a regular one
// (reached by jumps) when typ is empty.
type chainDef struct {
	name string
	typ  nftables.ChainType
	hook nftables.ChainHook
	prio nftables.ChainPriority
}

// regular reports whether d is a regular chain, without a hook.
func (d chainDef) regular() bool { return d.typ == "" }

// chainDefs returns the table's chains.
func chainDefs() []chainDef {
	return []chainDef{
		{preroutingName, nftables.ChainTypeNAT, unix.NF_INET_PRE_ROUTING, -100},   // dstnat
		{outputName, nftables.ChainTypeNAT, unix.NF_INET_LOCAL_OUT, -100},         // dstnat
		{postroutingName, nftables.ChainTypeNAT, unix.NF_INET_POST_ROUTING, 90},   // srcnat - 10
		{forwardName, nftables.ChainTypeFilter, unix.NF_INET_FORWARD, 0},          // filter
		{prefilterName, nftables.ChainTypeFilter, unix.NF_INET_PRE_ROUTING, -150}, // mangle
		{name: peers6Chain},
		{name: peers4Chain},
	}
}

// chains returns the table's chains by name.
func (rs *ruleset) chains() map[string]*nftables.Chain {
	accept := nftables.ChainPolicyAccept
	chains := make(map[string]*nftables.Chain)
	for _, d := range chainDefs() {
		if d.regular() {
			chains[d.name] = &nftables.Chain{Name: d.name, Table: rs.table}
			continue
		}
		chains[d.name] = &nftables.Chain{
			Name:     d.name,
			Table:    rs.table,
			Type:     d.typ,
			Hooknum:  nftables.ChainHookRef(d.hook),
			Priority: nftables.ChainPriorityRef(d.prio),
			Policy:   &accept,
		}
	}
	return chains
}

// namedSets returns the table's sets and maps but the anonymous one.
func (rs *ruleset) namedSets() []*nftables.Set {
	sets := []*nftables.Set{rs.inbound, rs.outbound, rs.extaddr, rs.snat, rs.pinhole6, rs.filtered6, rs.filtered4}
	for _, sh := range rs.peerShapes() {
		sets = append(sets, sh.set)
	}
	return sets
}

// peerShapes returns the shapes of both families, IPv6 first.
func (rs *ruleset) peerShapes() []peerShape {
	return append(append([]peerShape(nil), rs.peers6...), rs.peers4...)
}

// install queues the messages that make the table what the ruleset needs,
// given what the kernel holds of it (see readTable): the table is added
// (an update when it exists), every chain it holds is flushed, chains and
// sets that are not the ruleset's or have another definition are deleted,
// missing sets and chains are added, and the rules are added anew. Sets that
// match keep their elements, so established mappings keep forwarding; the
// old rules give way to the new ones in the same transaction. The caller
// flushes the messages as one transaction.
func (rs *ruleset) install(c *nftables.Conn, have *tableState) error {
	c.AddTable(rs.table)
	defs := rs.chains()
	for _, name := range have.chainNames() {
		old := &nftables.Chain{Name: name, Table: rs.table}
		c.FlushChain(old)
		if want, ok := defs[name]; !ok || !sameChain(have.chains[name], want) {
			c.DelChain(old)
		}
	}
	for _, name := range have.setNames() {
		if want := rs.setNamed(name); want == nil || !sameSet(have.sets[name], want) {
			c.DelSet(&nftables.Set{Table: rs.table, Name: name})
		}
	}
	for _, s := range rs.namedSets() {
		if old, ok := have.sets[s.Name]; ok && sameSet(old, s) {
			continue
		}
		if err := c.AddSet(s, nil); err != nil {
			return err
		}
	}
	var protos []nftables.SetElement
	for _, p := range portProtocols() {
		protos = append(protos, nftables.SetElement{Key: []byte{byte(p)}})
	}
	if err := c.AddSet(rs.protos, protos); err != nil {
		return err
	}
	for _, d := range chainDefs() {
		c.AddChain(defs[d.name])
	}
	for _, r := range rs.rules(defs) {
		c.AddRule(r)
	}
	return nil
}

// setNamed returns the named set or map of the ruleset called name, or nil.
func (rs *ruleset) setNamed(name string) *nftables.Set {
	for _, s := range rs.namedSets() {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// ruleCounts returns the number of rules of each chain.
func (rs *ruleset) ruleCounts() map[string]int {
	n := make(map[string]int)
	for _, r := range rs.rules(rs.chains()) {
		n[r.Chain.Name]++
	}
	return n
}

// rules returns the rules of the table, in order, for its chains by name.
func (rs *ruleset) rules(chains map[string]*nftables.Chain) []*nftables.Rule {
	pre, out, post, fwd := chains[preroutingName], chains[outputName], chains[postroutingName], chains[forwardName]
	var rules []*nftables.Rule
	rule := func(ch *nftables.Chain, exprs ...[]expr.Any) {
		var all []expr.Any
		for _, e := range exprs {
			all = append(all, e...)
		}
		rules = append(rules, &nftables.Rule{Table: rs.table, Chain: ch, Exprs: all})
	}

	// iifname "wan0" meta nfproto ipv4 dnat ip to meta l4proto . th dport map @inbound4
	rule(pre, ifnameIs(expr.MetaKeyIIFNAME, rs.ext, true), isIPv4(), rs.dnatInbound())
	// Hairpin: from the LAN to the external address.
	if len(rs.internal) == 0 {
		rule(pre, ifnameIs(expr.MetaKeyIIFNAME, rs.ext, false), isIPv4(), rs.daddrExternal(), rs.dnatInbound())
	}
	for _, name := range rs.internal {
		rule(pre, ifnameIs(expr.MetaKeyIIFNAME, name, true), isIPv4(), rs.daddrExternal(), rs.dnatInbound())
	}
	// The gateway's own processes dialling the external address.
	rule(out, isIPv4(), rs.daddrExternal(), rs.dnatInbound())

	// Outbound traffic of mapped endpoints leaves with the mapped port.
	rule(post, ifnameIs(expr.MetaKeyOIFNAME, rs.ext, true), isIPv4(), rs.snatOutbound())
	// Hairpinned traffic goes back into the LAN from the gateway: what came
	// from the LAN side and was translated to a mapped endpoint.
	rule(post,
		ifnameIs(expr.MetaKeyIIFNAME, rs.ext, false),
		ifnameIs(expr.MetaKeyOIFNAME, rs.ext, false),
		isIPv4(),
		ctDNAT(),
		[]expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regOutKey},
			&expr.Payload{DestRegister: unix.NFT_REG32_05, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Payload{DestRegister: unix.NFT_REG32_06, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: regOutKey, SetName: rs.outbound.Name, SetID: rs.outbound.ID},
			&expr.Masq{},
		})

	rule(fwd, ctDNAT(), setMark(rs.mark), []expr.Any{
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictAccept},
	})
	rs.peerRules(chains, rule)
	return rules
}

// setExternal queues the messages that make addr the external address, or
// clear it when addr is not valid.
func (rs *ruleset) setExternal(c *nftables.Conn, addr netip.Addr) error {
	c.FlushSet(rs.extaddr)
	if addr.IsValid() {
		a := addr.As4()
		if err := c.SetAddElements(rs.extaddr, []nftables.SetElement{{Key: a[:]}}); err != nil {
			return err
		}
	}
	return rs.setSNAT(c, addr)
}

// setSNAT queues the messages that make the snat map hold addr for the
// external interface, or nothing when addr is not valid.
func (rs *ruleset) setSNAT(c *nftables.Conn, addr netip.Addr) error {
	c.FlushSet(rs.snat)
	if !addr.IsValid() {
		return nil
	}
	a := addr.As4()
	return c.SetAddElements(rs.snat, []nftables.SetElement{{Key: ifnameBytes(rs.ext), Val: a[:]}})
}

// ifnameBytes returns name as the kernel compares it: IFNAMSIZ bytes, padded
// with zeros.
func ifnameBytes(name string) []byte {
	b := make([]byte, ifNameSize)
	copy(b, name)
	return b
}

// ifnameIs matches the input or output interface name against name (eq) or
// anything else (!eq).
func ifnameIs(key expr.MetaKey, name string, eq bool) []expr.Any {
	op := expr.CmpOpEq
	if !eq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: regIfname},
		&expr.Cmp{Op: op, Register: regIfname, Data: ifnameBytes(name)},
	}
}

// isIPv4 matches IPv4 packets: meta nfproto ipv4.
func isIPv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: regKey},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regKey, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// daddrExternal matches packets to the external address: ip daddr @extaddr4.
func (rs *ruleset) daddrExternal() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: regKey, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: regKey, SetName: rs.extaddr.Name, SetID: rs.extaddr.ID},
	}
}

// dnatInbound is `dnat ip to meta l4proto . th dport map @inbound4`.
func (rs *ruleset) dnatInbound() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regKey},
		&expr.Payload{DestRegister: regPort, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: regKey, DestRegister: regAddr, IsDestRegSet: true, SetName: rs.inbound.Name, SetID: rs.inbound.ID},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: regAddr, RegProtoMin: regPort, Specified: true},
	}
}

// snatOutbound is `meta l4proto { tcp, udp, ... } snat ip to oifname map
// @snat4 : meta l4proto . ip saddr . th sport map @outbound4`: the source
// port from the mapping, the source address that of the external interface.
// The protocol match changes nothing in the kernel (the map holds those
// protocols only) but nft wants it before a port translation, and without it
// could not load back what `nft list ruleset` prints.
//
// A masquerade (`masquerade to :port`) would not need the address, but the
// nftables library cannot express it: it does not send the flag
// NF_NAT_RANGE_PROTO_SPECIFIED with a masquerade's port registers, and
// without the flag the kernel ignores the port.
func (rs *ruleset) snatOutbound() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regKey},
		&expr.Lookup{SourceRegister: regKey, SetName: rs.protos.Name, SetID: rs.protos.ID},
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: regIfname},
		&expr.Lookup{SourceRegister: regIfname, DestRegister: regOutAddr, IsDestRegSet: true, SetName: rs.snat.Name, SetID: rs.snat.ID},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regOutKey},
		&expr.Payload{DestRegister: unix.NFT_REG32_05, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Payload{DestRegister: unix.NFT_REG32_06, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		&expr.Lookup{SourceRegister: regOutKey, DestRegister: regOutPort, IsDestRegSet: true, SetName: rs.outbound.Name, SetID: rs.outbound.ID},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: regOutAddr, RegProtoMin: regOutPort, Specified: true},
	}
}

// ctDNAT matches connections whose destination was translated: ct status dnat.
func ctDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: regKey},
		&expr.Bitwise{
			SourceRegister: regKey,
			DestRegister:   regKey,
			Len:            4,
			Mask:           binaryutil.NativeEndian.PutUint32(ipsDstNAT),
			Xor:            binaryutil.NativeEndian.PutUint32(0),
		},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: regKey, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}
