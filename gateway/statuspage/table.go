package statuspage

import (
	"context"
	"net/netip"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Table is what the page needs of the lease core, *gateway.Table: the
// leases and what the table shows of itself (gateway/observe.go), word of
// every change, and the deletions the admin actions make.
type Table interface {
	Leases() []gateway.Lease
	ExternalAddress() netip.Addr
	// Epoch is the seconds since EpochStart (RFC 6886 §3.6, RFC 6887
	// §8.5).
	Epoch() uint32
	EpochStart() time.Time
	Policy() gateway.Policy
	// Events returns the events after seq after and the newest Seq.
	Events(after uint64) (events []gateway.Event, newest uint64)
	AddressHistory() []gateway.AddressChange
	Usage() []gateway.HostUsage
	// Watch calls fn, which must not block, after every change of the
	// leases.
	Watch(fn func()) (stop func())

	// The deletions record the operator as who deleted
	// (gateway.ReasonOperator); DeleteHost removes every lease of the
	// address, of every protocol and origin, pinholes included.
	DeleteByOperator(ctx context.Context, p gateway.Protocol, port uint16) (gateway.Lease, error)
	DeletePinholeByOperator(ctx context.Context, id uint16) (gateway.Lease, error)
	DeleteHost(ctx context.Context, addr netip.Addr) []gateway.Lease
}

var _ Table = (*gateway.Table)(nil)
