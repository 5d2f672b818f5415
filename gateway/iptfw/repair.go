package iptfw

import (
	"slices"

	"github.com/portlease/portlease/gateway"
)

// repairScript writes the script that makes the kernel, as dump d shows
// it, hold the backend's chains, the jumps to them once each and the
// fixed chains' rules of layout l. With want (not nil) it also makes the
// mapping chains hold exactly the rules of want's elements: the rules of
// an element that are all there are adopted (left alone, so its traffic
// goes on), the others deleted and written again, strays deleted.
//
// Without want (New) the mapping chains are left as they are, for
// Reconcile to adopt.
func repairScript(d *dump, l layout, want []change) (*script, gateway.Reconciled) {
	s := &script{}
	var r gateway.Reconciled
	for _, c := range chainDefs() {
		if !d.chains[c] {
			s.add(c.table, ":"+c.name+" - [0:0]")
		}
	}
	for _, c := range chainDefs() {
		if c.mapping {
			continue
		}
		specs := l.fixedSpecs(c)
		if d.chains[c] && slices.Equal(d.rules[c], specs) {
			continue
		}
		if d.chains[c] {
			s.add(c.table, "-F "+c.name)
		}
		for _, spec := range specs {
			s.add(c.table, "-A "+c.name+" "+spec)
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
	return s, r
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
	for _, c := range chainDefs() {
		if !c.mapping {
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
// chains that dump d shows, and nothing else.
func closeScript(d *dump) *script {
	s := &script{}
	for _, j := range jumpDefs() {
		for range d.jumps[j] {
			s.add(j.table, "-D "+j.builtin+" "+j.spec())
		}
	}
	for _, c := range chainDefs() {
		if d.chains[c] {
			s.add(c.table, "-F "+c.name)
		}
	}
	for _, c := range chainDefs() {
		if d.chains[c] {
			s.add(c.table, "-X "+c.name)
		}
	}
	return s
}
