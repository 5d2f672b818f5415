// Package iptfw is the iptables backend of the lease table: the mappings of
// gateway/fwplan's plans as rules in chains of its own, written with
// iptables-restore --noflush, one process per batch, for iptables-legacy
// and iptables-nft alike. It does what gateway/nftfw does, in iptables'
// terms.
//
// # What it puts in the kernel
//
// Its own chains only, every name starting with PORTLEASE-, and one jump
// to them from each built-in chain it needs, inserted first and carrying
// `-m comment --comment portleased`; nothing of the operator's is touched:
//
//	nat PREROUTING  -> PORTLEASE-PREROUTING: -i WAN -j PORTLEASE-DNAT
//	                   -d EXT/32 -i LAN -j PORTLEASE-HAIRPIN (each LAN link; ! -i WAN when none is named)
//	nat OUTPUT      -> PORTLEASE-OUTPUT: -d EXT/32 -j PORTLEASE-HAIRPIN (the gateway's own processes)
//	PORTLEASE-HAIRPIN: set the mark bit, -j PORTLEASE-DNAT, clear the bit again
//	PORTLEASE-DNAT: -p tcp -j PORTLEASE-DNAT-TCP (one rule per protocol mapped)
//	PORTLEASE-DNAT-TCP: -p tcp -m tcp --dport 39936:40959 -j PORTLEASE-DNAT-TCP-39 (one per bucket)
//	PORTLEASE-DNAT-TCP-39: one rule per mapping of external port 39,936 to 40,959
//	                   (one per filter of a filtered one):
//	                   -p tcp -m tcp --dport EPORT -j DNAT --to-destination ADDR:PORT
//	nat POSTROUTING -> PORTLEASE-POSTROUTING: -o WAN -j PORTLEASE-SNAT
//	                   ! -o WAN -m mark --mark M/M -m conntrack --ctstate DNAT -j MASQUERADE (hairpin)
//	PORTLEASE-SNAT -> PORTLEASE-SNAT-TCP -> PORTLEASE-SNAT-TCP-7 (--sport 7168:8191):
//	                   one rule per mapped endpoint (the oldest mapping's port, fwplan decides):
//	                   -s ADDR/32 -p tcp -m tcp --sport PORT -j MASQUERADE --to-ports EPORT
//	filter FORWARD  -> PORTLEASE-FORWARD: -m conntrack --ctstate DNAT -j ACCEPT
//	ip6 filter FORWARD -> PORTLEASE-FORWARD: -i WAN -j PORTLEASE-PINHOLES
//	PORTLEASE-PINHOLES -> PORTLEASE-PINHOLES-TCP -> PORTLEASE-PINHOLES-TCP-0 (--dport 0:1023):
//	                   one rule per pinhole, or per filter and a final drop
//
// The mapping chains are split in buckets (buckets.go): a root
// (PORTLEASE-DNAT) jumps by protocol to a fanout chain, which jumps by
// port range to bucket chains of 1,024 ports each (the external port of
// a mapping, the internal port of an endpoint's outbound translation and
// of a pinhole), 64 per protocol, numbered by the port divided by 1,024.
// A fanout or bucket chain is made, with its jump, by the transaction
// that writes its first rule, and stays until Close: a gateway of a few
// mappings shows a few chains in iptables-save, not 384, and a port that
// comes and goes makes no chain each time.
//
// The external address appears only in the dispatch rules of
// PORTLEASE-PREROUTING, -OUTPUT and -POSTROUTING: a new address rewrites
// those few rules, no mapping's. Outbound translation is a MASQUERADE to
// the mapped port, which takes the address of the WAN link, the external
// address. Until an external address is set, only inbound traffic from
// the WAN link is translated. Peers that a filtered IPv4 mapping does not
// admit are not translated (nftfw drops them; the nat table cannot).
// Because the jump to PORTLEASE-FORWARD comes first in FORWARD, its accept
// ends the filter table: the operator's firewall needs no line of its own.
//
// iptables-nft keeps these rules in nftables tables (ip nat, ip filter,
// ip6 filter) and makes a built-in chain, a base chain, when the first
// rule goes into it, and the table with it: the backend's jump into nat
// OUTPUT makes chain OUTPUT when the operator had none. New records which
// of them exist; Close deletes those that did not and are left empty,
// in one nftables transaction (nftbase.go).
//
// # Cost
//
// Each mapping is one rule in a bucket chain: the kernel matches a new
// connection against a protocol's jump, the range jumps of the buckets
// there are (at most 64) and the rules of one bucket, one by one (nftfw's
// maps are hash lookups): at 10,000 mappings spread over TCP and UDP,
// about 80 rules a bucket instead of 10,000 in one chain. A rule is
// deleted by its specification: iptables-nft-restore 1.8.9 fetches the
// rules of the chains the transaction names (not the whole table) and
// searches them, so a deletion costs with the size of its bucket
// (BenchmarkLabDeleteRule, one rule deleted with 10,000 DNAT rules in the
// table: 85 ms in one chain, 22 ms spread over 16 chains, 17 ms over 64,
// 14 ms over 256; a transaction of 16 deletions at ports far apart fetches
// up to 16 buckets). iptables-legacy replaces the whole table (a copy of
// every rule) on each commit, whatever the chains (58-61 ms for all four
// layouts): the buckets shorten only its per-packet walk. Renewals, most
// of NAT-PMP's traffic, change no rule and run no program.
//
// make bench (NAT-PMP from 16 clients, per second at 0, 1,000 and
// 10,000 mappings), with one chain each and with the buckets:
//
//	iptables-nft     new mappings  823 /  633 / 269  ->  930 / 646 / 313
//	                 deletions     349 /  161 /  26  ->  522 / 385 / 386
//	iptables-legacy  new mappings  557 /  290 /  75  ->  532 / 302 /  75
//	                 deletions     483 /  280 /  73  ->  519 / 268 /  74
//
// # What fwplan decides
//
// The Firewall owns one fwplan.State under its mutex. Apply plans the
// batch, translates the Plan into iptables-restore lines (a deletion by
// its exact spec, from the text the backend wrote; a renewal that changes
// nothing is dropped), runs one iptables-restore --noflush (and one
// ip6tables-restore when pinholes change) and commits the State, or aborts
// it when the program fails. iptables rules have no timeouts: the State
// plans none (fwplan.Config.MaxTimeout of a nanosecond), the lease table
// ends every lease, and Release removes everything, as Close does.
//
// # Privileges
//
// Measured with iptables 1.8.9 as an unprivileged user (setpriv with
// ambient capabilities) inside a network namespace:
//
//   - iptables-nft-restore and -save need CAP_NET_ADMIN only, and take no
//     lock (nf_tables transactions are atomic).
//   - iptables-legacy-restore and -save need CAP_NET_ADMIN and CAP_NET_RAW
//     (the x_tables get/setsockopt calls go through a raw socket): with
//     CAP_NET_ADMIN alone the restore fails with "unable to initialize
//     table" and the save with "Permission denied (you must be root)".
//   - iptables-legacy-restore takes the xtables lock, flock on
//     /run/xtables.lock (mode 0600, root), waiting for it; a user that
//     cannot open it fails ("Fatal: can't open lock file"). It honours
//     XTABLES_LOCKFILE. So the daemon opens /run/xtables.lock before it
//     drops root and passes it as Config.XtablesLock: the backend flocks
//     it around each restore, serialising with the operator's own iptables
//     commands, and points the programs at a private lock file
//     (Config.LockFile, in the state directory) that only they take.
//
// The capabilities must reach the programs as ambient capabilities; a
// daemon that keeps CAP_NET_ADMIN alone can run only the nft variant.
// With iptables-nft the daemon itself talks to nftables over netlink at
// New and Close (the base chains and tables above), which needs
// CAP_NET_ADMIN too.
package iptfw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/conntrack"
	"github.com/portlease/portlease/gateway/fwplan"
)

