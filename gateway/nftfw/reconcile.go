package nftfw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/conntrack"
)

// timeoutSlack is how far an element's remaining kernel timeout may be from
// the one wanted and still be adopted as it is.
const timeoutSlack = time.Second

// elementBytes bounds the bytes an element takes in a transaction, with its
// share of the message that carries it.
const elementBytes = 64

// Reconcile makes the kernel hold exactly the elements that the mappings in
// want need, the elements Apply would have made for them: want lists the
// lease table's mappings, oldest first (the oldest mapping of an internal
// endpoint owns its outbound element, as with Apply).
//
// It reads both maps from the kernel (one dump each) and, in as few
// transactions as the send buffer allows, adopts the elements that match
// (those whose kernel timeout is more than a second from the one wanted are
// set again, by a delete and an add in one transaction), adds those missing
// and deletes the others. When the table, one of its sets or chains, or a
// rule is missing (someone flushed the ruleset), it installs the table
// again first, with the external address last given to SetExternalAddress.
// Afterwards the Firewall's State (gateway/fwplan) agrees with the kernel,
// and Apply works on from there.
//
// The counts are of mappings: Adopted, Added, and Removed (held by the
// kernel but not wanted, or leading elsewhere; such a mapping is also
// counted as added). The mappings must be valid for Apply. A Reconcile that
// fails may leave the kernel partly reconciled: call it again.
func (f *Firewall) Reconcile(ctx context.Context, want []gateway.Mapping) (gateway.Reconciled, error) {
	if err := ctx.Err(); err != nil {
		return gateway.Reconciled{}, err
	}
	if err := checkAdd(want); err != nil {
		return gateway.Reconciled{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return gateway.Reconciled{}, ErrClosed
	}
	start := time.Now()
	var r gateway.Reconciled
	var err error
	// ENOENT: an element to delete timed out after the dump. Once more,
	// from a new dump.
	for attempt := 0; attempt < 2; attempt++ {
		r, err = f.reconcile(start, want)
		if !errors.Is(err, unix.ENOENT) {
			break
		}
	}
	if err != nil {
		return r, fmt.Errorf("nftfw: reconcile %d mappings: %w", len(want), err)
	}
	f.log.Info("nftables mappings reconciled", "adopted", r.Adopted, "added", r.Added,
		"removed", r.Removed, "took", time.Since(start))
	return r, nil
}

// reconcile is one try of Reconcile, called at start. The caller holds
// f.mu.
func (f *Firewall) reconcile(start time.Time, want []gateway.Mapping) (gateway.Reconciled, error) {
	if err := f.repairTable(); err != nil {
		return gateway.Reconciled{}, err
	}

	// What Apply would have made of want, from an empty kernel: the
	// planner's wanted State and the Plan that adds all of it.
	st, p, err := f.st.Wanted(time.Now(), want)
	if err != nil {
		return gateway.Reconciled{}, err
	}
	w := newWanted(p)
	in, out := newInMatch(w, start), newOutMatch(w, start)
	if err := f.dumpMaps(in, out); err != nil {
		return gateway.Reconciled{}, err
	}
	d := diff{
		replaced: plan{delIn: in.delRep, addIn: in.addRep, delOut: out.delRep, addOut: out.addRep},
		orphans:  plan{delIn: in.orphans, delOut: out.orphans},
		missing:  w.missing(in.have, out.have),
	}
	r := in.r
	r.Added += len(d.missing.addIn)

	// The State is what the kernel holds once the transactions are
	// committed, even when one of them fails: Apply copes with a State
	// that claims elements the kernel lacks, and the caller reconciles
	// again.
	f.st = st
	if err := f.commitDiff(&d); err != nil {
		return r, err
	}
	// The mappings and pinholes the kernel held and stops holding: their
	// flows go too, as after Apply.
	pr, closed, err := f.reconcilePeers(start, p)
	r.Adopted, r.Added, r.Removed = r.Adopted+pr.Adopted, r.Added+pr.Added, r.Removed+pr.Removed
	if !f.plan.KeepFlows {
		f.flows.Add(conntrack.Changes{Ended: in.ended, Closed: closed})
	}
	return r, err
}

// dumpMaps reads the inbound map into in and the outbound one into out, at
// the same time, each over a netlink socket of its own. The caller holds
// f.mu.
func (f *Firewall) dumpMaps(in *inMatch, out *outMatch) error {
	var outErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		outErr = f.dumpMap(outboundName, out.reset, out.match)
	}()
	err := f.dumpMap(inboundName, in.reset, in.match)
	<-done
	return errors.Join(err, outErr)
}

// dumpMap calls match for each element of the map name, over a socket
// opened for it (see nfSocket.elements for restart).
func (f *Firewall) dumpMap(name string, restart func(), match func(dumpedElem) error) error {
	d, err := dialNF(f.netns)
	if err == nil {
		err = d.elements(f.rs.table.Name, name, restart, match)
		err = errors.Join(err, d.close())
	}
	if err != nil {
		return fmt.Errorf("read map %s: %w", name, err)
	}
	return nil
}

// timeoutMatches reports whether the kernel element e, read elapsed after
// Reconcile was called, has the kernel timeout want (zero for none) that
// starts at that call, give or take timeoutSlack: what is left of it is
// want less elapsed. (A dump of 100,000 elements takes long enough to
// matter.)
func timeoutMatches(e dumpedElem, want, elapsed time.Duration) bool {
	if want == 0 || e.timeout == 0 {
		return want == e.timeout
	}
	d := e.expires - (want - elapsed)
	return -timeoutSlack <= d && d <= timeoutSlack
}

