// Package iptfw is the iptables backend of the lease table: the mappings of
// gateway/fwplan's plans as rules in chains of its own, written with
// iptables-restore --noflush, one process per batch, for iptables-legacy
// and iptables-nft alike.
//
// THIS IS A SKELETON (issue 13): the API cmd/portleased builds on. Every
// method but New fails until the backend is written.
package iptfw

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"

	"github.com/portlease/portlease/gateway"
)

// Variant names the iptables programs a Firewall runs.
type Variant string

// The variants: the system's own iptables-restore (its alternatives
// decide), iptables-legacy-restore (x_tables) and iptables-nft-restore
// (x_tables rules over nf_tables).
const (
	System Variant = ""
	Legacy Variant = "legacy"
	NFT    Variant = "nft"
)

// Config configures a Firewall. Only ExternalInterface is required.
type Config struct {
	// Variant is the iptables programs to run.
	Variant Variant
	// ExternalInterface is the WAN link, such as "wan0".
	ExternalInterface string
	// InternalInterfaces are the LAN links whose hosts may reach mappings
	// through the external address (hairpinning). Empty means every link
	// but ExternalInterface.
	InternalInterfaces []string
	// NetNS is a file descriptor of the network namespace to work in; 0
	// means the caller's own. It must stay open while the Firewall is in
	// use.
	NetNS int
	// Logger receives the backend's logs; nil discards them.
	Logger *slog.Logger
	// KeepFlows leaves the conntrack entries of removed and moved mappings
	// alone.
	KeepFlows bool
}

// Firewall is the iptables backend. It is safe for concurrent use.
type Firewall struct{}

var _ gateway.Firewall = (*Firewall)(nil)

var errNotYet = errors.New("iptfw: not written yet")

// New installs the backend's chains and the jumps to them.
func New(cfg Config) (*Firewall, error) { return nil, errNotYet }

// Apply implements gateway.Firewall.
func (f *Firewall) Apply(ctx context.Context, add, remove []gateway.Mapping) error { return errNotYet }

// Reconcile implements gateway.Firewall.
func (f *Firewall) Reconcile(ctx context.Context, want []gateway.Mapping) (gateway.Reconciled, error) {
	return gateway.Reconciled{}, errNotYet
}

// List implements gateway.Firewall.
func (f *Firewall) List(ctx context.Context) ([]gateway.Mapping, error) { return nil, errNotYet }

// SetExternalAddress implements gateway.Firewall.
func (f *Firewall) SetExternalAddress(ctx context.Context, addr netip.Addr) error { return errNotYet }

// SetInterfaces implements gateway.Firewall.
func (f *Firewall) SetInterfaces(ctx context.Context, external string, internal []string) error {
	return errNotYet
}

// Watch implements gateway.Firewall.
func (f *Firewall) Watch(ctx context.Context, changed, opened func()) error { return errNotYet }

// Release removes everything, as Close: iptables rules have no timeouts.
func (f *Firewall) Release() error { return f.Close() }

// Close implements gateway.Firewall.
func (f *Firewall) Close() error { return nil }
