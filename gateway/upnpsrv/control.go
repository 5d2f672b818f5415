package upnpsrv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/upnp"
)

// Limits of the port-mapping actions.
const (
	// maxDescription bounds the PortMappingDescription kept, in bytes
	// (miniupnpd keeps 64); longer ones are cut at a character boundary.
	maxDescription = 256
	// maxListEntries bounds a GetListOfPortMappings answer when
	// NewNumberOfPorts is 0 or larger (miniupnpd's default is 1000).
	maxListEntries = 1000
	// maxListBytes bounds the NewPortListing document, so that an answer
	// fits the 256 KiB a control point such as upnp.ParseResponse reads; a
	// control point that gets fewer entries than it asked for asks again
	// from the port after the last one.
	maxListBytes = 192 << 10
)

// request is a control request being served.
type request struct {
	client netip.Addr
	act    upnp.Action
	// v1 is set when the request names WANIPConnection:1, whose error
	// codes the client knows (WANIPConnection:2 added 728 to 733).
	v1 bool
}

// fault returns a UPnP error (UDA 1.1 §3.2.2) with the code's own name as
// its description, or detail when given.
func fault(code upnp.ErrorCode, detail ...string) *upnp.Fault {
	f := &upnp.Fault{Code: int(code), Description: code.String()}
	if len(detail) > 0 {
		f.Description = detail[0]
	}
	return f
}

// control serves a control request (UDA 1.1 §3.2): a SOAP action POSTed to
// a service's control URL, answered with its response (HTTP 200) or a SOAP
// fault carrying a UPnPError (HTTP 500, §3.2.2).
func (s *Server) control(w http.ResponseWriter, r *http.Request, svc *service, client netip.Addr) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		httpError(w, http.StatusMethodNotAllowed)
		return
	}
	if s.cfg.Limiter != nil && changesState(r.Header.Get("SOAPAction")) && !s.cfg.Limiter.Allow(client) {
		// The limiter logs its refusals, once per interval and host.
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable)
		return
	}
	if r.ContentLength > s.cfg.MaxRequestBytes {
		httpError(w, http.StatusRequestEntityTooLarge)
		return
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes), r.ContentLength)
	var act upnp.Action
	if err == nil {
		act, err = upnp.ParseActionRequestBody(body, r.Header.Get("SOAPAction"))
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig), errors.Is(err, upnp.ErrTooLarge):
		httpError(w, http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, upnp.ErrActionMismatch):
		// §3.2.1: SOAPACTION names the service and action the body holds.
		s.sendFault(w, client, svc, "", fault(upnp.InvalidAction, "Invalid Action: "+err.Error()))
		return
	case err != nil:
		// Not a SOAP envelope, or XML that does not parse.
		s.sendFault(w, client, svc, "", fault(upnp.InvalidArgs, "Invalid Args: "+err.Error()))
		return
	}
	if act.ServiceType == controlNS && act.Name == "QueryStateVariable" {
		args, f := s.queryStateVariable(svc, &act)
		s.reply(w, client, svc, act, args, f)
		return
	}
	known := false
	for _, t := range svc.accepts {
		known = known || act.ServiceType == t
	}
	spec, ok := svc.actions[act.Name]
	if !known || !ok {
		s.sendFault(w, client, svc, act.Name, fault(upnp.InvalidAction))
		return
	}
	rq := &request{client: client, act: act, v1: act.ServiceType == upnp.ServiceWANIP1}
	args, f := spec.do(s, r.Context(), rq)
	if f != nil && rq.v1 && f.Code == int(upnp.WildCardNotPermittedInIntPort) {
		// WANIPConnection:1 has no 732; its AddPortMapping answers an
		// internal port it cannot take with 402.
		f = fault(upnp.InvalidArgs, "Invalid Args: NewInternalPort 0")
	}
	s.reply(w, client, svc, act, args, f)
}

