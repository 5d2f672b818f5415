package control

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Version is the version of the API this package serves and speaks: the
// paths' prefix (/v1) and every body's "version".
const Version = 1

// prefix is the paths' prefix of Version.
const prefix = "/v1"

// Lease is one lease as the API shows it.
type Lease struct {
	// Protocol is "tcp" or "udp".
	Protocol string `json:"protocol"`
	// ExternalPort is the port on the external address; a pinhole's is
	// its internal port (nothing is translated).
	ExternalPort uint16 `json:"external_port"`
	// Internal is the LAN endpoint, InternalAddress and InternalPort its
	// parts.
	Internal        netip.AddrPort `json:"internal"`
	InternalAddress netip.Addr     `json:"internal_address"`
	InternalPort    uint16         `json:"internal_port"`
	// Origin is "natpmp", "pcp" or "upnp".
	Origin      string `json:"origin"`
	Description string `json:"description"`
	// NonceProtected is set for a lease made over PCP with a mapping
	// nonce (RFC 6887 §11.1): only a request carrying it may change or
	// delete it (the operator may).
	NonceProtected bool `json:"nonce_protected"`
	// Pinhole is set for an IPv6 firewall pinhole, PinholeID its UPnP
	// UniqueID.
	Pinhole   bool      `json:"pinhole"`
	PinholeID uint16    `json:"pinhole_id,omitempty"`
	Filters   []Filter  `json:"filters"`
	Created   time.Time `json:"created"`
	// Expires is when the lease ends, nil for a permanent one (UPnP
	// IGD:1 lease duration 0); Remaining is what is left in whole
	// seconds (0 for a permanent one).
	Expires   *time.Time `json:"expires"`
	Permanent bool       `json:"permanent"`
	Remaining int64      `json:"remaining_seconds"`
	// HostLeases is how many leases the internal address holds, of
	// every protocol; HostLimit the policy's limit for one host (0:
	// none).
	HostLeases int `json:"host_leases"`
	HostLimit  int `json:"host_limit"`
}

// Filter admits inbound traffic from remote peers only (PCP FILTER RFC
// 6887 §13.3, PEER §12, UPnP RemoteHost): Remote a prefix, Port 0 any.
type Filter struct {
	Remote netip.Prefix `json:"remote"`
	Port   uint16       `json:"port"`
}

// Leases is the body of GET /v1/leases.
type Leases struct {
	Version         int        `json:"version"`
	ExternalAddress netip.Addr `json:"external_address"`
	Leases          []Lease    `json:"leases"`
}

// One is the body of GET of one lease.
type One struct {
	Version         int        `json:"version"`
	ExternalAddress netip.Addr `json:"external_address"`
	Lease           Lease      `json:"lease"`
}

// Deleted is the body of a DELETE: the leases it removed.
type Deleted struct {
	Version int     `json:"version"`
	Deleted []Lease `json:"deleted"`
}

// ByOrigin counts by origin.
type ByOrigin struct {
	NATPMP uint64 `json:"natpmp"`
	PCP    uint64 `json:"pcp"`
	UPnP   uint64 `json:"upnp"`
}

// Bucket is one bucket of a histogram: the count of values up to LE
// ("+Inf" for the last), not cumulative.
type Bucket struct {
	LE    string `json:"le"`
	Count uint64 `json:"count"`
}

// Counters is the body of GET /v1/counters: gateway.Counters.
type Counters struct {
	Version             int               `json:"version"`
	Granted             ByOrigin          `json:"granted"`
	Renewed             ByOrigin          `json:"renewed"`
	Deleted             ByOrigin          `json:"deleted"`
	Expired             ByOrigin          `json:"expired"`
	Refused             map[string]uint64 `json:"refused"`
	Transactions        uint64            `json:"transactions"`
	TransactionFailures uint64            `json:"transaction_failures"`
	TransactionSizes    []Bucket          `json:"transaction_sizes"`
	TransactionMappings uint64            `json:"transaction_mappings"`
	JournalCommits      uint64            `json:"journal_commits"`
	JournalFailures     uint64            `json:"journal_failures"`
}

// Error is the body of every error; the HTTP status says its kind.
type Error struct {
	Version int    `json:"version"`
	Status  int    `json:"status"`
	Message string `json:"error"`
}

func byOrigin(c [4]uint64) ByOrigin {
	return ByOrigin{NATPMP: c[gateway.OriginNATPMP], PCP: c[gateway.OriginPCP], UPnP: c[gateway.OriginUPnP]}
}

// countersOf converts the table's counters.
func countersOf(c gateway.Counters) Counters {
	out := Counters{Version: Version, Granted: byOrigin(c.Granted), Renewed: byOrigin(c.Renewed),
		Deleted: byOrigin(c.Deleted), Expired: byOrigin(c.Expired), Refused: c.Refused,
		Transactions: c.Transactions, TransactionFailures: c.TransactionFailures,
		TransactionMappings: c.TransactionMappings, JournalCommits: c.JournalCommits, JournalFailures: c.JournalFailures}
	if out.Refused == nil {
		out.Refused = map[string]uint64{}
	}
	bounds := gateway.TransactionSizeBounds()
	for i, n := range c.TransactionSizes {
		le := "+Inf"
		if i < len(bounds) {
			le = strconv.Itoa(bounds[i])
		}
		out.TransactionSizes = append(out.TransactionSizes, Bucket{LE: le, Count: n})
	}
	return out
}

// usage counts the leases of each internal address.
func usage(ls []gateway.Lease) map[netip.Addr]int {
	n := make(map[netip.Addr]int)
	for _, l := range ls {
		n[l.Internal.Addr().Unmap()]++
	}
	return n
}

// leaseOf converts l at now, with the count of its host's leases and the
// per-host limit.
func leaseOf(l gateway.Lease, now time.Time, hostLeases, limit int) Lease {
	out := Lease{
		Protocol:        l.Protocol.String(),
		ExternalPort:    l.ExternalPort,
		Internal:        l.Internal,
		InternalAddress: l.Internal.Addr(),
		InternalPort:    l.Internal.Port(),
		Origin:          l.Origin.String(),
		Description:     l.Description,
		NonceProtected:  l.Nonce != [12]byte{},
		Pinhole:         l.Pinhole,
		PinholeID:       l.PinholeID,
		Filters:         []Filter{},
		Created:         l.Created.Round(0),
		Permanent:       l.Expires.IsZero(),
		Remaining:       int64(l.Lifetime(now) / time.Second),
		HostLeases:      hostLeases,
		HostLimit:       limit,
	}
	for _, f := range l.Filters {
		out.Filters = append(out.Filters, Filter{Remote: f.Remote, Port: f.Port})
	}
	if !l.Expires.IsZero() {
		e := l.Expires.Round(0)
		out.Expires = &e
	}
	return out
}
