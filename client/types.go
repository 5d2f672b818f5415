package client

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Protocol is the transport protocol of a mapping.
type Protocol string

// The protocols a mapping can be for.
const (
	TCP Protocol = "TCP"
	UDP Protocol = "UDP"
)

// normalize returns p in upper case, or an error for anything but TCP and
// UDP.
func (p Protocol) normalize() (Protocol, error) {
	switch q := Protocol(strings.ToUpper(string(p))); q {
	case TCP, UDP:
		return q, nil
	}
	return "", fmt.Errorf("%w: protocol %q: want TCP or UDP", ErrInvalidRequest, string(p))
}

// Method is the protocol spoken to a gateway.
type Method string

// The methods. The zero value "" means Auto.
const (
	// Auto chooses per gateway: PCP where the gateway answers it, then
	// NAT-PMP (the renewals of both cost one small packet, and their
	// epochs tell when the gateway lost its state), UPnP IGD where neither
	// answers or both fail. An IPv6 request (a pinhole) goes over PCP to
	// the IPv6 default routers first, then over UPnP
	// (WANIPv6FirewallControl:1); one with Filters goes over PCP only
	// (see Request.Filters for the one a UPnP pinhole carries).
	Auto Method = "auto"
	// UPnP speaks UPnP IGD (WANIPConnection or WANPPPConnection, versions
	// 1 and 2, and WANIPv6FirewallControl:1 for pinholes) only.
	UPnP Method = "upnp"
	// NATPMP speaks NAT-PMP (RFC 6886) only.
	NATPMP Method = "natpmp"
	// PCP speaks the Port Control Protocol (RFC 6887) only: MAP for
	// IPv4 mappings and IPv6 pinholes.
	PCP Method = "pcp"
)

// ParseMethod reads "auto", "pcp", "natpmp" or "upnp" (any case).
func ParseMethod(s string) (Method, error) {
	switch m := Method(strings.ToLower(s)); m {
	case Auto, PCP, NATPMP, UPnP:
		return m, nil
	}
	return "", fmt.Errorf("client: method %q: want auto, pcp, natpmp or upnp", s)
}

// Nonce is a PCP mapping nonce (RFC 6887 §11.1): random per mapping, and
// the same in its renewals and its deletion, which the gateway refuses
// (NOT_AUTHORIZED) with another.
type Nonce [12]byte

// IsZero reports whether n is the zero nonce (none given).
func (n Nonce) IsZero() bool { return n == Nonce{} }

// String returns n in hexadecimal.
func (n Nonce) String() string { return fmt.Sprintf("%x", n[:]) }

// ParseNonce reads 24 hexadecimal digits.
func ParseNonce(s string) (Nonce, error) {
	var n Nonce
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(n) {
		return n, fmt.Errorf("client: nonce %q: want 24 hexadecimal digits", s)
	}
	copy(n[:], b)
	return n, nil
}

// Filter admits inbound traffic to a mapping from remote peers only (PCP
// FILTER, RFC 6887 §13.3): from addresses in Remote, a prefix of the
// mapping's family (/0: any address), and from Port (0: any port).
type Filter struct {
	Remote netip.Prefix
	Port   uint16
}

// String returns "203.0.113.7/32 port 4662" or "2001:db8::/32".
func (f Filter) String() string {
	if f.Port == 0 {
		return f.Remote.String()
	}
	return fmt.Sprintf("%s port %d", f.Remote, f.Port)
}

// ConflictPolicy says what to do when the external port wanted is held by
// another mapping on the gateway.
type ConflictPolicy int

// The conflict policies.
const (
	// ConflictKeep leaves another mapping alone and reports the conflict
	// (ErrConflict, a *ConflictError). When the request left the external
	// port open (Request.ExternalPort 0), another port is taken instead.
	ConflictKeep ConflictPolicy = iota
	// ConflictReplace deletes the other mapping and maps ours in its place:
	// upnp-daemon's behaviour. Only UPnP can do this; NAT-PMP gateways pick
	// another external port by themselves.
	ConflictReplace
)