// changesState reports whether the action a SOAPACTION header names may
// change the table, and so counts against the client's request rate. The
// reads (Get*, QueryStateVariable, CheckPinholeWorking) do not: a walk of a
// big table (upnpc -l, GetGenericPortMappingEntry by index) must not be cut
// short halfway, and a host that floods them holds no more than its share
// of connections. A header that names no action counts (and the body must
// name the header's action: upnp.ParseActionRequestBody).
func changesState(soapAction string) bool {
	_, name, ok := upnp.SplitSOAPAction(soapAction)
	if !ok {
		return true
	}
	return !strings.HasPrefix(name, "Get") && name != "QueryStateVariable" && name != "CheckPinholeWorking"
}

// readBody reads a request body into one buffer of its Content-Length (the
// caller has bounded it), or, for a body of unknown length, a growing one.
// With the scanner of upnp.ParseActionRequestBody, a 64 KiB body costs less
// than 256 KiB in all (issue 11).
func readBody(r io.Reader, contentLength int64) ([]byte, error) {
	if contentLength < 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, contentLength)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("upnpsrv: request body: %w", err)
	}
	return b, nil
}

// reply sends the response to act, or the fault f.
func (s *Server) reply(w http.ResponseWriter, client netip.Addr, svc *service, act upnp.Action, args []upnp.Arg, f *upnp.Fault) {
	if f != nil {
		s.sendFault(w, client, svc, act.Name, f)
		return
	}
	resp := upnp.Response{Action: act.Name, Args: args}
	writeXML(w, http.StatusOK, resp.AppendEnvelope(act.ServiceType, nil))
}

func (s *Server) sendFault(w http.ResponseWriter, client netip.Addr, svc *service, action string, f *upnp.Fault) {
	s.log.Debug("refused action", "client", client, "service", svc.name, "action", action, "code", f.Code, "err", f.Description)
	writeXML(w, http.StatusInternalServerError, upnp.AppendFaultEnvelope(nil, f.Code, f.Description))
}

// mapFault translates a lease core error into the error codes of
// AddPortMapping and AddAnyPortMapping (the error tables of both actions in
// WANIPConnection:2).
func mapFault(err error) *upnp.Fault {
	switch {
	case errors.Is(err, gateway.ErrConflict), errors.Is(err, gateway.ErrNonceMismatch):
		return fault(upnp.ConflictInMappingEntry)
	case errors.Is(err, gateway.ErrNotAuthorized):
		return fault(upnp.ActionNotAuthorized)
	case errors.Is(err, gateway.ErrOutOfResources), errors.Is(err, gateway.ErrHostQuota):
		return fault(upnp.NoPortMapsAvailable)
	case errors.Is(err, gateway.ErrBadRequest):
		return fault(upnp.InvalidArgs, "Invalid Args: "+err.Error())
	default: // gateway.ErrFirewall, gateway.ErrClosed, a cancelled request
		return fault(upnp.ActionFailed)
	}
}

// addPortMapping is AddPortMapping (WANIPConnection:1 and :2): map exactly
// NewExternalPort.
func (s *Server) addPortMapping(ctx context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	_, f := s.addMapping(ctx, rq, true)
	return nil, f
}

// addAnyPortMapping is AddAnyPortMapping (WANIPConnection:2): map
// NewExternalPort or, when it is taken, refused or 0, a port the table
// chooses, returned as NewReservedPort.
func (s *Server) addAnyPortMapping(ctx context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	l, f := s.addMapping(ctx, rq, false)
	if f != nil {
		return nil, f
	}
	return []upnp.Arg{{Name: "NewReservedPort", Value: strconv.Itoa(int(l.ExternalPort))}}, nil
}

