package iptfw

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/portlease/portlease/gateway"
)

// dump is what iptables-save and ip6tables-save show of the backend's
// chains and of the jumps to them; the operator's rules are skipped.
type dump struct {
	chains  map[chainDef]bool
	rules   map[chainDef][]string // each chain's rules, in order, after "-A CHAIN "
	jumps   map[jumpDef]int       // how many times each jump is there
	buckets bucketSet             // the fanout and bucket chains there are
	digest  digest                // as mirror.digest
}

func newDump() *dump {
	return &dump{chains: make(map[chainDef]bool), rules: make(map[chainDef][]string), jumps: make(map[jumpDef]int),
		buckets: newBucketSet()}
}

// parse reads one program's output (iptables-save when !v6).
func (d *dump) parse(out string, v6 bool) {
	scanSave(out, v6, func(t tableID, chain, spec string, decl bool) {
		c, ours := chainOf(t, chain)
		switch {
		case decl && ours:
			d.chains[c] = true
			d.digest.addChain(t, chain)
			if f, i, ok := parseMappingChain(t, chain); ok && i < 0 {
				d.buckets.fanouts[f] = true
			} else if ok {
				d.buckets.add(bucket{f, uint16(i)})
			}
		case decl:
		case ours:
			d.rules[c] = append(d.rules[c], spec)
			d.digest.add(t, chain, spec)
		default:
			if j, ok := jumpOf(t, chain, spec); ok {
				d.jumps[j]++
				d.digest.add(t, chain, spec)
			}
		}
	})
}

// digestOf returns the digest of the backend's chains, rules and jumps in
// one program's output, making nothing of them: Watch's poll.
func digestOf(out string, v6 bool) digest {
	var d digest
	scanSave(out, v6, func(t tableID, chain, spec string, decl bool) {
		_, ours := chainOf(t, chain)
		switch {
		case decl && ours:
			d.addChain(t, chain)
		case decl:
		case ours:
			d.add(t, chain, spec)
		default:
			if _, ok := jumpOf(t, chain, spec); ok {
				d.add(t, chain, spec)
			}
		}
	})
	return d
}

// scanSave calls fn for each chain declaration (decl) and each rule of the
// nat and filter tables in iptables-save output; other tables are
// skipped.
func scanSave(out string, v6 bool, fn func(t tableID, chain, spec string, decl bool)) {
	var t tableID
	in := false
	for len(out) > 0 {
		line := out
		if i := strings.IndexByte(out, '\n'); i >= 0 {
			line, out = out[:i], out[i+1:]
		} else {
			out = ""
		}
		switch {
		case strings.HasPrefix(line, "*"):
			in = true
			switch {
			case line == "*nat" && !v6:
				t = nat4
			case line == "*filter" && !v6:
				t = filter4
			case line == "*filter" && v6:
				t = filter6
			default:
				in = false
			}
		case !in:
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			fn(t, name, "", true)
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[3:], " ")
			fn(t, chain, spec, false)
		}
	}
}

// chainOf returns the backend's chain named name in table t: a fixed
// chain, a root, or a fanout or bucket chain.
func chainOf(t tableID, name string) (chainDef, bool) {
	if !strings.HasPrefix(name, chainPrefix) {
		return chainDef{}, false
	}
	for _, c := range chainDefs() {
		if c.table == t && c.name == name {
			return c, true
		}
	}
	switch f, i, ok := parseMappingChain(t, name); {
	case !ok:
		return chainDef{}, false
	case i < 0:
		return f.chain(), true
	default:
		return bucket{f, uint16(i)}.chain(), true
	}
}

// jumpOf returns the jump that rule spec of built-in chain is.
func jumpOf(t tableID, chain, spec string) (jumpDef, bool) {
	if !strings.HasPrefix(spec, "-m comment --comment "+jumpComment+" ") {
		return jumpDef{}, false
	}
	for _, j := range jumpDefs() {
		if j.table == t && j.builtin == chain && j.spec() == spec {
			return j, true
		}
	}
	return jumpDef{}, false
}