// String returns "keep" or "replace".
func (p ConflictPolicy) String() string {
	switch p {
	case ConflictKeep:
		return "keep"
	case ConflictReplace:
		return "replace"
	}
	return fmt.Sprintf("conflict-policy-%d", int(p))
}

// DefaultLifetime is the lifetime asked for when a Request does not say: the
// lifetime RFC 6886 §3.3 recommends ("The RECOMMENDED Port Mapping Lifetime
// is 7200 seconds"), used for UPnP leases too. A kept mapping is renewed
// at half of what the gateway grants, whatever was asked.
const DefaultLifetime = 7200 * time.Second

// DefaultDescription is the UPnP description of a mapping whose Request has
// none.
const DefaultDescription = "portlease"

// Request is one mapping to make.
type Request struct {
	// Protocol is TCP or UDP (case does not matter).
	Protocol Protocol
	// InternalPort is the port the application listens on, 1 to 65535.
	InternalPort uint16
	// InternalAddr is the address the mapping leads to. The zero value
	// means this machine: its address on the link towards the gateway.
	// Another device's address can be mapped over UPnP, and over PCP
	// with THIRD_PARTY (RFC 6887 §13.1) where the gateway allows it;
	// NAT-PMP maps only the address a request comes from (RFC 6886
	// §3.3), so asking it for another address fails with
	// ErrForeignAddress. An IPv6 address asks for a pinhole: the gateway's
	// firewall lets inbound traffic reach it, untranslated: over PCP to
	// the IPv6 default router, or over UPnP (WANIPv6FirewallControl:1
	// AddPinhole) to the IGD found through the IPv4 gateway.
	InternalAddr netip.Addr
	// ExternalPort is the external port wanted. Zero means the internal
	// port if it is free, else any port the gateway picks. NAT-PMP takes
	// it as a suggestion (§3.3); UPnP either grants it or reports a
	// conflict, handled by OnConflict; PCP asks for it with
	// PREFER_FAILURE (RFC 6887 §13.2), so that a taken port is a conflict
	// too (ErrConflict, a *PCPError CANNOT_PROVIDE_EXTERNAL).
	ExternalPort uint16
	// Lifetime is the lease asked for; zero means DefaultLifetime. The
	// gateway may grant less or more (some grant only permanent UPnP
	// leases); Result.Lifetime says what it granted.
	Lifetime time.Duration
	// Description is the UPnP mapping's description (NAT-PMP has none);
	// empty means DefaultDescription.
	Description string
	// OnConflict says what to do when the external port is held by
	// another mapping; Unmap obeys it too: with ConflictKeep it deletes
	// only a mapping that leads to the request's own address.
	OnConflict ConflictPolicy
	// Filters, when not empty, admit inbound traffic only from the
	// listed peers (PCP FILTER, RFC 6887 §13.3); such a request goes
	// over PCP only, except a pinhole with one filter of a single
	// address (/128), which UPnP carries as RemoteHost and RemotePort.
	Filters []Filter
	// Nonce is the PCP mapping nonce (RFC 6887 §11.1). Zero: Map and
	// Keep draw a random one, kept for the mapping's whole life
	// (Result.Nonce tells it). Unmap over PCP needs the nonce of the
	// mapping it deletes (§15).
	Nonce Nonce
	// PinholeID is, for Unmap of a pinhole over UPnP, the UniqueID
	// Result.PinholeID told: WANIPv6FirewallControl:1 deletes a pinhole
	// by it and has no action to look it up.
	PinholeID uint16
}

// String returns a short description such as "TCP 4662" or
// "UDP 198.51.100.20:4672->4672".
func (r Request) String() string {
	var b strings.Builder
	b.WriteString(string(r.Protocol))
	b.WriteByte(' ')
	if r.InternalAddr.IsValid() {
		b.WriteString(netip.AddrPortFrom(r.InternalAddr, r.InternalPort).String())
	} else {
		fmt.Fprint(&b, r.InternalPort)
	}
	if r.ExternalPort != 0 && r.ExternalPort != r.InternalPort {
		fmt.Fprintf(&b, "->%d", r.ExternalPort)
	}
	return b.String()
}