// addMapping serves AddPortMapping (exact) and AddAnyPortMapping.
//
//   - Arguments are read by upnp.PortMappingArgs: 402 for a missing or
//     mistyped one, 601 for a protocol other than TCP or UDP, 716 for
//     external port 0 in AddPortMapping, 732 (402 on :1) for internal
//     port 0.
//   - NewRemoteHost other than the wildcard: 726 RemoteHostOnlySupportsWildcard
//     (the mappings of this gateway accept any remote host).
//   - NewEnabled 0: 402 Invalid Args. A disabled mapping is kept but not
//     forwarded (WANIPConnection:2, PortMappingEnabled); the lease
//     table has no such state, and creating an enabled mapping instead
//     (what miniupnpd does) would forward what the client asked not to.
//   - An empty NewInternalClient is the client itself (miniupnpd issue
//     236); an address other than IPv4 unicast is 402. In secure mode
//     another address than the client's own is 606 Action not authorized.
//   - NewLeaseDuration: on an IGD:2 device 0 and values above 604800 ask
//     for 604800 s (WANIPConnection:2 §2.3.16, PortMappingLeaseDuration: a
//     control point that asks for 0, an infinite lease, is REQUIRED to get
//     the maximum instead); on an IGD:1 device 0 asks for a lease without
//     end (WANIPConnection:1, PortMappingLeaseDuration). The table caps
//     lifetimes by its policy.
//   - The same external port re-added for the same internal client updates
//     the mapping (AddPortMapping: only a pair held by another internal
//     client is an error): a renewal for the same internal endpoint, or a
//     replacement when the client names another internal port.
//   - Held by another client: 718 ConflictInMappingEntry; the permission
//     rules deny it: 606; no allowed port free (AddAnyPortMapping): 728
//     NoPortMapsAvailable; the kernel refuses it: 501 Action Failed.
func (s *Server) addMapping(ctx context.Context, rq *request, exact bool) (gateway.Lease, *upnp.Fault) {
	pm, err := upnp.PortMappingArgs(rq.act)
	if err != nil {
		var f *upnp.Fault
		if errors.As(err, &f) {
			return gateway.Lease{}, f
		}
		return gateway.Lease{}, fault(upnp.InvalidArgs, "Invalid Args: "+err.Error())
	}
	if pm.RemoteHost != "" {
		return gateway.Lease{}, fault(upnp.RemoteHostOnlySupportsWildcard)
	}
	if !pm.Enabled {
		return gateway.Lease{}, fault(upnp.InvalidArgs, "Invalid Args: NewEnabled 0, disabled mappings are not supported")
	}
	internal := rq.client
	if pm.InternalClient != "" {
		a, err := netip.ParseAddr(pm.InternalClient)
		if err != nil {
			return gateway.Lease{}, fault(upnp.InvalidArgs, "Invalid Args: NewInternalClient")
		}
		internal = a.Unmap()
	}
	if !internal.Is4() || internal.IsUnspecified() || internal.IsMulticast() || internal == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return gateway.Lease{}, fault(upnp.InvalidArgs, "Invalid Args: NewInternalClient is not an IPv4 unicast address")
	}
	if !s.allowForeign.Load() && internal != rq.client {
		return gateway.Lease{}, fault(upnp.ActionNotAuthorized, "Action not authorized: NewInternalClient is not the requesting host")
	}
	proto := protocolOf(pm.Protocol)
	req := gateway.MapRequest{
		Protocol:     proto,
		Internal:     netip.AddrPortFrom(internal, pm.InternalPort),
		ExternalPort: pm.ExternalPort,
		Exact:        exact,
		Origin:       gateway.OriginUPnP,
		Description:  cleanDescription(pm.Description),
		Requester:    rq.client,
	}
	switch lease := pm.LeaseDuration; {
	case s.cfg.Version == 1 && lease == 0:
		req.Permanent = true
	case lease == 0 || lease > upnp.MaxLeaseDuration:
		req.Lifetime = upnp.MaxLeaseDuration * time.Second
	default:
		req.Lifetime = time.Duration(lease) * time.Second
	}
	res, err := s.table.Map(ctx, req)
	if exact && errors.Is(err, gateway.ErrConflict) {
		// The port may be the same client's, for another internal port:
		// the client replaces its own mapping.
		if held, ok := s.table.LookupExternal(proto, pm.ExternalPort); ok && held.Internal.Addr() == internal {
			gone := s.table.DeleteExternalRange(ctx, proto, pm.ExternalPort, pm.ExternalPort, func(l gateway.Lease) bool {
				return l.Internal == held.Internal
			})
			if len(gone) > 0 {
				res, err = s.table.Map(ctx, req)
			}
		}
	}
	if err != nil {
		return gateway.Lease{}, mapFault(err)
	}
	return res.Lease, nil
}