// Variant names the iptables programs a Firewall runs.
type Variant string

// The variants: the system's own iptables-restore (its alternatives
// decide), iptables-legacy-restore (x_tables) and iptables-nft-restore
// (x_tables rules over nf_tables).
const (
	System Variant = ""
	Legacy Variant = "legacy"
	NFT    Variant = "nft"
)

// DefaultMark is the packet mark bit of hairpinned traffic when
// Config.Mark is zero, nftfw's bit: ORed in and cleared again, the other
// bits stay the host's.
const DefaultMark uint32 = 0x10000000

// DefaultPollInterval is Watch's interval when Config.PollInterval is
// zero.
const DefaultPollInterval = 5 * time.Second

// installTimeout bounds the programs run by New, Release and Close, which
// take no context.
const installTimeout = 30 * time.Second

// Config configures a Firewall. Only ExternalInterface is required.
type Config struct {
	// Variant is the iptables programs to run.
	Variant Variant
	// ExternalInterface is the WAN link, such as "wan0".
	ExternalInterface string
	// InternalInterfaces are the LAN links whose hosts may reach mappings
	// through the external address (hairpinning). Empty means every link
	// but ExternalInterface.
	InternalInterfaces []string
	// NetNS is a file descriptor of the network namespace to work in; 0
	// means the caller's own. It must stay open while the Firewall is in
	// use. Entering it needs CAP_SYS_ADMIN (tests).
	NetNS int
	// Logger receives the backend's logs; nil discards them.
	Logger *slog.Logger
	// KeepFlows leaves the conntrack entries of removed and moved mappings
	// alone.
	KeepFlows bool

	// Mark is the packet mark bit of hairpinned traffic (one bit); zero:
	// DefaultMark.
	Mark uint32
	// PollInterval is how often Watch reads the chains back; zero:
	// DefaultPollInterval.
	PollInterval time.Duration
	// XtablesLock is the system's xtables lock file (/run/xtables.lock),
	// opened before the daemon dropped root; the backend holds an
	// exclusive flock on it while a restore runs. Nil: the programs take
	// the lock themselves (as root).
	XtablesLock *os.File
	// LockFile is the private lock file the programs take instead of
	// /run/xtables.lock (XTABLES_LOCKFILE), writable by the daemon's user;
	// empty: /run/xtables.lock.
	LockFile string
}