// ruleFields is what a rule of a mapping chain says.
type ruleFields struct {
	src, dst     netip.Prefix
	proto        gateway.Protocol
	sport, dport uint16
	target       string
	toDest       netip.AddrPort
}

// parseSpec reads the matches and target of a rule of the backend's
// mapping chains; ok is false for a rule of another form.
func parseSpec(spec string) (f ruleFields, ok bool) {
	tok := strings.Fields(spec)
	for i := 0; i+1 < len(tok); i++ {
		v := tok[i+1]
		var err error
		switch tok[i] {
		case "-s":
			f.src, err = netip.ParsePrefix(v)
		case "-d":
			f.dst, err = netip.ParsePrefix(v)
		case "-p":
			var known bool
			if f.proto, known = protoOf(v); !known {
				return f, false
			}
		case "--sport":
			f.sport, err = parsePort(v)
		case "--dport":
			f.dport, err = parsePort(v)
		case "-j":
			f.target = v
		case "--to-destination":
			f.toDest, err = netip.ParseAddrPort(v)
		default:
			continue
		}
		if err != nil {
			return f, false
		}
		i++
	}
	return f, f.proto != 0 && f.dport != 0 && f.target != ""
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

// keyOf returns the element a rule of bucket chain c belongs to.
func keyOf(c chainDef, spec string) (elemKey, bool) {
	f, ok := parseSpec(spec)
	if !ok || c.role != roleBucket {
		return elemKey{}, false
	}
	switch c.kind {
	case kindIn:
		return inKeyOf(f.proto, f.dport), true
	case kindPin:
		return pinKeyOf(f.proto, netip.AddrPortFrom(f.dst.Addr(), f.dport)), f.dst.IsValid()
	case kindOut:
		return outKeyOf(f.proto, netip.AddrPortFrom(f.src.Addr(), f.sport)), f.src.IsValid()
	}
	return elemKey{}, false
}

// bucketRules returns the rules of the bucket chains of kind's elements,
// bucket by bucket in port order.
func (d *dump) bucketRules(kind elemKind) []string {
	var specs []string
	for _, c := range d.buckets.dispatch() {
		if c.def.role == roleBucket && c.def.kind == kind {
			specs = append(specs, d.rules[c.def]...)
		}
	}
	return specs
}

// mappings returns the mappings and pinholes the dump's mapping chains
// hold (Firewall.List): a DNAT rule of a PORTLEASE-DNAT bucket is a
// mapping, with the filters of its key's rules that name a peer; an
// accepting rule of a PORTLEASE-PINHOLES bucket is a pinhole. Lifetimes are zero: iptables rules have no timeouts.
func (d *dump) mappings() []gateway.Mapping {
	var ms []gateway.Mapping
	at := make(map[elemKey]int)
	put := func(k elemKey, m gateway.Mapping, f ruleFields, any netip.Prefix) {
		i, seen := at[k]
		if !seen {
			i = len(ms)
			at[k] = i
			ms = append(ms, m)
		}
		if f.src.IsValid() || f.sport != 0 {
			remote := f.src
			if !remote.IsValid() {
				remote = any
			}
			ms[i].Filters = append(ms[i].Filters, gateway.Filter{Remote: remote, Port: f.sport})
		}
	}
	for _, spec := range d.bucketRules(kindIn) {
		f, ok := parseSpec(spec)
		if !ok || f.target != "DNAT" || !f.toDest.IsValid() {
			continue
		}
		put(inKeyOf(f.proto, f.dport), gateway.Mapping{Protocol: f.proto, ExternalPort: f.dport, Internal: f.toDest},
			f, netip.PrefixFrom(netip.IPv4Unspecified(), 0))
	}
	for _, spec := range d.bucketRules(kindPin) {
		f, ok := parseSpec(spec)
		if !ok || f.target != "ACCEPT" || !f.dst.IsValid() {
			continue
		}
		ep := netip.AddrPortFrom(f.dst.Addr(), f.dport)
		put(pinKeyOf(f.proto, ep), gateway.Mapping{Protocol: f.proto, ExternalPort: f.dport, Internal: ep, Pinhole: true},
			f, netip.PrefixFrom(netip.IPv6Unspecified(), 0))
	}
	return ms
}