// protocolOf returns the protocol that upnp.PortMappingArgs accepted, "TCP"
// or "UDP" in any case.
func protocolOf(p string) gateway.Protocol {
	if strings.EqualFold(p, "UDP") {
		return gateway.UDP
	}
	return gateway.TCP
}

// cleanDescription returns d cut to maxDescription bytes at a character
// boundary.
func cleanDescription(d string) string {
	d = strings.ToValidUTF8(d, "\uFFFD")
	if len(d) <= maxDescription {
		return d
	}
	d = d[:maxDescription]
	for len(d) > 0 && !utf8.ValidString(d) {
		d = d[:len(d)-1]
	}
	return d
}

// portArg reads a port argument: 402 when missing or not a number from 0 to
// 65535.
func portArg(a upnp.Action, name string) (uint16, *upnp.Fault) {
	v, ok := a.Get(name)
	if !ok {
		return 0, fault(upnp.InvalidArgs, "Invalid Args: "+name+" missing")
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
	if err != nil {
		return 0, fault(upnp.InvalidArgs, "Invalid Args: "+name+" is not a port number")
	}
	return uint16(n), nil
}

// protocolArg reads NewProtocol: 402 when missing, 601 Argument Value Out of
// Range when not TCP or UDP (PortMappingProtocol's allowed values).
func protocolArg(a upnp.Action) (gateway.Protocol, *upnp.Fault) {
	v, ok := a.Get("NewProtocol")
	if !ok {
		return 0, fault(upnp.InvalidArgs, "Invalid Args: NewProtocol missing")
	}
	switch v = strings.TrimSpace(v); {
	case strings.EqualFold(v, "TCP"):
		return gateway.TCP, nil
	case strings.EqualFold(v, "UDP"):
		return gateway.UDP, nil
	}
	return 0, fault(upnp.ArgumentValueOutOfRange, "Argument Value Out of Range: NewProtocol")
}

// boolArg reads a boolean argument (UDA 1.1 §2.5: "0", "1", "false",
// "true", "no", "yes"); missing reads as false.
func boolArg(a upnp.Action, name string) (bool, *upnp.Fault) {
	v, ok := a.Get(name)
	if !ok {
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes":
		return true, nil
	case "0", "false", "no", "":
		return false, nil
	}
	return false, fault(upnp.InvalidArgs, "Invalid Args: "+name+" is not a boolean")
}

// wildcardHost reports whether NewRemoteHost is the wildcard: missing, empty
// or "*".
func wildcardHost(a upnp.Action) bool {
	v, _ := a.Get("NewRemoteHost")
	v = strings.TrimSpace(v)
	return v == "" || v == "*"
}

// keyArgs reads the arguments that name one mapping (GetSpecificPortMappingEntry,
// DeletePortMapping): NewRemoteHost, NewExternalPort (0 is a wildcard these
// actions do not take: 402, as miniupnpd answers) and NewProtocol. A mapping
// with a specific remote host cannot exist here: 714 NoSuchEntryInArray, the
// error both actions define for a mapping that does not exist (726 is
// AddPortMapping's).
func keyArgs(a upnp.Action) (gateway.Protocol, uint16, *upnp.Fault) {
	port, f := portArg(a, "NewExternalPort")
	if f != nil {
		return 0, 0, f
	}
	if port == 0 {
		return 0, 0, fault(upnp.InvalidArgs, "Invalid Args: NewExternalPort 0")
	}
	proto, f := protocolArg(a)
	if f != nil {
		return 0, 0, f
	}
	if !wildcardHost(a) {
		return 0, 0, fault(upnp.NoSuchEntryInArray)
	}
	return proto, port, nil
}

// deletePortMapping is DeletePortMapping (WANIPConnection:1 and :2): 714
// NoSuchEntryInArray when there is no such mapping; in secure mode 606
// Action not authorized for another host's mapping.
func (s *Server) deletePortMapping(ctx context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	proto, port, f := keyArgs(rq.act)
	if f != nil {
		return nil, f
	}
	held, ok := s.table.LookupExternal(proto, port)
	if !ok {
		return nil, fault(upnp.NoSuchEntryInArray)
	}
	if !s.allowForeign.Load() && held.Internal.Addr() != rq.client {
		return nil, fault(upnp.ActionNotAuthorized, "Action not authorized: the mapping is another host's")
	}
	gone := s.table.DeleteExternalRange(ctx, proto, port, port, func(l gateway.Lease) bool { return l.Internal == held.Internal })
	if len(gone) == 0 {
		return nil, fault(upnp.NoSuchEntryInArray)
	}
	return nil, nil
}

// rangeArgs reads NewStartPort, NewEndPort, NewProtocol and NewManage:
// 733 InconsistentParameters when the start is above the end.
func rangeArgs(a upnp.Action) (proto gateway.Protocol, lo, hi uint16, manage bool, f *upnp.Fault) {
	if lo, f = portArg(a, "NewStartPort"); f != nil {
		return
	}
	if hi, f = portArg(a, "NewEndPort"); f != nil {
		return
	}
	if proto, f = protocolArg(a); f != nil {
		return
	}
	if manage, f = boolArg(a, "NewManage"); f != nil {
		return
	}
	if lo > hi {
		f = fault(upnp.InconsistentParameters, "InconsistentParameters: NewStartPort is above NewEndPort")
	}
	return
}

// deletePortMappingRange is DeletePortMappingRange (WANIPConnection:2):
// delete the mappings from NewStartPort to NewEndPort, the
// client's own with NewManage 0, every host's with NewManage 1. In secure
// mode a client may not manage other hosts' mappings: NewManage 1 is 606.
// Nothing to delete is 730 PortMappingNotFound.
func (s *Server) deletePortMappingRange(ctx context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	proto, lo, hi, manage, f := rangeArgs(rq.act)
	if f != nil {
		return nil, f
	}
	if manage && !s.allowForeign.Load() {
		return nil, fault(upnp.ActionNotAuthorized, "Action not authorized: NewManage 1")
	}
	match := func(l gateway.Lease) bool { return manage || l.Internal.Addr() == rq.client }
	gone := s.table.DeleteExternalRange(ctx, proto, lo, hi, match)
	switch {
	case len(gone) == 0:
		return nil, fault(upnp.PortMappingNotFound)
	}
	return nil, nil
}

// getSpecificPortMappingEntry is GetSpecificPortMappingEntry
// (WANIPConnection:1 and :2): 714 NoSuchEntryInArray when there is no such
// mapping.
func (s *Server) getSpecificPortMappingEntry(_ context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	proto, port, f := keyArgs(rq.act)
	if f != nil {
		return nil, f
	}
	l, ok := s.table.LookupExternal(proto, port)
	if !ok {
		return nil, fault(upnp.NoSuchEntryInArray)
	}
	return internalArgs(entryOf(l, time.Now()), nil), nil
}

// internalArgs appends to args the arguments that describe a mapping's
// internal side, in the order GetSpecificPortMappingEntry and
// GetGenericPortMappingEntry return them (WANIPConnection:2 §2.5.7, §2.5.8).
func internalArgs(m upnp.PortMapping, args []upnp.Arg) []upnp.Arg {
	return append(args,
		upnp.Arg{Name: "NewInternalPort", Value: strconv.Itoa(int(m.InternalPort))},
		upnp.Arg{Name: "NewInternalClient", Value: m.InternalClient},
		upnp.Arg{Name: "NewEnabled", Value: "1"},
		upnp.Arg{Name: "NewPortMappingDescription", Value: m.Description},
		upnp.Arg{Name: "NewLeaseDuration", Value: strconv.FormatUint(uint64(m.LeaseDuration), 10)},
	)
}

// getGenericPortMappingEntry is GetGenericPortMappingEntry
// (WANIPConnection:1 and :2): the NewPortMappingIndex-th mapping, in
// (protocol, external port) order, TCP first; 713 SpecifiedArrayIndexInvalid
// past the last one. Every lease of the table is listed, whichever protocol
// made it, since they share the external ports. See walk for how a client
// that walks the indexes while mappings come and go sees each mapping that
// stays exactly once.
func (s *Server) getGenericPortMappingEntry(_ context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	v, ok := rq.act.Get("NewPortMappingIndex")
	if !ok {
		return nil, fault(upnp.InvalidArgs, "Invalid Args: NewPortMappingIndex missing")
	}
	i, err := strconv.ParseUint(strings.TrimSpace(v), 10, 31)
	if err != nil {
		return nil, fault(upnp.InvalidArgs, "Invalid Args: NewPortMappingIndex is not an index")
	}
	l, ok := s.walk(rq.client, int(i))
	if !ok {
		return nil, fault(upnp.SpecifiedArrayIndexInvalid)
	}
	m := entryOf(l, time.Now())
	return internalArgs(m, []upnp.Arg{
		{Name: "NewRemoteHost", Value: m.RemoteHost},
		{Name: "NewExternalPort", Value: strconv.Itoa(int(m.ExternalPort))},
		{Name: "NewProtocol", Value: m.Protocol},
	}), nil
}

// getListOfPortMappings is GetListOfPortMappings (WANIPConnection:2): the
// mappings from NewStartPort to NewEndPort in port order, the
// client's own with NewManage 0, every host's with NewManage 1 (reading
// them is no more than GetGenericPortMappingEntry allows), at most
// NewNumberOfPorts of them (0: up to maxListEntries), as the
// A_ARG_TYPE_PortListing document. 733 when the start is above the end, 730
// PortMappingNotFound when there is none.
func (s *Server) getListOfPortMappings(_ context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	proto, lo, hi, manage, f := rangeArgs(rq.act)
	if f != nil {
		return nil, f
	}
	max := maxListEntries
	if v, ok := rq.act.Get("NewNumberOfPorts"); ok && strings.TrimSpace(v) != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16)
		if err != nil {
			return nil, fault(upnp.InvalidArgs, "Invalid Args: NewNumberOfPorts is not a ui2")
		}
		if n > 0 && n < maxListEntries {
			max = int(n)
		}
	}
	leases := s.table.inRange(proto, lo, hi, max, func(l gateway.Lease) bool {
		return manage || l.Internal.Addr() == rq.client
	})
	if len(leases) == 0 {
		return nil, fault(upnp.PortMappingNotFound)
	}
	now := time.Now()
	ms := make([]upnp.PortMapping, 0, len(leases))
	empty := len(upnp.AppendPortListing(nil, nil))
	size := empty
	var scratch []byte
	for _, l := range leases {
		m := entryOf(l, now)
		scratch = upnp.AppendPortListing(scratch[:0], []upnp.PortMapping{m})
		if size += len(scratch) - empty; size > maxListBytes {
			break
		}
		ms = append(ms, m)
	}
	return []upnp.Arg{{Name: upnp.ArgPortListing, Value: string(upnp.AppendPortListing(nil, ms))}}, nil
}