// Result is what a gateway granted.
type Result struct {
	// Protocol is the mapping's protocol.
	Protocol Protocol
	// Internal is the address and port the mapping leads to.
	Internal netip.AddrPort
	// External is the gateway's external address and the external port
	// granted; the address is invalid when the gateway did not tell it.
	External netip.AddrPort
	// Lifetime is the lease granted; zero means permanent (a UPnP gateway
	// that grants only permanent leases). A kept permanent mapping is
	// verified every Config.CheckInterval and deleted when the Mapping
	// is closed.
	Lifetime time.Duration
	// Method is the protocol that made the mapping: PCP, NATPMP or UPnP.
	Method Method
	// Pinhole is true for an IPv6 pinhole: External equals Internal.
	Pinhole bool
	// Nonce is the PCP mapping's nonce, which its renewals and its
	// deletion must carry (zero over the other protocols).
	Nonce Nonce
	// PinholeID is the UniqueID of a pinhole opened over UPnP
	// (WANIPv6FirewallControl:1 AddPinhole), which its renewals
	// (UpdatePinhole) and its deletion need; zero otherwise.
	PinholeID uint16
	// Gateway is the router's address.
	Gateway netip.Addr
	// Interface is the name of the link towards the gateway.
	Interface string
}

// Entry is one mapping of a gateway's table, as UPnP lists it.
type Entry struct {
	Protocol     Protocol
	ExternalPort uint16
	// Internal is the address and port the mapping leads to.
	Internal    netip.AddrPort
	Description string
	// Lifetime is the lease left, or the lease itself, as the gateway
	// reports it (IGDs differ); zero means permanent.
	Lifetime time.Duration
	// RemoteHost is the remote host the mapping is restricted to, empty
	// for any (the usual case).
	RemoteHost string
	Enabled    bool
}

// Gateway is a router that discovery found, and what it answers.
type Gateway struct {
	// Interface is the name of the link towards the router.
	Interface string `json:"interface"`
	// Local is this machine's address on that link: the address the
	// router maps to.
	Local netip.Addr `json:"local"`
	// Address is the router's address.
	Address netip.Addr `json:"address"`
	// PCP is what the router answered over PCP (an ANNOUNCE request),
	// nil if it did not answer.
	PCP *PCPInfo `json:"pcp,omitempty"`
	// NATPMP is what the router answered over NAT-PMP, nil if it did not
	// answer.
	NATPMP *NATPMPInfo `json:"natpmp,omitempty"`
	// UPnP lists the Internet Gateway Devices found through this link,
	// best first.
	UPnP []UPnPInfo `json:"upnp,omitempty"`
	// ExternalAddress is the router's external address, from NAT-PMP or
	// else from the best IGD; invalid when neither told it.
	ExternalAddress netip.Addr `json:"external_address,omitzero"`
	// AddressClass classifies ExternalAddress.
	AddressClass AddressClass `json:"address_class"`
	// DoubleNAT is true when ExternalAddress is private (10/8,
	// 172.16/12, 192.168/16) or shared (carrier-grade NAT, 100.64/10):
	// there is another NAT beyond this router and its mappings are not
	// reachable from the internet. Other addresses that are not public
	// are told by AddressClass alone: a documentation address (such as
	// the lab's 203.0.113.1) is no sign of a second NAT.
	DoubleNAT bool `json:"double_nat"`
}

// NATPMPInfo is what a router answered over NAT-PMP.
type NATPMPInfo struct {
	// ExternalAddress is the address of the external address response
	// (RFC 6886 §3.2).
	ExternalAddress netip.Addr `json:"external_address,omitzero"`
	// Epoch is the router's Seconds Since Start of Epoch (§3.6).
	Epoch uint32 `json:"epoch"`
	// PCPOnly is true when the router answered with version 2: it speaks
	// PCP (RFC 6887) only, and the client maps through it over PCP.
	PCPOnly bool `json:"pcp_only"`
}

// PCPInfo is what a router answered over PCP.
type PCPInfo struct {
	// Epoch is the router's Epoch Time (RFC 6887 §8.5).
	Epoch uint32 `json:"epoch"`
}

