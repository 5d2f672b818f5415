package iptfw

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/nftables"
)

// iptables-nft keeps x_tables rules in nftables tables of the same names
// (ip nat, ip filter, ip6 filter) and makes a built-in chain, an nftables
// base chain accepting by default, when the first rule goes into it: the
// backend's jump into nat OUTPUT makes chain OUTPUT on a host whose
// operator never used it, its first restore makes the table itself.
// iptables-legacy's built-in chains always exist and are not affected.
// The backend's Close removes its jumps and chains, and then what
// iptables-nft made for them: the base chains its jumps went into and the
// tables, those New did not find and that are left empty, so that the
// operator's nftables ruleset is what it was before the backend started.

// nftBase names an nftables table (chain "") or a base chain of one.
type nftBase struct {
	family nftables.TableFamily
	table  string
	chain  string
}

func (b nftBase) String() string {
	family := "ip"
	if b.family == nftables.TableFamilyIPv6 {
		family = "ip6"
	}
	if b.chain == "" {
		return "table " + family + " " + b.table
	}
	return "table " + family + " " + b.table + " chain " + b.chain
}

// nftBases returns the tables the backend writes and the base chains its
// jumps go into, each table before its chains.
func nftBases() []nftBase {
	var bases []nftBase
	for _, t := range []tableID{nat4, filter4, filter6} {
		table := nftBase{family: nftables.TableFamilyIPv4, table: t.name()}
		if t == filter6 {
			table.family = nftables.TableFamilyIPv6
		}
		bases = append(bases, table)
		for _, j := range jumpDefs() {
			if j.table == t {
				c := table
				c.chain = j.builtin
				bases = append(bases, c)
			}
		}
	}
	return bases
}

// nftFootprint is what New found of nftBases before the backend wrote
// anything, for Close to delete what iptables-nft made for the backend.
//
// It cannot tell a chain the operator made from one a previous run of the
// daemon made and did not remove (a crash leaves the jumps and so the
// chains): a restart sees them as existing and leaves them at its exit.
// That errs on the side of the operator's ruleset, which is never
// touched.
type nftFootprint struct {
	netns   int
	existed map[nftBase]bool
}

// usesNFTables reports whether the variant's programs are iptables-nft's:
// NFT, or System when `iptables-restore --version` says "(nf_tables)".
func (r *runner) usesNFTables(ctx context.Context) (bool, error) {
	switch r.variant {
	case NFT:
		return true, nil
	case Legacy:
		return false, nil
	}
	out, err := r.run(ctx, r.program(false, "restore"), nil, "--version")
	if err != nil {
		return false, err
	}
	return strings.Contains(string(out), "(nf_tables)"), nil
}

// dialNFT opens a netlink connection to nftables in network namespace
// netns (0: the caller's own). Its requests need CAP_NET_ADMIN, which
// iptables-nft needs too.
func dialNFT(netns int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(netns))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("iptfw: nftables: open netlink: %w", err)
	}
	return conn, nil
}

// openNFT dials nftables in network namespace netns and reads its ip and
// ip6 tables and chains. The caller closes conn with CloseLasting.
func openNFT(netns int) (*nftables.Conn, *nftNow, error) {
	conn, err := dialNFT(netns)
	if err != nil {
		return nil, nil, err
	}
	now, err := readNFT(conn)
	if err != nil {
		_ = conn.CloseLasting()
		return nil, nil, err
	}
	return conn, now, nil
}

// nftNow is the nftables tables and chains of the ip and ip6 families.
type nftNow struct {
	tables map[nftBase]*nftables.Table
	chains map[nftBase]*nftables.Chain
	// inTable counts the chains of each table.
	inTable map[nftBase]int
}

