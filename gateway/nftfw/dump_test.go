package nftfw

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/benchmaps"
)

// TestDumpAgreesWithNftables dumps both maps, with more elements than one
// chunk of a dump holds, with nfSocket and with google/nftables, and
// checks that both read the same elements.
func TestDumpAgreesWithNftables(t *testing.T) {
	ns := newNS(t)
	f := newFirewall(t, ns, Config{})
	const n = 3000
	want := make([]gateway.Mapping, n)
	for i := range want {
		want[i] = benchmaps.Mapping(i * 31)
		if i%3 == 0 {
			want[i].Lifetime = 0 // no kernel timeout
		}
	}
	if _, err := f.Reconcile(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	d, err := dialNF(ns.fd)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	for _, m := range []struct {
		name string
		set  *nftables.Set
	}{{inboundName, f.rs.inbound}, {outboundName, f.rs.outbound}} {
		name := m.name
		// The same dumper reads each map twice: a dump leaves it ready
		// for the next.
		for range 2 {
			var got []elemCopy
			restarts := 0
			err := d.elements(DefaultTable, name, func() { restarts++; got = nil }, func(e dumpedElem) error {
				got = append(got, elemCopy{string(e.key), string(e.val), e.flags, e.timeout, e.expires})
				return nil
			})
			if err != nil {
				t.Fatalf("dump %s: %v", name, err)
			}
			f.mu.Lock()
			ref, err := f.conn.GetSetElements(m.set)
			f.mu.Unlock()
			if err != nil {
				t.Fatalf("GetSetElements %s: %v", name, err)
			}
			if len(got) != len(ref) || len(got) == 0 {
				t.Fatalf("%s: dumped %d elements, google/nftables %d", name, len(got), len(ref))
			}
			byKey := func(a, b elemCopy) int { return strings.Compare(a.key, b.key) }
			slices.SortFunc(got, byKey)
			slices.SortFunc(ref, func(a, b nftables.SetElement) int { return strings.Compare(string(a.Key), string(b.Key)) })
			for i, e := range got {
				r := ref[i]
				// The two dumps are moments apart: expirations may
				// differ by that much.
				if e.key != string(r.Key) || e.val != string(r.Val) || e.timeout != r.Timeout ||
					(e.expires-r.Expires).Abs() > time.Second || (e.expires == 0) != (r.Expires == 0) {
					t.Fatalf("%s element %d: dumped %+v, google/nftables %+v", name, i, e, r)
				}
			}
		}
	}

	// A map that is not there: ENOENT, and the dumper works on.
	err = d.elements(DefaultTable, "nosuchmap", func() {}, func(dumpedElem) error { return nil })
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("dump of a missing map = %v; want ENOENT", err)
	}
	// An error of the callback stops nothing but the callback: the dump
	// is read to its end and the error returned.
	stop := errors.New("stop")
	calls := 0
	err = d.elements(DefaultTable, inboundName, func() {}, func(dumpedElem) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("dump with a failing callback = %v after %d calls; want stop after 1", err, calls)
	}
	count := 0
	if err := d.elements(DefaultTable, inboundName, func() {}, func(dumpedElem) error { count++; return nil }); err != nil || count != n {
		t.Errorf("dump after a failed one = %v, %d elements; want nil, %d", err, count, n)
	}
}
