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
	// DeleteExternal, DeletePinhole: gateway.ErrNotFound when there is
	// no such lease.
	DeleteExternal(ctx context.Context, p gateway.Protocol, port uint16) (gateway.Lease, error)
	DeletePinhole(ctx context.Context, id uint16) (gateway.Lease, error)
	// DeleteClient removes every lease of protocol p of an internal
	// address, of every origin when origins is empty.
	DeleteClient(ctx context.Context, p gateway.Protocol, client netip.Addr, origins ...gateway.Origin) []gateway.Lease
	// Policy gives the per-host limit, MaxPerHost.
	Policy() gateway.Policy
	ExternalAddress() netip.Addr
	Counters() gateway.Counters
}

var _ Table = (*gateway.Table)(nil)