// readNFT lists the tables and chains of the ip and ip6 families.
func readNFT(conn *nftables.Conn) (*nftNow, error) {
	now := &nftNow{tables: make(map[nftBase]*nftables.Table), chains: make(map[nftBase]*nftables.Chain),
		inTable: make(map[nftBase]int)}
	for _, family := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		tables, err := conn.ListTablesOfFamily(family)
		if err != nil {
			return nil, fmt.Errorf("iptfw: nftables: list tables: %w", err)
		}
		for _, t := range tables {
			now.tables[nftBase{family: t.Family, table: t.Name}] = t
		}
		chains, err := conn.ListChainsOfTableFamily(family)
		if err != nil {
			return nil, fmt.Errorf("iptfw: nftables: list chains: %w", err)
		}
		for _, c := range chains {
			table := nftBase{family: c.Table.Family, table: c.Table.Name}
			now.chains[nftBase{family: table.family, table: table.table, chain: c.Name}] = c
			now.inTable[table]++
		}
	}
	return now, nil
}

// recordNFT returns which of nftBases exist, before the backend writes
// anything: New calls it before its first iptables-nft program.
func recordNFT(netns int) (*nftFootprint, error) {
	conn, now, err := openNFT(netns)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.CloseLasting() }()
	fp := &nftFootprint{netns: netns, existed: make(map[nftBase]bool)}
	for _, b := range nftBases() {
		if b.chain == "" {
			fp.existed[b] = now.tables[b] != nil
		} else {
			fp.existed[b] = now.chains[b] != nil
		}
	}
	return fp, nil
}

// clean deletes, in one nftables transaction, the base chains of
// nftBases that did not exist at New and are now empty (no rule, policy
// accept), then the tables that did not exist at New and hold nothing but
// the chains deleted with them (no other chain, set, object or
// flowtable). Close calls it after removing the backend's jumps and
// chains. It returns what it deleted.
//
// The checks read the kernel just before the transaction, whose requests
// carry no generation number: a rule another program adds in between,
// microseconds, would go with its chain.
func (fp *nftFootprint) clean() ([]nftBase, error) {
	conn, now, err := openNFT(fp.netns)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.CloseLasting() }()
	var deleted []nftBase
	gone := make(map[nftBase]int) // chains deleted, by table
	for _, b := range nftBases() {
		if b.chain == "" || fp.existed[b] {
			continue
		}
		c := now.chains[b]
		if c == nil || c.Hooknum == nil || c.Policy == nil || *c.Policy != nftables.ChainPolicyAccept {
			continue
		}
		rules, err := conn.GetRules(c.Table, c)
		if err != nil {
			return nil, fmt.Errorf("iptfw: nftables: list the rules of %s: %w", b, err)
		}
		if len(rules) > 0 {
			continue
		}
		conn.DelChain(c)
		deleted = append(deleted, b)
		gone[nftBase{family: b.family, table: b.table}]++
	}
	for _, b := range nftBases() {
		if b.chain != "" || fp.existed[b] {
			continue
		}
		t := now.tables[b]
		if t == nil || now.inTable[b] != gone[b] {
			continue
		}
		// Table.Use would count the chains, sets, objects and flowtables
		// at once, but nftables v0.3.0 decodes it in host byte order.
		if empty, err := holdsNoMore(conn, t); err != nil {
			return nil, err
		} else if !empty {
			continue
		}
		conn.DelTable(t)
		deleted = append(deleted, b)
	}
	if len(deleted) == 0 {
		return nil, nil
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("iptfw: nftables: delete %v: %w", deleted, err)
	}
	return deleted, nil
}

// holdsNoMore reports whether table t holds no set, object or flowtable:
// what a table holds besides its chains.
func holdsNoMore(conn *nftables.Conn, t *nftables.Table) (bool, error) {
	name := nftBase{family: t.Family, table: t.Name}
	sets, err := conn.GetSets(t)
	if err != nil {
		return false, fmt.Errorf("iptfw: nftables: list the sets of %s: %w", name, err)
	}
	objs, err := conn.GetNamedObjects(t)
	if err != nil {
		return false, fmt.Errorf("iptfw: nftables: list the objects of %s: %w", name, err)
	}
	flowtables, err := conn.ListFlowtables(t)
	if err != nil {
		return false, fmt.Errorf("iptfw: nftables: list the flowtables of %s: %w", name, err)
	}
	return len(sets) == 0 && len(objs) == 0 && len(flowtables) == 0, nil
}