// diff is what Reconcile changes, in the order it is sent: elements
// replaced (deleted and added in the same transaction), orphans deleted,
// missing elements added.
type diff struct {
	replaced, orphans, missing plan
}

// replace records the replacement of the element of key by elem.
func replace(del, add *[]nftables.SetElement, key []byte, elem nftables.SetElement) {
	*del = append(*del, nftables.SetElement{Key: key})
	*add = append(*add, elem)
}

// commitDiff sends d in transactions that fit the send buffer. A
// replacement never straddles two transactions. The caller holds f.mu.
func (f *Firewall) commitDiff(d *diff) error {
	if len(d.replaced.delIn)+len(d.replaced.delOut)+len(d.orphans.delIn)+len(d.orphans.delOut)+
		len(d.missing.addIn)+len(d.missing.addOut) == 0 {
		return nil
	}
	// A socket of its own, known to Watch, that sends the transactions
	// encoded by commitElems.
	s, err := dialNF(f.netns, setSendBuffer, f.own.record, capAcks)
	if err != nil {
		return err
	}
	defer s.close()
	budget := max(f.own.sendBuffer(sendBuffer)/2/elementBytes, 2*maxElemsPerMessage)
	var tx plan
	size := 0
	flush := func() error {
		if size == 0 {
			return nil
		}
		err := s.commitElems(f.rs.table.Name, &tx)
		tx, size = plan{}, 0
		return err
	}
	put := func(dst *[]nftables.SetElement, elems []nftables.SetElement, per int) error {
		for len(elems) > 0 {
			if size+per > budget {
				if err := flush(); err != nil {
					return err
				}
			}
			n := min(len(elems), (budget-size)/per)
			if len(*dst) == 0 {
				*dst = elems[:n:n] // no copy; an append copies
			} else {
				*dst = append(*dst, elems[:n]...)
			}
			size += n * per
			elems = elems[n:]
		}
		return nil
	}
	// Replacements: a deletion and an addition each, taken in step so
	// that both halves land in the same transaction.
	for _, r := range []struct {
		del, add       []nftables.SetElement
		dstDel, dstAdd *[]nftables.SetElement
	}{
		{d.replaced.delIn, d.replaced.addIn, &tx.delIn, &tx.addIn},
		{d.replaced.delOut, d.replaced.addOut, &tx.delOut, &tx.addOut},
	} {
		for i := range r.del {
			if size+2 > budget {
				if err := flush(); err != nil {
					return err
				}
			}
			*r.dstDel = append(*r.dstDel, r.del[i])
			*r.dstAdd = append(*r.dstAdd, r.add[i])
			size += 2
		}
	}
	for _, s := range []struct {
		dst   *[]nftables.SetElement
		elems []nftables.SetElement
	}{
		{&tx.delIn, d.orphans.delIn},
		{&tx.delOut, d.orphans.delOut},
		{&tx.addIn, d.missing.addIn},
		{&tx.addOut, d.missing.addOut},
	} {
		if err := put(s.dst, s.elems, 1); err != nil {
			return err
		}
	}
	return flush()
}

// capAcks makes the kernel's errors carry the header of the message that
// failed rather than the whole of it (NETLINK_CAP_ACK): a transaction's
// messages are large.
func capAcks(c *netlink.Conn) error { return c.SetOption(netlink.CapAcknowledge, true) }

// repairTable installs the table again when the kernel lacks part of it,
// and the external address when the kernel's differs from the one last
// set. The caller holds f.mu.
func (f *Firewall) repairTable() error {
	st, err := f.rs.readTable(f.conn, true)
	if err != nil {
		return err
	}
	what := f.rs.missing(st)
	setExt := f.extSet && what != ""
	if f.extSet && what == "" {
		ok, err := f.hasExternal(f.ext)
		if err != nil {
			return err
		}
		setExt = !ok
	}
	if what == "" && !setExt {
		return nil
	}
	if what != "" {
		if err := f.rs.install(f.conn, st); err != nil {
			return errors.Join(err, f.resetConn())
		}
	}
	if setExt {
		if err := f.rs.setExternal(f.conn, f.ext); err != nil {
			return errors.Join(err, f.resetConn())
		}
	}
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("install table inet %s: %w", f.rs.table.Name, err)
	}
	if what != "" {
		f.log.Warn("nftables table repaired", "table", f.rs.table.Name, "missing", what)
	} else {
		f.log.Warn("nftables external address repaired", "table", f.rs.table.Name, "addr", f.ext)
	}
	return nil
}

// hasExternal reports whether the kernel's extaddr and snat sets hold
// exactly addr (nothing when it is not valid).
func (f *Firewall) hasExternal(addr netip.Addr) (bool, error) {
	ext, err := f.conn.GetSetElements(f.rs.extaddr)
	if err != nil {
		return false, fmt.Errorf("read set %s: %w", extaddrName, err)
	}
	snat, err := f.conn.GetSetElements(f.rs.snat)
	if err != nil {
		return false, fmt.Errorf("read map %s: %w", snatName, err)
	}
	if !addr.IsValid() {
		return len(ext) == 0 && len(snat) == 0, nil
	}
	a := addr.As4()
	return len(ext) == 1 && bytes.Equal(ext[0].Key, a[:]) &&
		len(snat) == 1 && bytes.Equal(snat[0].Key, ifnameBytes(f.rs.ext)) && bytes.Equal(snat[0].Val, a[:]), nil
}
