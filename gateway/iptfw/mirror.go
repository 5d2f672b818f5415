package iptfw

// mirror is what the backend wrote into its chains, as iptables-save
// prints it: the rules of each element (for deleting them by their exact
// spec, and for dropping renewals that change nothing), the fixed
// chains' and the buckets made. digest sums all of it, for Watch's
// comparison with a dump.
//
// fwplan's State decides what the kernel must hold; the mirror only keeps
// the text of what was written, about 100 bytes a rule.
type mirror struct {
	elems   map[elemKey][]string
	fixed   map[chainDef][]string
	buckets bucketSet
	digest  digest // of the chains, jumps, fixed and dispatch rules and elements
	elemD   digest // of the elements alone
}

func newMirror() *mirror {
	return &mirror{elems: make(map[elemKey][]string), fixed: make(map[chainDef][]string), buckets: newBucketSet()}
}

// apply records committed changes.
func (m *mirror) apply(cs []change) {
	for _, c := range cs {
		ch := c.key.chain()
		for _, spec := range m.elems[c.key] {
			m.elemD.sub(ch.table, ch.name, spec)
		}
		if c.specs == nil {
			delete(m.elems, c.key)
		} else {
			m.elems[c.key] = c.specs
		}
		for _, spec := range c.specs {
			m.elemD.add(ch.table, ch.name, spec)
		}
		if c.specs != nil {
			m.buckets.add(c.key.bucket())
		}
	}
	m.sum()
}

// setFixed records the fixed chains' rules of layout l.
func (m *mirror) setFixed(l layout) {
	for _, c := range chainDefs() {
		if c.role == roleFixed {
			m.fixed[c] = l.fixedSpecs(c)
		}
	}
	m.sum()
}

// setBuckets records the buckets there are (besides those apply makes).
func (m *mirror) setBuckets(s bucketSet) {
	for b := range s.buckets {
		m.buckets.add(b)
	}
	for f := range s.fanouts {
		m.buckets.fanouts[f] = true
	}
	m.sum()
}

// sum makes digest: the chains, the jumps, the fixed and dispatch
// chains' rules and the elements'.
func (m *mirror) sum() {
	d := m.elemD
	for _, c := range chainDefs() {
		d.addChain(c.table, c.name)
		for _, spec := range m.fixed[c] {
			d.add(c.table, c.name, spec)
		}
	}
	for _, c := range m.buckets.dispatch() {
		if c.def.role != roleRoot {
			d.addChain(c.def.table, c.def.name)
		}
		for _, spec := range c.specs {
			d.add(c.def.table, c.def.name, spec)
		}
	}
	for _, j := range jumpDefs() {
		d.add(j.table, j.builtin, j.spec())
	}
	m.digest = d
}

// digest is an order-independent summary of a multiset of rules: their
// number and the sum of their hashes. Adding and removing a rule costs
// O(its length).
type digest struct {
	n   int
	sum uint64
}

func (d *digest) add(t tableID, chain, spec string) {
	d.n++
	d.sum += ruleHash(t, chain, spec)
}

func (d *digest) sub(t tableID, chain, spec string) {
	d.n--
	d.sum -= ruleHash(t, chain, spec)
}

func (d *digest) addChain(t tableID, chain string) { d.add(t, ":"+chain, "") }

// ruleHash is FNV-1a of the table, chain and spec.
func ruleHash(t tableID, chain, spec string) uint64 {
	h := uint64(14695981039346656037)
	step := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	h ^= uint64(t)
	h *= 1099511628211
	step(chain)
	step(spec)
	// Mix the bits, so that sums of similar rules do not cancel out.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}