// entryOf returns a lease as a port-mapping entry. The lease duration is
// the seconds left (WANIPConnection:2 §2.3.16: a lease's remaining time),
// at least 1 while the lease lives, and 0 for a lease without end.
func entryOf(l gateway.Lease, now time.Time) upnp.PortMapping {
	m := upnp.PortMapping{
		ExternalPort:   l.ExternalPort,
		Protocol:       strings.ToUpper(l.Protocol.String()),
		InternalPort:   l.Internal.Port(),
		InternalClient: l.Internal.Addr().String(),
		Enabled:        true,
		Description:    l.Description,
	}
	if len(l.Filters) == 1 && l.Filters[0].Remote.IsSingleIP() {
		m.RemoteHost = l.Filters[0].Remote.Addr().String()
	}
	if m.Description == "" && l.Origin != gateway.OriginUPnP {
		// A NAT-PMP or PCP mapping has no description; say who made it.
		m.Description = strings.ToUpper(l.Origin.String())
	}
	if !l.Expires.IsZero() {
		left := l.Lifetime(now) / time.Second
		m.LeaseDuration = uint32(max(left, 1))
	}
	return m
}

// getExternalIPAddress is GetExternalIPAddress: the empty string while the
// gateway has no external address (WANIPConnection:2 §2.3.13,
// ExternalIPAddress).
func (s *Server) getExternalIPAddress(context.Context, *request) ([]upnp.Arg, *upnp.Fault) {
	return []upnp.Arg{{Name: "NewExternalIPAddress", Value: s.externalAddress()}}, nil
}

