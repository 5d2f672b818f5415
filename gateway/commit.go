package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// change is one step of the lease table that the kernel must follow: a
// mapping removed, added, or both (a replacement).
type change struct {
	remove *Mapping
	add    *Mapping
	done   chan error // buffered, capacity 1
}

// mappingKey identifies a mapping in the kernel: the external side.
type mappingKey struct {
	proto Protocol
	port  uint16
}

func keyOf(m Mapping) mappingKey { return mappingKey{m.Protocol, m.ExternalPort} }

// committer applies changes to the firewall in batches (group commit). The
// table enqueues changes in its own order while it holds its lock; whoever
// then waits first while no batch is running becomes the leader and applies
// everything queued in one transaction. A lone request is applied at once;
// requests that arrive meanwhile share the next netlink transaction.
//
// A leader applies one batch, the one with its own change, and then hands
// the lead to the waiter whose change is first in the queue: under a
// steady load a request thus waits for at most the transaction in progress
// and its own, never for a leader's run of batches.
type committer struct {
	fw Firewall

	mu      sync.Mutex
	queue   []*change
	spare   []*change
	leading bool
}

// errLead, received on a change's done channel, hands its waiter the lead.
// wait never returns it.
var errLead = errors.New("gateway: lead the next batch")

func (c *committer) enqueue(ch *change) {
	c.mu.Lock()
	c.queue = append(c.queue, ch)
	c.mu.Unlock()
}

// wait returns once ch has been applied, applying it (and whatever else is
// queued) itself when no other caller is doing so or when handed the lead.
func (c *committer) wait(ctx context.Context, ch *change) error {
	c.mu.Lock()
	if c.leading {
		c.mu.Unlock()
		if err := <-ch.done; err != errLead {
			return err
		}
		c.mu.Lock() // the lead is ours; leading stays true
	}
	c.leading = true
	batch := c.queue
	c.queue = c.spare[:0]
	c.mu.Unlock()
	if len(batch) > 0 {
		c.apply(ctx, batch)
	}
	clear(batch)
	c.mu.Lock()
	c.spare = batch
	if len(c.queue) > 0 {
		// Its waiter is blocked on done, or soon will be; done is empty
		// until the change is applied.
		c.queue[0].done <- errLead
	} else {
		c.leading = false
	}
	c.mu.Unlock()
	return <-ch.done
}

// apply commits a batch in one transaction. Changes are folded in order, so
// that the kernel ends up with each key's last state. If the transaction
// fails, each change is retried alone so that one bad change fails only its
// own request.
func (c *committer) apply(ctx context.Context, batch []*change) {
	if c.fw == nil {
		for _, ch := range batch {
			ch.done <- nil
		}
		return
	}
	add, remove := fold(batch)
	err := c.fw.Apply(ctx, add, remove)
	if err == nil || len(batch) == 1 {
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrFirewall, err)
		}
		for _, ch := range batch {
			ch.done <- err
		}
		return
	}
	for _, ch := range batch {
		add, remove := fold([]*change{ch})
		if err := c.fw.Apply(ctx, add, remove); err != nil {
			ch.done <- fmt.Errorf("%w: %w", ErrFirewall, err)
			continue
		}
		ch.done <- nil
	}
}

// fold reduces a sequence of changes to what the kernel must do: for each
// external key touched, remove what the kernel held before the batch (the
// first change of a key says so: the table only adds a key the kernel does
// not hold, or replaces one it does) and add the key's final mapping, if any.
func fold(batch []*change) (add, remove []Mapping) {
	type state struct {
		before *Mapping // held by the kernel before the batch
		after  *Mapping // held once the batch is applied
	}
	if len(batch) == 1 {
		ch := batch[0]
		if ch.remove != nil {
			remove = append(remove, *ch.remove)
		}
		if ch.add != nil {
			add = append(add, *ch.add)
		}
		return add, remove
	}
	states := make(map[mappingKey]*state, len(batch))
	order := make([]mappingKey, 0, len(batch))
	for _, ch := range batch {
		if ch.remove != nil {
			k := keyOf(*ch.remove)
			st, seen := states[k]
			if !seen {
				st = &state{before: ch.remove}
				states[k] = st
				order = append(order, k)
			}
			st.after = nil
		}
		if ch.add != nil {
			k := keyOf(*ch.add)
			st, seen := states[k]
			if !seen {
				st = &state{}
				states[k] = st
				order = append(order, k)
			}
			st.after = ch.add
		}
	}
	for _, k := range order {
		st := states[k]
		if st.before != nil {
			remove = append(remove, *st.before)
		}
		if st.after != nil {
			add = append(add, *st.after)
		}
	}
	return add, remove
}
