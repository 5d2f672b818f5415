package nftfw

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/portlease/portlease/gateway"
)

// List returns the IPv4 mappings (Elements) and the pinholes
// (PinholeElements) the kernel holds, in no particular order.
func (f *Firewall) List(ctx context.Context) ([]gateway.Mapping, error) {
	ms, err := f.Elements(ctx)
	if err != nil {
		return nil, err
	}
	pins, err := f.PinholeElements(ctx)
	if err != nil {
		return nil, err
	}
	return append(ms, pins...), nil
}

// PinholeElements reads the pinhole sets back from the kernel and returns
// the pinholes they hold, in no particular order, as Elements does for the
// IPv4 mappings: an element of pinhole6 is a pinhole without filters, one
// of filtered6 a pinhole with the filters the peers6 sets hold for it,
// each as the prefix and port of its set's shape (a filter of a length
// between shapes shows as the prefixes that make it up), sorted. The
// Lifetime is what is left of the endpoint element's kernel timeout minus
// the grace (at least a millisecond), or zero when it has none.
func (f *Firewall) PinholeElements(ctx context.Context) ([]gateway.Mapping, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	d, err := dialNF(f.netns)
	if err != nil {
		return nil, fmt.Errorf("nftfw: %w", err)
	}
	ms, err := f.readPinholes(d)
	if err = errors.Join(err, d.close()); err != nil {
		return nil, fmt.Errorf("nftfw: %w", err)
	}
	return ms, nil
}

// readPinholes reads the pinholes of PinholeElements over d.
func (f *Firewall) readPinholes(d *nfSocket) ([]gateway.Mapping, error) {
	var ms []gateway.Mapping
	byKey := make(map[[endpoint6KeyLen]byte]int)
	for _, s := range []string{pinhole6Name, filtered6Name} {
		first := len(ms)
		restart := func() { ms = ms[:first] }
		err := d.elements(f.rs.table.Name, s, restart, func(e dumpedElem) error {
			if len(e.key) != endpoint6KeyLen {
				return fmt.Errorf("%s element of %d bytes, want %d", s, len(e.key), endpoint6KeyLen)
			}
			m := pinholeOfKey(e.key)
			if e.timeout > 0 {
				m.Lifetime = max(e.expires-f.grace, time.Millisecond)
			}
			if s == filtered6Name {
				byKey[[endpoint6KeyLen]byte(e.key)] = len(ms)
			}
			ms = append(ms, m)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read set %s: %w", s, err)
		}
	}
	if len(byKey) == 0 {
		return ms, nil
	}
	for _, sh := range f.rs.peers6 {
		var got []int // positions whose filters this dump extended
		restart := func() {
			for _, i := range got {
				ms[i].Filters = ms[i].Filters[:len(ms[i].Filters)-1]
			}
			got = got[:0]
		}
		err := d.elements(f.rs.table.Name, sh.set.Name, restart, func(e dumpedElem) error {
			if len(e.key) != sh.keyLen() {
				return fmt.Errorf("%s element of %d bytes, want %d", sh.set.Name, len(e.key), sh.keyLen())
			}
			i, ok := byKey[[endpoint6KeyLen]byte(e.key)]
			if !ok {
				return nil // of no filtered pinhole: Reconcile removes it
			}
			ms[i].Filters = append(ms[i].Filters, sh.filterOf(e.key[endpoint6KeyLen:]))
			got = append(got, i)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read set %s: %w", sh.set.Name, err)
		}
	}
	for i := range ms {
		slices.SortFunc(ms[i].Filters, func(a, b gateway.Filter) int {
			if c := a.Remote.Addr().Compare(b.Remote.Addr()); c != 0 {
				return c
			}
			if c := a.Remote.Bits() - b.Remote.Bits(); c != 0 {
				return c
			}
			return int(a.Port) - int(b.Port)
		})
	}
	return ms, nil
}

// filterOf returns the filter of the remote part of an IPv6 shape's key
// (the remote prefix's address, then the port, as putKey writes them).
func (sh peerShape) filterOf(remote []byte) gateway.Filter {
	addr := netip.IPv6Unspecified()
	if sh.bits > 0 {
		addr = netip.AddrFrom16([16]byte(remote[:16]))
		remote = remote[16:]
	}
	var port uint16
	if sh.port {
		port = uint16(remote[0])<<8 | uint16(remote[1])
	}
	return gateway.Filter{Remote: netip.PrefixFrom(addr, sh.bits), Port: port}
}