func (s *Server) externalAddress() string {
	if a := s.table.ExternalAddress(); a.IsValid() && !a.IsUnspecified() {
		return a.String()
	}
	return ""
}

// connectionStatus is ConnectionStatus (WANIPConnection:2, ConnectionStatus):
// Connected while the gateway has an external address.
func (s *Server) connectionStatus() string {
	if s.externalAddress() != "" {
		return "Connected"
	}
	return "Disconnected"
}

// getStatusInfo is GetStatusInfo (WANIPConnection:1 and :2). Uptime is the
// seconds since the server started, while connected.
func (s *Server) getStatusInfo(context.Context, *request) ([]upnp.Arg, *upnp.Fault) {
	status := s.connectionStatus()
	uptime := int64(0)
	if status == "Connected" {
		uptime = int64(time.Since(s.started) / time.Second)
	}
	return []upnp.Arg{
		{Name: "NewConnectionStatus", Value: status},
		{Name: "NewLastConnectionError", Value: "ERROR_NONE"},
		{Name: "NewUptime", Value: strconv.FormatInt(min(uptime, 1<<32-1), 10)},
	}, nil
}

// getConnectionTypeInfo is GetConnectionTypeInfo (WANIPConnection:1 and
// :2): a routed (NAT) connection.
func (s *Server) getConnectionTypeInfo(context.Context, *request) ([]upnp.Arg, *upnp.Fault) {
	return []upnp.Arg{
		{Name: "NewConnectionType", Value: "IP_Routed"},
		{Name: "NewPossibleConnectionTypes", Value: "IP_Routed"},
	}, nil
}

