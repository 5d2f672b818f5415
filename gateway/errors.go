package gateway

import "errors"

// Errors returned by Table. Front-ends translate them into their protocol's
// result codes (NAT-PMP §3.5, PCP §7.4, UPnP IGD error codes).
var (
	// ErrNotAuthorized means the permission rules forbid every external port
	// the request could have been given (NAT-PMP result 2, UPnP 606/718).
	ErrNotAuthorized = errors.New("gateway: not authorized by the permission rules")
	// ErrOutOfResources means no allowed external port is free, or the
	// table holds Policy.MaxLeases (NAT-PMP result 4, PCP NO_RESOURCES,
	// UPnP 728 for a mapping and 701 for a pinhole).
	ErrOutOfResources = errors.New("gateway: no free external port")
	// ErrHostQuota means the internal address already holds
	// Policy.MaxPerHost leases (NAT-PMP result 4, PCP USER_EX_QUOTA RFC
	// 6887 §7.4, UPnP 728 for a mapping and 701 for a pinhole).
	ErrHostQuota = errors.New("gateway: host has its maximum of leases")
	// ErrConflict means the exact external port asked for is held by another
	// internal endpoint (UPnP 718 ConflictInMappingEntry).
	ErrConflict = errors.New("gateway: external port held by another mapping")
	// ErrNonceMismatch means a request names an existing mapping but carries
	// another nonce (PCP NOT_AUTHORIZED, RFC 6887 §11.3).
	ErrNonceMismatch = errors.New("gateway: mapping nonce mismatch")
	// ErrNotFound means no mapping matched a deletion or lookup.
	ErrNotFound = errors.New("gateway: no such mapping")
	// ErrFirewall wraps a failure of the kernel backend (NAT-PMP result 3).
	ErrFirewall = errors.New("gateway: firewall")
	// ErrJournal wraps a failure to record a change in the journal (the
	// state file).
	ErrJournal = errors.New("gateway: journal")
	// ErrClosed means the table has been closed.
	ErrClosed = errors.New("gateway: table closed")
	// ErrBadRequest means a request is malformed: protocol other than TCP or
	// UDP, an invalid internal address, or internal port 0.
	ErrBadRequest = errors.New("gateway: bad request")
)
