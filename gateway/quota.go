package gateway

import (
	"fmt"
	"net/netip"
)

// Fair shares: one LAN host must not take every port, nor the table grow
// without bound. Both counts are at hand without a walk: the leases of an
// internal address are its clientLeases' two maps, and those of the table
// are its two indexes, so a check costs O(1) under the lock.

// count returns the number of leases of the client: mappings and pinholes
// of every protocol and origin.
func (c *clientLeases) count() int { return len(c.byPort) + len(c.upnp) }

// leaseCount returns the number of leases of the table, pinholes included.
// t.mu must be held.
func (t *Table) leaseCount() int { return len(t.byExternal) + len(t.pinholes.byID) }

// checkQuota reports whether a new lease for internal address addr stays
// within Policy.MaxPerHost (else ErrHostQuota) and Policy.MaxLeases (else
// ErrOutOfResources). Renewals are not asked: they never add a lease.
// Leases beyond a limit that a reload lowered, or that came back from the
// state file, stay; only new ones are refused. t.mu must be held.
func (t *Table) checkQuota(addr netip.Addr) error {
	if max := t.policy.MaxPerHost; max > 0 {
		if c := t.byClient[addr]; c != nil && c.count() >= max {
			return fmt.Errorf("%w: %d", ErrHostQuota, max)
		}
	}
	if max := t.policy.MaxLeases; max > 0 && t.leaseCount() >= max {
		return fmt.Errorf("%w: the table holds its maximum of %d leases", ErrOutOfResources, max)
	}
	return nil
}