// getNATRSIPStatus is GetNATRSIPStatus (WANIPConnection:1 and :2): NAT,
// no RSIP.
func (s *Server) getNATRSIPStatus(context.Context, *request) ([]upnp.Arg, *upnp.Fault) {
	return []upnp.Arg{
		{Name: "NewRSIPAvailable", Value: "0"},
		{Name: "NewNATEnabled", Value: "1"},
	}, nil
}

// setConnectionType is SetConnectionType (WANIPConnection:1 and :2). The WAN
// connection is the router's configuration, not a LAN client's: 606.
func (s *Server) setConnectionType(context.Context, *request) ([]upnp.Arg, *upnp.Fault) {
	return nil, fault(upnp.ActionNotAuthorized)
}

// notAuthorized answers RequestConnection and ForceTermination
// (WANIPConnection:1 and :2): a LAN client may not bring the WAN
// connection up or down.
func (s *Server) notAuthorized(context.Context, *request) ([]upnp.Arg, *upnp.Fault) {
	return nil, fault(upnp.ActionNotAuthorized)
}

// linkStats reads the WAN link's figures.
func (s *Server) linkStats() (LinkStats, error) {
	if s.cfg.LinkStats == nil {
		return LinkStats{}, errors.New("upnpsrv: no link statistics")
	}
	return s.cfg.LinkStats()
}

