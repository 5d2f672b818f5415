package nftfw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
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
// Afterwards the Firewall's index agrees with the kernel, and Apply works
// on from there.
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
		r, err = f.reconcile(want)
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

// reconcile is one try of Reconcile. The caller holds f.mu.
func (f *Firewall) reconcile(want []gateway.Mapping) (gateway.Reconciled, error) {
	if err := f.repairTable(); err != nil {
		return gateway.Reconciled{}, err
	}
	ins, outs, err := f.dumpMaps()
	if err != nil {
		return gateway.Reconciled{}, err
	}

	// What Apply would have made of want, from an empty index.
	now := time.Now()
	x := newIndex(now)
	p := x.plan(now, f.grace, want, nil, gone{})
	if len(p.addIn) != len(p.keys.keys) || len(p.addOut) != len(p.eps.keys) {
		return gateway.Reconciled{}, errors.New("plan of the wanted mappings is not one addition each")
	}

	var d diff
	var r gateway.Reconciled
	// ended are the mappings the kernel held and stops holding: their
	// flows go too, as after Apply.
	var ended []gateway.Mapping
	end := func(e nftables.SetElement) {
		if m, err := decodeInbound(e.Key, e.Val); err == nil {
			ended = append(ended, m)
		}
	}
	haveIn := make([]bool, len(p.addIn))
	for _, e := range ins {
		k, err := decodeInKey(e.Key)
		i := p.keys.find(k)
		switch {
		case err != nil || i < 0:
			d.orphans.delIn = append(d.orphans.delIn, nftables.SetElement{Key: e.Key})
			r.Removed++
			end(e)
			continue
		case !bytes.Equal(e.Val, p.addIn[i].Val):
			r.Removed++
			r.Added++
			end(e)
			replace(&d.replaced.delIn, &d.replaced.addIn, e.Key, p.addIn[i])
		case !timeoutMatches(e, p.addIn[i].Timeout):
			r.Adopted++
			replace(&d.replaced.delIn, &d.replaced.addIn, e.Key, p.addIn[i])
		default:
			r.Adopted++
		}
		haveIn[i] = true
	}
	haveOut := make([]bool, len(p.addOut))
	for _, e := range outs {
		ep, err := decodeOutboundKey(e.Key)
		j := p.eps.find(ep)
		switch {
		case err != nil || j < 0:
			d.orphans.delOut = append(d.orphans.delOut, nftables.SetElement{Key: e.Key})
			continue
		case !bytes.Equal(e.Val, p.addOut[j].Val) || !timeoutMatches(e, p.addOut[j].Timeout):
			replace(&d.replaced.delOut, &d.replaced.addOut, e.Key, p.addOut[j])
		}
		haveOut[j] = true
	}
	for i, have := range haveIn {
		if !have {
			d.missing.addIn = append(d.missing.addIn, p.addIn[i])
			r.Added++
		}
	}
	for j, have := range haveOut {
		if !have {
			d.missing.addOut = append(d.missing.addOut, p.addOut[j])
		}
	}

	// The index is what the kernel holds once the transactions are
	// committed, even when one of them fails: Apply copes with an index
	// that claims elements the kernel lacks, and the caller reconciles
	// again.
	x.adopt(p)
	f.idx = x
	if err := f.commitDiff(&d); err != nil {
		return r, err
	}
	f.forgetFlows(conntrack.Changes{Ended: ended})
	return r, nil
}

// dumpMaps reads the inbound and the outbound map, at the same time: the
// outbound one over a socket of its own. The caller holds f.mu.
func (f *Firewall) dumpMaps() (ins, outs []nftables.SetElement, err error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(widenDumps)}
	if f.netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(f.netns))
	}
	// Without AsLasting, New opens nothing and cannot fail.
	other, _ := nftables.New(opts...)
	var outErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		outs, outErr = other.GetSetElements(f.rs.outbound)
	}()
	ins, err = f.conn.GetSetElements(f.rs.inbound)
	<-done
	if err != nil {
		return nil, nil, fmt.Errorf("read map %s: %w", inboundName, err)
	}
	if outErr != nil {
		return nil, nil, fmt.Errorf("read map %s: %w", outboundName, outErr)
	}
	return ins, outs, nil
}

// decodeInKey turns the key of an element of the inbound map back into a
// mapping's key.
func decodeInKey(key []byte) (inKey, error) {
	m, err := decodeInbound(key, make([]byte, inboundDataLen))
	return keyOf(m), err
}

// timeoutMatches reports whether the kernel element e has the kernel
// timeout want (zero for none), give or take timeoutSlack.
func timeoutMatches(e nftables.SetElement, want time.Duration) bool {
	if want == 0 || e.Timeout == 0 {
		return want == e.Timeout
	}
	d := e.Expires - want
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
	budget := max(f.own.sendBuffer(sendBuffer)/2/elementBytes, 2*maxElemsPerMessage)
	var tx plan
	size := 0
	flush := func() error {
		if size == 0 {
			return nil
		}
		err := f.commit(&tx)
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
			*dst = append(*dst, elems[:n]...)
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
