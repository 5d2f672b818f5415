package control

import (
	"context"
	"net/netip"

	"github.com/portlease/portlease/gateway"
)

// Table is what the control API needs of the lease core, *gateway.Table.
type Table interface {
	// Leases returns every lease, pinholes included, in no order.
	Leases() []gateway.Lease
	LookupExternal(p gateway.Protocol, port uint16) (gateway.Lease, bool)
	Pinhole(id uint16) (gateway.Lease, bool)
	// DeleteByOperator, DeletePinholeByOperator: gateway.ErrNotFound
	// when there is no such lease. The table records the operator as who
	// deleted (gateway.ReasonOperator).
	DeleteByOperator(ctx context.Context, p gateway.Protocol, port uint16) (gateway.Lease, error)
	DeletePinholeByOperator(ctx context.Context, id uint16) (gateway.Lease, error)
	// DeleteHost removes every lease of an internal address, of every
	// protocol and origin, pinholes included.
	DeleteHost(ctx context.Context, addr netip.Addr) []gateway.Lease
	// Policy gives the per-host limit, MaxPerHost.
	Policy() gateway.Policy
	ExternalAddress() netip.Addr
	Counters() gateway.Counters
}

var _ Table = (*gateway.Table)(nil)