// physicalLinkStatus is PhysicalLinkStatus (WANCommonInterfaceConfig:1):
// the link's state, or whether there is an external address when
// the link cannot be read.
func (s *Server) physicalLinkStatus() string {
	st, err := s.linkStats()
	if err == nil && st.Up || err != nil && s.externalAddress() != "" {
		return "Up"
	}
	return "Down"
}

// getCommonLinkProperties is GetCommonLinkProperties
// (WANCommonInterfaceConfig:1).
func (s *Server) getCommonLinkProperties(context.Context, *request) ([]upnp.Arg, *upnp.Fault) {
	st, _ := s.linkStats()
	return []upnp.Arg{
		{Name: "NewWANAccessType", Value: "Ethernet"},
		{Name: "NewLayer1UpstreamMaxBitRate", Value: strconv.FormatUint(uint64(st.MaxBitRateUp), 10)},
		{Name: "NewLayer1DownstreamMaxBitRate", Value: strconv.FormatUint(uint64(st.MaxBitRateDown), 10)},
		{Name: "NewPhysicalLinkStatus", Value: s.physicalLinkStatus()},
	}, nil
}

// counter returns the action that answers one of the link's counters
// (WANCommonInterfaceConfig:1, GetTotalBytesSent and the like). They are ui4
// and roll over to 0 past 2^32-1: the kernel's 64-bit figure modulo 2^32. Without
// figures: 501 Action Failed.
func counter(get func(LinkStats) uint64) actionFunc {
	return func(s *Server, _ context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
		st, err := s.linkStats()
		if err != nil {
			s.log.Debug("link statistics", "err", err)
			return nil, fault(upnp.ActionFailed)
		}
		name := "New" + strings.TrimPrefix(rq.act.Name, "Get")
		return []upnp.Arg{{Name: name, Value: strconv.FormatUint(get(st)&0xFFFFFFFF, 10)}}, nil
	}
}

// defaultConnectionService is DefaultConnectionService (Layer3Forwarding:1):
// "uuid:WANConnectionDevice-UDN:WANConnectionDevice:v,serviceId".
func (s *Server) defaultConnectionService() string {
	return s.udnWCD + ":WANConnectionDevice:" + strconv.Itoa(s.cfg.Version) + "," + serviceIDWANIP
}

// getDefaultConnectionService is GetDefaultConnectionService
// (Layer3Forwarding:1).
func (s *Server) getDefaultConnectionService(context.Context, *request) ([]upnp.Arg, *upnp.Fault) {
	return []upnp.Arg{{Name: "NewDefaultConnectionService", Value: s.defaultConnectionService()}}, nil
}

// setDefaultConnectionService is SetDefaultConnectionService
// (Layer3Forwarding:1). There is one connection service; naming it
// succeeds, naming another device is 720 InvalidDeviceUUID and another
// service 721 InvalidServiceID.
func (s *Server) setDefaultConnectionService(_ context.Context, rq *request) ([]upnp.Arg, *upnp.Fault) {
	v, ok := rq.act.Get("NewDefaultConnectionService")
	if !ok {
		return nil, fault(upnp.InvalidArgs, "Invalid Args: NewDefaultConnectionService missing")
	}
	dev, svc, _ := strings.Cut(strings.TrimSpace(v), ",")
	if !strings.HasPrefix(dev, s.udnWCD) {
		return nil, fault(720, "InvalidDeviceUUID")
	}
	if svc != serviceIDWANIP {
		return nil, fault(721, "InvalidServiceID")
	}
	return nil, nil
}

// queryStateVariable is QueryStateVariable (UDA 1.0 §3.3.1, deprecated by
// UDA 1.1 but sent by Windows XP): the value of an evented variable; 404
// Invalid Var for any other.
func (s *Server) queryStateVariable(svc *service, a *upnp.Action) ([]upnp.Arg, *upnp.Fault) {
	name, _ := a.Get("varName")
	for _, p := range svc.evented(s) {
		if p.name == strings.TrimSpace(name) {
			return []upnp.Arg{{Name: "return", Value: p.value}}, nil
		}
	}
	return nil, fault(404, "Invalid Var")
}
