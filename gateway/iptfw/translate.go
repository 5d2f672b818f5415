package iptfw

import (
	"net/netip"
	"slices"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/fwplan"
)

// change is the new rules of one element; nil: the element is removed.
type change struct {
	key   elemKey
	specs []string
}

// inKeyOf, outKeyOf and pinKeyOf return the keys of plan elements.
func inKeyOf(proto gateway.Protocol, eport uint16) elemKey {
	return elemKey{kind: kindIn, proto: proto, port: eport}
}

func outKeyOf(proto gateway.Protocol, internal netip.AddrPort) elemKey {
	return elemKey{kind: kindOut, proto: proto, port: internal.Port(), addr: internal.Addr().Unmap()}
}

func pinKeyOf(proto gateway.Protocol, internal netip.AddrPort) elemKey {
	return elemKey{kind: kindPin, proto: proto, port: internal.Port(), addr: internal.Addr()}
}

// planSpecs returns the rules of every element a Plan deletes or adds:
// nil for one it only deletes. A filtered IPv4 mapping's rules carry its
// filters (AddFiltered). The order is the Plan's: deletions first, each
// key once.
func planSpecs(p *fwplan.Plan) ([]change, error) {
	var filters map[elemKey][]gateway.Filter
	if len(p.AddFiltered) > 0 {
		filters = make(map[elemKey][]gateway.Filter, len(p.AddFiltered))
		for _, f := range p.AddFiltered {
			filters[inKeyOf(f.Protocol, f.ExternalPort)] = f.Filters
		}
	}
	n := len(p.DelIn) + len(p.DelOut) + len(p.DelPin) + len(p.AddIn) + len(p.AddOut) + len(p.AddPin)
	cs := make([]change, 0, n)
	var pos map[elemKey]int // nil while few: a linear search
	set := func(k elemKey, specs []string) {
		i := -1
		if pos != nil {
			if j, ok := pos[k]; ok {
				i = j
			}
		} else {
			i = slices.IndexFunc(cs, func(c change) bool { return c.key == k })
		}
		if i >= 0 {
			cs[i].specs = specs
			return
		}
		cs = append(cs, change{k, specs})
		switch {
		case pos != nil:
			pos[k] = len(cs) - 1
		case len(cs) > 16:
			pos = make(map[elemKey]int, n)
			for j, c := range cs {
				pos[c.key] = j
			}
		}
	}
	for _, d := range p.DelIn {
		set(inKeyOf(d.Protocol, d.ExternalPort), nil)
	}
	for _, d := range p.DelOut {
		set(outKeyOf(d.Protocol, d.Internal), nil)
	}
	for _, d := range p.DelPin {
		set(pinKeyOf(d.Protocol, d.Internal), nil)
	}
	for _, a := range p.AddIn {
		k := inKeyOf(a.Protocol, a.ExternalPort)
		specs, err := inboundSpecs(a, filters[k])
		if err != nil {
			return nil, err
		}
		set(k, specs)
	}
	for _, a := range p.AddOut {
		spec, err := outboundSpec(a)
		if err != nil {
			return nil, err
		}
		set(outKeyOf(a.Protocol, a.Internal), []string{spec})
	}
	for _, a := range p.AddPin {
		specs, err := pinholeSpecs(a)
		if err != nil {
			return nil, err
		}
		set(pinKeyOf(a.Protocol, a.Internal), specs)
	}
	return cs, nil
}

// script is an iptables-restore input under construction, one body per
// table, each after the declarations of the chains it makes.
type script struct {
	head [3][]byte
	body [3][]byte
}

// add appends line (without its newline) to table t's body.
func (s *script) add(t tableID, line string) {
	s.body[t] = append(append(s.body[t], line...), '\n')
}

// declare makes chain c, before any rule of the table.
func (s *script) declare(c chainDef) {
	s.head[c.table] = append(append(s.head[c.table], ":"+c.name...), " - [0:0]\n"...)
}

// empty reports whether the family's part is empty.
func (s *script) empty(v6 bool) bool {
	for _, t := range tablesOf(v6) {
		if len(s.head[t])+len(s.body[t]) > 0 {
			return false
		}
	}
	return true
}

// text returns the family's iptables-restore input: each table with a
// body, committed.
func (s *script) text(v6 bool) []byte {
	var b []byte
	for _, t := range tablesOf(v6) {
		if len(s.head[t])+len(s.body[t]) == 0 {
			continue
		}
		b = append(b, "*"+t.name()+"\n"...)
		b = append(b, s.head[t]...)
		b = append(b, s.body[t]...)
		b = append(b, "COMMIT\n"...)
	}
	return b
}

// changeScript drops the changes that leave an element's rules as the
// kernel holds them (a renewal: iptables rules have no timeouts) and
// writes the others into a script: the element's old rules deleted by
// their exact spec, its new ones appended, into its bucket chain, made
// with its fanout chain and the jumps to them when it is the first of
// them.
func (m *mirror) changeScript(cs []change) ([]change, *script) {
	s := &script{}
	kept := cs[:0]
	made := newBucketSet()
	for _, c := range cs {
		old := m.elems[c.key]
		if slices.Equal(old, c.specs) {
			continue
		}
		ch := c.key.chain()
		if b := c.key.bucket(); c.specs != nil && !m.buckets.buckets[b] && !made.buckets[b] {
			if f := b.fanout; !m.buckets.fanouts[f] && !made.fanouts[f] {
				fc, root := f.chain(), rootOf(f.kind)
				s.declare(fc)
				s.add(root.table, "-A "+root.name+" "+f.jump())
			}
			made.add(b)
			s.declare(ch)
			s.add(ch.table, "-A "+b.fanout.chain().name+" "+b.jump())
		}
		for _, spec := range old {
			s.add(ch.table, "-D "+ch.name+" "+spec)
		}
		for _, spec := range c.specs {
			s.add(ch.table, "-A "+ch.name+" "+spec)
		}
		kept = append(kept, c)
	}
	return kept, s
}
