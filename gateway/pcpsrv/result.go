package pcpsrv

import (
	"errors"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/pcp"
)

// resultOf maps a lease core error to a PCP result code (RFC 6887 §7.4).
// exact tells whether the request carried PREFER_FAILURE: then a taken port
// is CANNOT_PROVIDE_EXTERNAL (§13.2).
func resultOf(err error, exact bool) pcp.ResultCode {
	switch {
	case errors.Is(err, gateway.ErrNonceMismatch), errors.Is(err, gateway.ErrNotAuthorized):
		return pcp.NotAuthorized
	case errors.Is(err, gateway.ErrConflict) && exact:
		return pcp.CannotProvideExternal
	case errors.Is(err, gateway.ErrFirewall), errors.Is(err, gateway.ErrJournal), errors.Is(err, gateway.ErrClosed):
		return pcp.NetworkFailure
	case errors.Is(err, gateway.ErrBadRequest):
		return pcp.MalformedRequest
	case errors.Is(err, gateway.ErrHostQuota):
		return pcp.UserExQuota
	default:
		// ErrOutOfResources, and NO_RESOURCES is also §7.4's catch-all:
		// "This can be used as a catch-all error, should no other error
		// message be suitable."
		return pcp.NoResources
	}
}