// Firewall is the iptables backend. It is safe for concurrent use.
type Firewall struct {
	log *slog.Logger
	run runner
	// flows deletes the conntrack entries of removed and moved mappings
	// in the background (nil with Config.KeepFlows).
	flows *conntrack.Forgetter
	poll  time.Duration
	// nft is what New found of the nftables tables and base chains
	// iptables-nft makes for the backend; nil for iptables-legacy.
	nft *nftFootprint

	mu     sync.Mutex
	state  *fwplan.State
	m      *mirror
	l      layout
	gen    uint64 // counts the changes written, for Watch
	closed bool
}

var _ gateway.Firewall = (*Firewall)(nil)

// stateConfig makes a State plan no kernel timeouts (any timeout is longer
// than MaxTimeout, and so none) and, unless keepFlows, the flow changes of
// each batch.
func stateConfig(keepFlows bool) fwplan.Config {
	return fwplan.Config{MaxTimeout: time.Nanosecond, KeepFlows: keepFlows}
}

// New installs the backend's chains and the jumps to them. Rules its
// mapping chains already hold are kept, for Reconcile to adopt.
func New(cfg Config) (*Firewall, error) {
	switch cfg.Variant {
	case System, Legacy, NFT:
	default:
		return nil, fmt.Errorf("iptfw: variant %q: want %q, %q or %q", cfg.Variant, System, Legacy, NFT)
	}
	if err := checkLinks(cfg.ExternalInterface, cfg.InternalInterfaces); err != nil {
		return nil, err
	}
	mark := cfg.Mark
	if mark == 0 {
		mark = DefaultMark
	}
	if mark&(mark-1) != 0 {
		return nil, fmt.Errorf("iptfw: mark %#x: want one bit", mark)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	poll := cfg.PollInterval
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	f := &Firewall{
		log:   log,
		run:   runner{variant: cfg.Variant, netns: cfg.NetNS, lock: cfg.XtablesLock, lockFile: cfg.LockFile},
		poll:  poll,
		state: fwplan.New(stateConfig(cfg.KeepFlows), time.Now()),
		m:     newMirror(),
		l:     layout{ext: cfg.ExternalInterface, internal: slices.Clone(cfg.InternalInterfaces), mark: mark},
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	nft, err := f.run.usesNFTables(ctx)
	if err != nil {
		return nil, err
	}
	if nft {
		if f.nft, err = recordNFT(cfg.NetNS); err != nil {
			return nil, err
		}
	}
	d, err := f.dump(ctx)
	if err != nil {
		return nil, err
	}
	s, _, buckets := repairScript(d, f.l, nil)
	if err := f.runScript(ctx, s); err != nil {
		return nil, err
	}
	f.m.setFixed(f.l)
	f.m.setBuckets(buckets)
	if !cfg.KeepFlows {
		f.flows = conntrack.NewForgetter(cfg.NetNS, log)
	}
	return f, nil
}

// checkLinks checks the interface names.
func checkLinks(ext string, internal []string) error {
	if err := checkIfName(ext); err != nil {
		return fmt.Errorf("iptfw: external interface: %w", err)
	}
	for _, name := range internal {
		if err := checkIfName(name); err != nil {
			return fmt.Errorf("iptfw: internal interface: %w", err)
		}
		if name == ext {
			return fmt.Errorf("iptfw: internal interface %q is the external one", name)
		}
	}
	return nil
}

// checkIfName checks a link name for an iptables rule: 1 to 15 bytes, no
// blank, no quote, not starting with '!' or '-'.
func checkIfName(name string) error {
	if name == "" || len(name) > 15 || name[0] == '!' || name[0] == '-' {
		return fmt.Errorf("%q is not a link name", name)
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c == '"' || c == '\'' || c == '\\' || c == 0x7f {
			return fmt.Errorf("%q is not a link name", name)
		}
	}
	return nil
}

var errClosed = errors.New("iptfw: firewall closed")

// dump reads back both families.
func (f *Firewall) dump(ctx context.Context) (*dump, error) {
	d := newDump()
	for _, v6 := range []bool{false, true} {
		out, err := f.run.save(ctx, v6)
		if err != nil {
			return nil, err
		}
		d.parse(out, v6)
	}
	return d, nil
}

// runScript runs the restores of s: ip6tables' first, when it has a part,
// then iptables'. They are two transactions: when the second fails the
// first stays, and the Firewall's mirror no longer matches the kernel
// (Watch reports it, and the table reconciles).
func (f *Firewall) runScript(ctx context.Context, s *script) error {
	for _, v6 := range []bool{true, false} {
		if s.empty(v6) {
			continue
		}
		if err := f.run.restore(ctx, v6, s.text(v6)); err != nil {
			return err
		}
	}
	return nil
}

// Apply implements gateway.Firewall.
func (f *Firewall) Apply(ctx context.Context, add, remove []gateway.Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errClosed
	}
	p, err := f.state.Plan(time.Now(), add, remove)
	if err != nil {
		return fmt.Errorf("iptfw: apply: %w", err)
	}
	cs, err := planSpecs(p)
	if err != nil {
		f.state.Abort()
		return err
	}
	cs, s := f.m.changeScript(cs)
	if len(cs) == 0 {
		f.state.Commit()
		return nil
	}
	if err := f.runScript(ctx, s); err != nil {
		f.state.Abort()
		f.gen++ // perhaps half written
		return fmt.Errorf("iptfw: apply: %w", err)
	}
	f.state.Commit()
	f.m.apply(cs)
	f.gen++
	f.forgetFlows(p)
	return nil
}

// forgetFlows hands the flow changes of the committed Plan p (what
// fwplan decided: mappings removed or moved, ports granted again, pinholes
// closed or filtered) to the conntrack forgetter, which deletes their
// entries off the request path, as nftfw does. The caller holds f.mu, so
// that the changes reach the forgetter in the order of their commits.
func (f *Firewall) forgetFlows(p *fwplan.Plan) {
	if f.flows != nil && !p.Flows.Empty() {
		f.flows.Add(conntrack.Changes(p.Flows))
	}
}

// forgetReplaced hands the forgetter the flows of what a reconciliation
// removed: the mappings held that want lacks or leads elsewhere, and the
// pinholes held that want lacks.
func (f *Firewall) forgetReplaced(held, want []gateway.Mapping) {
	if f.flows == nil {
		return
	}
	type key struct {
		proto  gateway.Protocol
		port   uint16
		pin    netip.AddrPort
		pinned bool
	}
	keyOf := func(m gateway.Mapping) key {
		if m.Pinhole {
			return key{proto: m.Protocol, pin: m.Internal, pinned: true}
		}
		return key{proto: m.Protocol, port: m.ExternalPort}
	}
	wanted := make(map[key]netip.AddrPort, len(want))
	for _, m := range want {
		wanted[keyOf(m)] = m.Internal
	}
	var c conntrack.Changes
	for _, m := range held {
		to, ok := wanted[keyOf(m)]
		switch {
		case m.Pinhole && !ok:
			c.Closed = append(c.Closed, m)
		case !m.Pinhole && (!ok || to != m.Internal):
			c.Ended = append(c.Ended, m)
		}
	}
	if len(c.Ended)+len(c.Closed) > 0 {
		f.flows.Add(c)
	}
}

// Reconcile implements gateway.Firewall: it reads the chains back, adopts
// the rules that want's plan would write, deletes the others and writes
// what is missing, with the chains and jumps, in one restore per family.
func (f *Firewall) Reconcile(ctx context.Context, want []gateway.Mapping) (gateway.Reconciled, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return gateway.Reconciled{}, errClosed
	}
	fresh, p, err := f.state.Wanted(time.Now(), want)
	if err != nil {
		return gateway.Reconciled{}, fmt.Errorf("iptfw: reconcile: %w", err)
	}
	cs, err := planSpecs(p)
	if err != nil {
		return gateway.Reconciled{}, err
	}
	d, err := f.dump(ctx)
	if err != nil {
		return gateway.Reconciled{}, err
	}
	s, r, buckets := repairScript(d, f.l, cs)
	f.gen++
	if err := f.runScript(ctx, s); err != nil {
		return gateway.Reconciled{}, fmt.Errorf("iptfw: reconcile: %w", err)
	}
	if fixed, _, _ := repairScript(d, f.l, nil); !fixed.empty(false) || !fixed.empty(true) {
		// nftfw says the same of its table: what someone else removed
		// of the chains and jumps is worth an operator's notice even
		// when every mapping was intact.
		f.log.Warn("iptfw: chains or jumps of the backend were missing or changed; installed again")
	}
	f.forgetReplaced(d.mappings(), want)
	f.state = fresh
	f.m = newMirror()
	f.m.setFixed(f.l)
	f.m.setBuckets(buckets)
	f.m.apply(cs)
	f.log.Debug("iptfw: reconciled", "adopted", r.Adopted, "added", r.Added, "removed", r.Removed)
	return r, nil
}

