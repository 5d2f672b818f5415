package iptfw

import (
	"context"
	"time"
)

// Watch implements gateway.Firewall by polling: iptables-legacy has no
// change events (x_tables tables are replaced whole, with no notification)
// and iptables-nft's would not tell the legacy variant's, so every
// PollInterval (5 s by default) it reads the chains back with
// iptables-save and ip6tables-save and compares what it finds of its
// chains, rules and jumps with what it wrote. The comparison is of an
// order-independent digest (a count and a sum of hashes), kept as rules
// are written, so a poll costs the two programs' runs and a pass over
// their output, nothing per rule kept: about 1 MB read for 10,000
// mappings. A change made while a poll runs makes that poll inconclusive,
// not a report.
func (f *Firewall) Watch(ctx context.Context, changed, opened func()) error {
	first := true
	for {
		same, ok, err := f.check(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			f.log.Warn("iptfw: reading the chains back failed", "err", err)
		default:
			if first {
				first = false
				opened()
			}
			if ok && !same {
				f.log.Info("iptfw: chains changed by another program")
				changed()
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(f.poll):
		}
	}
}

// check reads the chains back and reports whether they hold what the
// Firewall wrote; ok is false when the Firewall wrote something meanwhile.
func (f *Firewall) check(ctx context.Context) (same, ok bool, err error) {
	f.mu.Lock()
	gen, closed := f.gen, f.closed
	f.mu.Unlock()
	if closed {
		return true, false, nil
	}
	var got digest
	for _, v6 := range []bool{false, true} {
		out, err := f.run.save(ctx, v6)
		if err != nil {
			return false, false, err
		}
		d := digestOf(out, v6)
		got.n += d.n
		got.sum += d.sum
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen != gen {
		return false, false, nil
	}
	return got == f.m.digest, true, nil
}