// UPnPInfo is one UPnP Internet Gateway Device's connection service.
type UPnPInfo struct {
	// Location is the URL of the device description.
	Location string `json:"location"`
	// Service is the connection service's type, such as
	// "urn:schemas-upnp-org:service:WANIPConnection:2".
	Service string `json:"service"`
	// FriendlyName is the device's name for people.
	FriendlyName string `json:"friendly_name"`
	// Version is the IGD version, 1 or 2.
	Version int `json:"version"`
	// ExternalAddress is what GetExternalIPAddress answered.
	ExternalAddress netip.Addr `json:"external_address,omitzero"`
	// Connected is what GetStatusInfo answered.
	Connected bool `json:"connected"`
}

// EventKind says what happened to a kept mapping or its gateway.
type EventKind int

// The kinds of event.
const (
	// Mapped: a kept mapping was made for the first time, or anew on
	// another gateway or protocol.
	Mapped EventKind = iota
	// Renewed: a kept mapping was renewed. A check that finds it in
	// place is quiet.
	Renewed
	// Recreated: the gateway had lost a kept mapping (NAT-PMP epoch
	// going backwards, or an answer to the verification that follows an
	// announcement showing another port or an epoch begun since the
	// mapping was granted; UPnP entry missing at a check or at the
	// verification that follows a NOTIFY; lease expired while failing)
	// and it was made again.
	Recreated
	// Failed: an attempt to map, renew or check failed; Err says why. The
	// keeper tries again with backoff.
	Failed
	// Deleted: Mapping.Close deleted the mapping from the gateway.
	Deleted
	// ExternalAddressChanged: a gateway's external address is new or
	// changed; Event.ExternalAddress holds it.
	ExternalAddressChanged
	// DoubleNATDetected: a gateway's external address is not public
	// (private or carrier-grade NAT): mappings there are not reachable from
	// the internet. Event.Err wraps ErrDoubleNAT.
	DoubleNATDetected
	// GatewayRestarted: a gateway lost its mapping state (NAT-PMP epoch)
	// or rebooted (UPnP BOOTID); Recreated events follow for each kept
	// mapping it lost.
	GatewayRestarted
)

// String returns the kind's name, such as "Mapped".
func (k EventKind) String() string {
	switch k {
	case Mapped:
		return "Mapped"
	case Renewed:
		return "Renewed"
	case Recreated:
		return "Recreated"
	case Failed:
		return "Failed"
	case Deleted:
		return "Deleted"
	case ExternalAddressChanged:
		return "ExternalAddressChanged"
	case DoubleNATDetected:
		return "DoubleNATDetected"
	case GatewayRestarted:
		return "GatewayRestarted"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event reports what happened to a kept mapping or to a gateway that holds
// kept mappings.
type Event struct {
	Kind EventKind
	// Request is the kept mapping's request; zero for events about a
	// gateway (ExternalAddressChanged, DoubleNATDetected,
	// GatewayRestarted).
	Request Request
	// Result is what is granted after the event; zero if nothing is.
	Result Result
	// Err is the failure of a Failed event, the reason of a
	// DoubleNATDetected event.
	Err error
	// ExternalAddress is the gateway's external address as known at the
	// event.
	ExternalAddress netip.Addr
	// Gateway is the router's address.
	Gateway netip.Addr
	// Time is when the event happened.
	Time time.Time
}

// String returns a one-line description of the event, for logs.
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(e.Kind.String())
	if e.Request.Protocol != "" {
		fmt.Fprintf(&b, " %s", e.Request)
	}
	if e.Result.External.IsValid() || e.Result.External.Port() != 0 {
		fmt.Fprintf(&b, " external %s via %s", e.Result.External, e.Result.Method)
	}
	if e.Gateway.IsValid() {
		fmt.Fprintf(&b, " gateway %s", e.Gateway)
	}
	if e.ExternalAddress.IsValid() && (e.Kind == ExternalAddressChanged || e.Kind == DoubleNATDetected) {
		fmt.Fprintf(&b, " address %s", e.ExternalAddress)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}