// List implements gateway.Firewall: the mappings and pinholes the chains
// hold, without lifetimes (iptables rules have no timeouts).
func (f *Firewall) List(ctx context.Context) ([]gateway.Mapping, error) {
	d, err := f.dump(ctx)
	if err != nil {
		return nil, err
	}
	return d.mappings(), nil
}

// SetExternalAddress implements gateway.Firewall: it rewrites the few
// dispatch rules that name the address.
func (f *Firewall) SetExternalAddress(ctx context.Context, addr netip.Addr) error {
	if addr.IsValid() {
		addr = addr.Unmap()
		if !addr.Is4() || addr.IsUnspecified() {
			return fmt.Errorf("iptfw: external address %v: not IPv4", addr)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.l
	l.addr = addr
	return f.relayout(ctx, l)
}

// SetInterfaces implements gateway.Firewall: the links are named in the
// fixed chains only, so the mappings move with them.
func (f *Firewall) SetInterfaces(ctx context.Context, external string, internal []string) error {
	if err := checkLinks(external, internal); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.l
	l.ext, l.internal = external, slices.Clone(internal)
	return f.relayout(ctx, l)
}

// relayout rewrites the fixed chains whose rules change with layout l, in
// one transaction per family. The caller holds f.mu.
func (f *Firewall) relayout(ctx context.Context, l layout) error {
	if f.closed {
		return errClosed
	}
	s := &script{}
	for _, c := range chainDefs() {
		if c.role != roleFixed {
			continue
		}
		specs := l.fixedSpecs(c)
		if slices.Equal(specs, f.m.fixed[c]) {
			continue
		}
		s.add(c.table, "-F "+c.name)
		for _, spec := range specs {
			s.add(c.table, "-A "+c.name+" "+spec)
		}
	}
	f.gen++
	if err := f.runScript(ctx, s); err != nil {
		return err
	}
	f.l = l
	f.m.setFixed(l)
	return nil
}

// Release removes everything, as Close: iptables rules have no timeouts
// that would end them.
func (f *Firewall) Release() error { return f.Close() }

// Close implements gateway.Firewall: it deletes the jumps and the chains
// the kernel shows, and, with iptables-nft, the nftables base chains and
// tables that iptables-nft made for them (see nftFootprint), and nothing
// else.
func (f *Firewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	d, err := f.dump(ctx)
	if err != nil {
		return err
	}
	f.gen++
	if err := f.runScript(ctx, closeScript(d)); err != nil {
		return err
	}
	if f.nft != nil {
		deleted, err := f.nft.clean()
		if err != nil {
			return err
		}
		if len(deleted) > 0 {
			f.log.Debug("iptfw: deleted what iptables-nft made for the backend", "deleted", fmt.Sprint(deleted))
		}
	}
	f.closed = true
	if f.flows != nil {
		f.flows.Close()
	}
	return nil
}
