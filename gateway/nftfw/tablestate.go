package nftfw

import (
	"fmt"
	"maps"
	"slices"

	"github.com/google/nftables"
)

// tableState is what the kernel holds of the backend's table: whether it
// exists, its named sets and maps, its chains and how many rules each has.
// The zero value (and nil) stands for no table.
type tableState struct {
	exists bool
	sets   map[string]*nftables.Set   // named ones only
	chains map[string]*nftables.Chain // by name
	rules  map[string]int             // by chain name; read only when asked
}

// readTable reads what the kernel holds of the ruleset's table, with the
// number of rules in each chain when withRules. A missing table is not an
// error.
func (rs *ruleset) readTable(c *nftables.Conn, withRules bool) (*tableState, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	st := &tableState{}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == rs.table.Name }) {
		return st, nil
	}
	st.exists = true
	sets, err := c.GetSets(rs.table)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	st.sets = make(map[string]*nftables.Set, len(sets))
	for _, s := range sets {
		if !s.Anonymous {
			st.sets[s.Name] = s
		}
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	st.chains = make(map[string]*nftables.Chain)
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == rs.table.Name {
			st.chains[ch.Name] = ch
		}
	}
	if !withRules {
		return st, nil
	}
	st.rules = make(map[string]int, len(st.chains))
	for name := range st.chains {
		rules, err := c.GetRules(rs.table, &nftables.Chain{Name: name, Table: rs.table})
		if err != nil {
			return nil, fmt.Errorf("list rules of chain %s: %w", name, err)
		}
		st.rules[name] = len(rules)
	}
	return st, nil
}

// chainNames returns the names of the chains held, sorted.
func (st *tableState) chainNames() []string {
	if st == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(st.chains))
}

// setNames returns the names of the named sets held, sorted.
func (st *tableState) setNames() []string {
	if st == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(st.sets))
}

// missing describes what st, read with its rules, lacks or holds beyond the
// ruleset, such as "table" or "chain forward", or returns "" when the table
// is exactly the ruleset's in its sets, chains and rule counts.
func (rs *ruleset) missing(st *tableState) string {
	if !st.exists {
		return "table"
	}
	for _, s := range rs.namedSets() {
		if old, ok := st.sets[s.Name]; !ok || !sameSet(old, s) {
			return "set " + s.Name
		}
	}
	if len(st.sets) != len(rs.namedSets()) {
		return "foreign sets"
	}
	counts := rs.ruleCounts()
	for name, want := range rs.chains() {
		old, ok := st.chains[name]
		if !ok || !sameChain(old, want) || want.Policy != nil && (old.Policy == nil || *old.Policy != *want.Policy) {
			return "chain " + name
		}
		if st.rules[name] != counts[name] {
			return "rules of chain " + name
		}
	}
	if len(st.chains) != len(chainDefs()) {
		return "foreign chains"
	}
	return ""
}

// sameSet reports whether the kernel's set have is defined as want: the
// same kind, key and data types and lengths, and timeout and interval flags.
// The elements of such a set can be kept.
func sameSet(have, want *nftables.Set) bool {
	return have.IsMap == want.IsMap &&
		have.HasTimeout == want.HasTimeout &&
		have.Interval == want.Interval &&
		have.Constant == want.Constant &&
		have.KeyType.GetNFTMagic() == want.KeyType.GetNFTMagic() &&
		have.KeyType.Bytes == want.KeyType.Bytes &&
		(!want.IsMap || have.DataType.GetNFTMagic() == want.DataType.GetNFTMagic() &&
			have.DataType.Bytes == want.DataType.Bytes)
}

// sameChain reports whether the kernel's chain have is the chain want: the
// same type, hook and priority for a base chain, none for a regular one.
func sameChain(have, want *nftables.Chain) bool {
	if want.Hooknum == nil {
		return have.Hooknum == nil
	}
	return have.Type == want.Type &&
		have.Hooknum != nil && *have.Hooknum == *want.Hooknum &&
		have.Priority != nil && *have.Priority == *want.Priority
}
