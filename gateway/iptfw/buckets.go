package iptfw

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/portlease/portlease/gateway"
)

// The rules of the elements do not sit in one chain each: a chain grows
// with the table, the kernel walks it rule by rule for each new
// connection, and iptables-nft-restore, to delete a rule by its
// specification, fetches the chain's rules from the kernel and searches
// them. Each mapping chain (PORTLEASE-DNAT, PORTLEASE-SNAT,
// PORTLEASE-PINHOLES, the roots) dispatches by protocol to a fanout chain
// (PORTLEASE-DNAT-TCP), which dispatches by port range to a bucket chain
// (PORTLEASE-DNAT-TCP-39 for the external ports 39,936 to 40,959), which
// holds the elements' rules: a packet walks a few dispatch rules and one
// bucket, a deletion fetches one bucket.
//
// A fanout and a bucket chain are made, with the rule that jumps to it,
// by the transaction that writes its first element, and stay until
// Close: so a table of a few mappings has a few chains, and a port that
// comes and goes does not make and delete a chain each time.

// bucketBits is the number of low port bits that a bucket spans: 1,024
// ports, 64 buckets per protocol. At 10,000 mappings a bucket holds
// about 80 rules (TCP and UDP spread evenly), a new connection walks at
// most 64 range rules and 80 rules of its bucket, and
// iptables-nft-restore deletes a rule in about 17 ms instead of 85 (one
// chain); see the package doc's Cost.
const bucketBits = 10

// bucketCount is the number of buckets of a protocol.
const bucketCount = 1 << (16 - bucketBits)

// chainRole tells what a chain of the backend holds.
type chainRole uint8

const (
	roleFixed  chainRole = iota // rules that follow from the layout
	roleRoot                    // jumps by protocol to its fanout chains
	roleFanout                  // jumps by port range to its bucket chains
	roleBucket                  // the elements' rules
)

// rootOf returns the root chain of an element kind.
func rootOf(kind elemKind) chainDef {
	switch kind {
	case kindIn:
		return chainDef{table: nat4, name: chainDNAT, role: roleRoot, kind: kindIn}
	case kindOut:
		return chainDef{table: nat4, name: chainSNAT, role: roleRoot, kind: kindOut}
	}
	return chainDef{table: filter6, name: chainPinholes, role: roleRoot, kind: kindPin}
}

// fanout is the chain of a root that holds one protocol's buckets.
type fanout struct {
	kind  elemKind
	proto gateway.Protocol
}

func (f fanout) chain() chainDef {
	r := rootOf(f.kind)
	return chainDef{table: r.table, name: r.name + "-" + strings.ToUpper(protoName(f.proto)), role: roleFanout, kind: f.kind}
}

// jump is the root's rule that leads to the fanout chain.
func (f fanout) jump() string { return "-p " + protoName(f.proto) + " -j " + f.chain().name }

// bucket is the chain that holds the elements of one protocol and port
// range: the external port of an inbound element, the internal port of
// an outbound one (its source port) and of a pinhole (its destination
// port).
type bucket struct {
	fanout
	index uint16 // the port >> bucketBits
}

// bucket returns the bucket that holds the element's rules.
func (k elemKey) bucket() bucket {
	return bucket{fanout{k.kind, k.proto}, k.port >> bucketBits}
}

// chain returns the table and chain that hold the element's rules.
func (k elemKey) chain() chainDef { return k.bucket().chain() }

func (b bucket) chain() chainDef {
	f := b.fanout.chain()
	f.name += "-" + strconv.Itoa(int(b.index))
	f.role = roleBucket
	return f
}

// jump is the fanout chain's rule that leads to the bucket, as
// iptables-save prints it.
func (b bucket) jump() string {
	dir := "--dport"
	if b.kind == kindOut {
		dir = "--sport"
	}
	lo := int(b.index) << bucketBits
	n := protoName(b.proto)
	return fmt.Sprintf("-p %s -m %s %s %d:%d -j %s", n, n, dir, lo, lo+1<<bucketBits-1, b.chain().name)
}

// parseMappingChain returns the fanout (index -1) or bucket chain named
// name in table t.
func parseMappingChain(t tableID, name string) (f fanout, index int, ok bool) {
	for _, kind := range []elemKind{kindIn, kindOut, kindPin} {
		r := rootOf(kind)
		rest, found := strings.CutPrefix(name, r.name+"-")
		if r.table != t || !found {
			continue
		}
		protoPart, idx, hasIdx := strings.Cut(rest, "-")
		p, known := protoOf(strings.ToLower(protoPart))
		if !known || strings.ToUpper(protoName(p)) != protoPart {
			return fanout{}, 0, false
		}
		if _, err := protoMatch(p); err != nil {
			return fanout{}, 0, false
		}
		f = fanout{kind, p}
		if !hasIdx {
			return f, -1, true
		}
		n, err := strconv.Atoi(idx)
		if err != nil || n < 0 || n >= bucketCount || strconv.Itoa(n) != idx {
			return fanout{}, 0, false
		}
		return f, n, true
	}
	return fanout{}, 0, false
}

// bucketSet is the fanout and bucket chains there are.
type bucketSet struct {
	fanouts map[fanout]bool
	buckets map[bucket]bool
}

func newBucketSet() bucketSet {
	return bucketSet{fanouts: make(map[fanout]bool), buckets: make(map[bucket]bool)}
}

// add adds bucket b and its fanout.
func (s bucketSet) add(b bucket) {
	s.fanouts[b.fanout] = true
	s.buckets[b] = true
}

// chainSpecs is a chain and its rules.
type chainSpecs struct {
	def   chainDef
	specs []string
}

// dispatch returns the roots, the fanout and the bucket chains of s, in
// the order they are made, each with its rules (the jumps of roots and
// fanouts, in port order; none for a bucket, whose rules are elements).
func (s bucketSet) dispatch() []chainSpecs {
	fans := make([]fanout, 0, len(s.fanouts))
	for f := range s.fanouts {
		fans = append(fans, f)
	}
	slices.SortFunc(fans, func(a, b fanout) int { return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.proto, b.proto)) })
	bs := make([]bucket, 0, len(s.buckets))
	for b := range s.buckets {
		bs = append(bs, b)
	}
	slices.SortFunc(bs, func(a, b bucket) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.proto, b.proto), cmp.Compare(a.index, b.index))
	})
	var out []chainSpecs
	for _, kind := range []elemKind{kindIn, kindOut, kindPin} {
		root := chainSpecs{def: rootOf(kind)}
		for _, f := range fans {
			if f.kind == kind {
				root.specs = append(root.specs, f.jump())
			}
		}
		out = append(out, root)
	}
	for _, f := range fans {
		c := chainSpecs{def: f.chain()}
		for _, b := range bs {
			if b.fanout == f {
				c.specs = append(c.specs, b.jump())
			}
		}
		out = append(out, c)
	}
	for _, b := range bs {
		out = append(out, chainSpecs{def: b.chain()})
	}
	return out
}
