// Package benchmaps holds the mappings the firewall benchmarks share, so
// that nftfw's and fwplan's figures are of the same table.
package benchmaps

import (
	"net/netip"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Mapping returns the i-th of 100,000 mappings: TCP then UDP, external
// port 1024+i%50000, a thousand internal ports on each of a hundred
// addresses (10.0.x.y), with a one-hour lifetime.
func Mapping(i int) gateway.Mapping {
	p := gateway.TCP
	if i >= 50000 {
		p = gateway.UDP
	}
	return gateway.Mapping{
		Protocol:     p,
		ExternalPort: uint16(1024 + i%50000),
		Internal:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 1000 >> 8), byte(i / 1000)}), uint16(20000+i%1000)),
		Lifetime:     time.Hour,
	}
}
