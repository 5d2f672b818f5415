package iptfw

import (
	"slices"

	"github.com/portlease/portlease/gateway"
)

// repairScript writes the script that makes the kernel, as dump d shows
// it, hold the backend's chains, the jumps to them once each, the fixed
// chains' rules of layout l, and the buckets of d and of want, each with
// its jump once. With want (not nil) it also makes the bucket chains hold
// exactly the rules of want's elements: the rules of an element that are
// all there are adopted (left alone, so its traffic goes on), the others
// deleted and written again, strays deleted. It returns the buckets the
// kernel then holds.
//
// Without want (New) the bucket chains are left as they are, for
// Reconcile to adopt.
func repairScript(d *dump, l layout, want []change) (*script, gateway.Reconciled, bucketSet) {
	s := &script{}
	var r gateway.Reconciled
	bs := newBucketSet()
	for f := range d.buckets.fanouts {
		bs.fanouts[f] = true
	}
	for b := range d.buckets.buckets {
		bs.add(b)
	}
	for _, c := range want {
		bs.add(c.key.bucket())
	}
	for _, c := range chainDefs() {
		if !d.chains[c] {
			s.declare(c)
		}
	}
	for _, c := range chainDefs() {
		if c.role == roleFixed {
			rewrite(s, d, c, l.fixedSpecs(c))
		}
	}
	for _, c := range bs.dispatch() {
		if c.def.role != roleRoot && !d.chains[c.def] {
			s.declare(c.def)
		}
		if c.def.role != roleBucket {
			redispatch(s, d, c.def, c.specs)
		}
	}
	for _, j := range jumpDefs() {
		switch n := d.jumps[j]; {
		case n == 0:
			s.add(j.table, "-I "+j.builtin+" 1 "+j.spec())
		case n > 1:
			for range n - 1 {
				s.add(j.table, "-D "+j.builtin+" "+j.spec())
			}
		}
	}
	if want != nil {
		r = repairElements(s, d, want)
	}
	return s, r, bs
}

// rewrite writes into s what makes fixed chain c, as dump d shows it,
// hold specs in order: nothing when it does, else a flush and specs.
func rewrite(s *script, d *dump, c chainDef, specs []string) {
	if d.chains[c] && slices.Equal(d.rules[c], specs) {
		return
	}
	if d.chains[c] {
		s.add(c.table, "-F "+c.name)
	}
	for _, spec := range specs {
		s.add(c.table, "-A "+c.name+" "+spec)
	}
}

// redispatch writes into s what makes root or fanout chain c, as dump d
// shows it, hold its jumps specs once each, in any order (the jump to a
// bucket made later comes after the others): the missing appended, the
// second copies and the strays deleted, the others left alone so that
// the traffic through them goes on.
func redispatch(s *script, d *dump, c chainDef, specs []string) {
	held := make(map[string]int)
	for _, spec := range d.rules[c] {
		held[spec]++
	}
	for _, spec := range specs {
		n := held[spec]
		for ; n > 1; n-- {
			s.add(c.table, "-D "+c.name+" "+spec)
		}
		if n == 0 {
			s.add(c.table, "-A "+c.name+" "+spec)
		}
		delete(held, spec)
	}
	for _, spec := range d.rules[c] {
		if held[spec] > 0 {
			held[spec]--
			s.add(c.table, "-D "+c.name+" "+spec)
		}
	}
}

// repairElements writes into s what makes the mapping chains hold exactly
// want's rules, and counts the mappings and pinholes adopted, added and
// removed (an outbound element is part of its mappings and not counted; a
// mapping that led elsewhere is removed and added).
func repairElements(s *script, d *dump, want []change) gateway.Reconciled {
	var r gateway.Reconciled
	type wanted struct {
		key  elemKey
		seen int
	}
	owner := make(map[string]*wanted) // by chain name and spec
	for _, c := range want {
		w := &wanted{key: c.key}
		for _, spec := range c.specs {
			owner[c.key.chain().name+" "+spec] = w
		}
	}
	removed := make(map[elemKey]bool)
	seenSpec := make(map[string]bool)
	for _, b := range d.buckets.dispatch() {
		c := b.def
		if c.role != roleBucket {
			continue
		}
		for _, spec := range d.rules[c] {
			id := c.name + " " + spec
			if w, ok := owner[id]; ok && !seenSpec[id] {
				seenSpec[id] = true
				w.seen++
				continue
			}
			// A stray, or a second copy.
			s.add(c.table, "-D "+c.name+" "+spec)
			if k, ok := keyOf(c, spec); ok && k.kind != kindOut && !seenSpec[id] {
				removed[k] = true
			}
		}
	}
	for _, c := range want {
		k, specs := c.key, c.specs
		ch := k.chain()
		w := owner[ch.name+" "+specs[0]]
		if w.seen == len(specs) {
			if k.kind != kindOut {
				r.Adopted++
			}
			continue
		}
		for _, spec := range specs {
			if seenSpec[ch.name+" "+spec] {
				s.add(ch.table, "-D "+ch.name+" "+spec)
			}
		}
		for _, spec := range specs {
			s.add(ch.table, "-A "+ch.name+" "+spec)
		}
		if k.kind != kindOut {
			r.Added++
		}
	}
	r.Removed = len(removed)
	return r
}

// closeScript writes the script that removes the backend's jumps and
// chains that dump d shows (its fixed chains, roots, fanouts and
// buckets), and nothing else.
func closeScript(d *dump) *script {
	s := &script{}
	for _, j := range jumpDefs() {
		for range d.jumps[j] {
			s.add(j.table, "-D "+j.builtin+" "+j.spec())
		}
	}
	var chains []chainDef
	for _, c := range chainDefs() {
		if d.chains[c] {
			chains = append(chains, c)
		}
	}
	for _, c := range d.buckets.dispatch() {
		if c.def.role != roleRoot && d.chains[c.def] {
			chains = append(chains, c.def)
		}
	}
	for _, c := range chains {
		s.add(c.table, "-F "+c.name)
	}
	for _, c := range chains {
		s.add(c.table, "-X "+c.name)
	}
	return s
}
