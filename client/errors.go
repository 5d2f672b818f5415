package client

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/portlease/portlease/pcp"
)

// Errors, for errors.Is. Failures reported by a gateway come wrapped in
// these or as the protocol's own typed errors: *natpmp.ResultError for a
// NAT-PMP result code, *PCPError for a PCP one, *upnp.Fault for a UPnP
// fault.
var (
	// ErrNoGateway: no gateway was found (no default route, or none on
	// Config.Interface), or none answered the protocol asked for.
	ErrNoGateway = errors.New("client: no gateway found")
	// ErrForeignAddress: NAT-PMP was asked to map another device's
	// address; it maps only the address a request comes from (RFC 6886
	// §3.3). The error is a *ForeignAddressError. Use UPnP (or Auto).
	ErrForeignAddress = errors.New("client: NAT-PMP maps only this machine's own address")
	// ErrConflict: the external port is held by another mapping and the
	// request's policy is ConflictKeep. The error is a *ConflictError.
	ErrConflict = errors.New("client: external port held by another mapping")
	// ErrUnsupported: the gateway does not offer what was asked, such as a
	// table listing from a gateway that speaks only NAT-PMP, or any
	// mapping from a gateway that speaks only PCP.
	ErrUnsupported = errors.New("client: not supported by the gateway")
	// ErrNonceNeeded: a gateway refused to delete over NAT-PMP, which
	// carries no nonce, a mapping that may have been made over PCP: such
	// a mapping goes only with its nonce (RFC 6887 §15), the one Map
	// returned in Result.Nonce (Request.Nonce, `portlease unmap --nonce`).
	ErrNonceNeeded = errors.New("client: the mapping may have been made over PCP; deleting it needs its nonce (--nonce, printed by portlease map)")
	// ErrNotFound: the mapping to delete is not on the gateway.
	ErrNotFound = errors.New("client: no such mapping on the gateway")
	// ErrDoubleNAT: the gateway's external address is private or
	// carrier-grade NAT space, so its mappings are not reachable from the
	// internet. It is reported in DoubleNATDetected events, never as the
	// failure of a mapping.
	ErrDoubleNAT = errors.New("client: external address is not public (double NAT)")
	// ErrNoAnswer: the gateway did not answer (NAT-PMP retransmissions
	// exhausted, or the port refused).
	ErrNoAnswer = errors.New("client: no answer from the gateway")
	// ErrInvalidRequest: the Request is malformed (protocol, port).
	ErrInvalidRequest = errors.New("client: invalid request")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("client: closed")
)

// ForeignAddressError is ErrForeignAddress with the addresses concerned.
type ForeignAddressError struct {
	// Addr is the address the request asked for.
	Addr netip.Addr
	// Local is this machine's address towards the gateway, the only one
	// NAT-PMP can map.
	Local netip.Addr
}

// Error names both addresses.
func (e *ForeignAddressError) Error() string {
	return fmt.Sprintf("client: NAT-PMP cannot map %s: it maps only this machine's own address %s (use UPnP)", e.Addr, e.Local)
}

// Unwrap returns ErrForeignAddress.
func (e *ForeignAddressError) Unwrap() error { return ErrForeignAddress }

// ConflictError is ErrConflict: the external port wanted is held by another
// mapping.
type ConflictError struct {
	// Protocol and ExternalPort are the port wanted.
	Protocol     Protocol
	ExternalPort uint16
	// Holder is the mapping that holds it, when the gateway let us read
	// it (Holder.Internal is invalid otherwise).
	Holder Entry
}

// Error names the port and, when known, the holder.
func (e *ConflictError) Error() string {
	if e.Holder.Internal.IsValid() {
		return fmt.Sprintf("client: external port %s %d is held by a mapping to %s (%q)", e.Protocol, e.ExternalPort, e.Holder.Internal, e.Holder.Description)
	}
	return fmt.Sprintf("client: external port %s %d is held by another mapping", e.Protocol, e.ExternalPort)
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// GatewayError is the failure of an operation on one gateway.
type GatewayError struct {
	// Op is the operation: "map", "renew", "unmap", "check", "list",
	// "probe".
	Op string
	// Method is the protocol spoken.
	Method Method
	// Gateway is the router's address.
	Gateway netip.Addr
	// Err is the cause.
	Err error
}

// Error reads like "client: map over natpmp via 198.51.100.1: ...".
func (e *GatewayError) Error() string {
	// The cause's own package prefix is not repeated.
	cause := strings.TrimPrefix(e.Err.Error(), "client: ")
	return fmt.Sprintf("client: %s over %s via %s: %s", e.Op, e.Method, e.Gateway, cause)
}

// Unwrap returns the cause.
func (e *GatewayError) Unwrap() error { return e.Err }

// PCPError is a PCP result code other than SUCCESS (RFC 6887 §7.4). It is
// ErrConflict for CANNOT_PROVIDE_EXTERNAL (the port asked for with
// PREFER_FAILURE is taken) and ErrUnsupported for UNSUPP_VERSION,
// UNSUPP_OPCODE, UNSUPP_OPTION and UNSUPP_PROTOCOL.
type PCPError struct {
	Code pcp.ResultCode
	// Lifetime is the error's lifetime in seconds: how long the gateway
	// asks to wait before trying again (§7.4, short for transient errors).
	Lifetime uint32
}

// Error reads like "client: PCP result NOT_AUTHORIZED".
func (e *PCPError) Error() string {
	return fmt.Sprintf("client: PCP result %s (retry after %d s)", e.Code, e.Lifetime)
}

// Is matches ErrConflict and ErrUnsupported as the type's comment says.
func (e *PCPError) Is(target error) bool {
	switch target {
	case ErrConflict:
		return e.Code == pcp.CannotProvideExternal
	case ErrUnsupported:
		switch e.Code {
		case pcp.UnsuppVersion, pcp.UnsuppOpcode, pcp.UnsuppOption, pcp.UnsuppProtocol:
			return true
		}
	}
	return false
}
