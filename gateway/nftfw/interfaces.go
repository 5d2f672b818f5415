package nftfw

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// SetInterfaces makes external the WAN link and internal the LAN links
// (Config.ExternalInterface and Config.InternalInterfaces), names checked
// as New checks them. In one transaction it replaces the rules of every
// chain with the rules for the new names and moves the snat map's element
// (keyed by the external interface's name) to the new external interface,
// with the address last given to SetExternalAddress. The inbound and
// outbound maps and their elements are left as they are, so that mappings
// keep forwarding without a gap: they are reached through the new links
// from the commit on. What installs the table later (Reconcile repairing a
// flushed table) uses the new names. The caller gives the new external
// interface's address to SetExternalAddress once it knows it.
//
// A SetInterfaces that fails changes nothing.
func (f *Firewall) SetInterfaces(ctx context.Context, external string, internal []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkInterfaces(external, internal); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	rs := f.rs
	oldExt, oldInternal := rs.ext, rs.internal
	if external == oldExt && slices.Equal(internal, oldInternal) {
		return nil
	}
	rs.ext, rs.internal = external, slices.Clone(internal)
	fail := func(err error) error {
		rs.ext, rs.internal = oldExt, oldInternal
		return fmt.Errorf("nftfw: set interfaces %s %v: %w", external, internal, err)
	}
	have, err := rs.readTable(f.conn, false)
	if err != nil {
		return fail(err)
	}
	if err := f.queueInterfaces(have); err != nil {
		// Part of the transaction is queued: drop it with the connection.
		return fail(errors.Join(err, f.resetConn()))
	}
	if err := f.conn.Flush(); err != nil {
		return fail(err)
	}
	f.log.Info("nftables interfaces changed", "table", rs.table.Name,
		"external", external, "was", oldExt, "internal", internal)
	return nil
}

// queueInterfaces queues the transaction of SetInterfaces, given what the
// kernel holds of the table: the table made what the ruleset needs (its
// chains flushed and their rules added for the new names; see install),
// and the snat map's element moved to the new external interface. When
// install makes a set anew (someone flushed the ruleset), the external
// address is put back whole. The caller holds f.mu.
func (f *Firewall) queueInterfaces(have *tableState) error {
	rs := f.rs
	if err := rs.install(f.conn, have); err != nil {
		return err
	}
	if !f.extSet {
		return nil
	}
	for _, s := range rs.namedSets() {
		if old, ok := have.sets[s.Name]; !ok || !sameSet(old, s) {
			return rs.setExternal(f.conn, f.ext)
		}
	}
	return rs.setSNAT(f.conn, f.ext)
}
