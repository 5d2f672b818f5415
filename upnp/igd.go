package upnp

import (
	"net/netip"
	"strconv"
	"strings"
)

// Actions of WANIPConnection:1 and :2 (and WANPPPConnection:1) that this
// package builds and decodes.
const (
	ActionAddPortMapping              = "AddPortMapping"
	ActionAddAnyPortMapping           = "AddAnyPortMapping"
	ActionDeletePortMapping           = "DeletePortMapping"
	ActionDeletePortMappingRange      = "DeletePortMappingRange"
	ActionGetSpecificPortMappingEntry = "GetSpecificPortMappingEntry"
	ActionGetGenericPortMappingEntry  = "GetGenericPortMappingEntry"
	ActionGetListOfPortMappings       = "GetListOfPortMappings"
	ActionGetExternalIPAddress        = "GetExternalIPAddress"
	ActionGetStatusInfo               = "GetStatusInfo"
)

// Argument names of the port-mapping actions (WANIPConnection:1 and :2
// service templates).
const (
	argRemoteHost     = "NewRemoteHost"
	argExternalPort   = "NewExternalPort"
	argProtocol       = "NewProtocol"
	argInternalPort   = "NewInternalPort"
	argInternalClient = "NewInternalClient"
	argEnabled        = "NewEnabled"
	argDescription    = "NewPortMappingDescription"
	argLeaseDuration  = "NewLeaseDuration"
	argReservedPort   = "NewReservedPort"
	argIndex          = "NewPortMappingIndex"
	argStartPort      = "NewStartPort"
	argEndPort        = "NewEndPort"
	argManage         = "NewManage"
	argNumberOfPorts  = "NewNumberOfPorts"
	argExternalIP     = "NewExternalIPAddress"
	argStatus         = "NewConnectionStatus"
	// ArgPortListing is the out argument of GetListOfPortMappings, an XML
	// document ParsePortListing reads.
	ArgPortListing = "NewPortListing"
)

// MaxLeaseDuration is the longest PortMappingLeaseDuration of
// WANIPConnection:2, one week: its allowed range is 0 to 604800 seconds,
// and a control point asking for 0 (infinite) is to get this instead.
const MaxLeaseDuration = 604800

// PortMapping is an entry of a gateway's port-mapping table, as the
// port-mapping actions of WANIPConnection:1 and :2 carry it.
type PortMapping struct {
	// RemoteHost restricts the mapping to one remote address; "" is any
	// (the wildcard, and what most gateways support).
	RemoteHost string
	// ExternalPort is the port on the gateway's external address; 0 is a
	// wildcard in IGD:1 and refused by AddPortMapping in IGD:2 (716).
	ExternalPort uint16
	// Protocol is "TCP" or "UDP".
	Protocol string
	// InternalPort is the port on the internal client.
	InternalPort uint16
	// InternalClient is the internal host's address.
	InternalClient string
	// Enabled says whether the mapping forwards.
	Enabled bool
	// Description is free text shown in the router's interface.
	Description string
	// LeaseDuration is the lease in seconds; 0 is a permanent mapping on
	// IGD:1, and MaxLeaseDuration on IGD:2.
	LeaseDuration uint32
}

// args returns the eight arguments of AddPortMapping and AddAnyPortMapping
// in the order of their service templates.
func (m PortMapping) args() []Arg {
	return []Arg{
		{argRemoteHost, m.RemoteHost},
		{argExternalPort, strconv.Itoa(int(m.ExternalPort))},
		{argProtocol, m.Protocol},
		{argInternalPort, strconv.Itoa(int(m.InternalPort))},
		{argInternalClient, m.InternalClient},
		{argEnabled, boolArg(m.Enabled)},
		{argDescription, m.Description},
		{argLeaseDuration, strconv.FormatUint(uint64(m.LeaseDuration), 10)},
	}
}

// boolArg writes a boolean argument as "1" or "0" (UDA 1.1 §2.5, boolean
// "1" and "0" are what every device reads).
func boolArg(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

// AddPortMapping returns the AddPortMapping action of serviceType
// (WANIPConnection:1 and :2, WANPPPConnection:1) with its arguments in the
// template's order: NewRemoteHost, NewExternalPort, NewProtocol,
// NewInternalPort, NewInternalClient, NewEnabled ("1" or "0"),
// NewPortMappingDescription, NewLeaseDuration. The answer has no
// arguments.
func AddPortMapping(serviceType string, m PortMapping) Action {
	return Action{ServiceType: serviceType, Name: ActionAddPortMapping, Args: m.args()}
}

// AddAnyPortMapping returns the AddAnyPortMapping action of WANIPConnection:2,
// with the arguments of AddPortMapping: the gateway maps m.ExternalPort or,
// when it is taken or 0, a port of its choice, which ReservedPort reads from
// the answer.
func AddAnyPortMapping(serviceType string, m PortMapping) Action {
	return Action{ServiceType: serviceType, Name: ActionAddAnyPortMapping, Args: m.args()}
}

// DeletePortMapping returns the DeletePortMapping action: NewRemoteHost,
// NewExternalPort, NewProtocol.
func DeletePortMapping(serviceType, remoteHost string, externalPort uint16, protocol string) Action {
	return Action{ServiceType: serviceType, Name: ActionDeletePortMapping, Args: []Arg{
		{argRemoteHost, remoteHost},
		{argExternalPort, strconv.Itoa(int(externalPort))},
		{argProtocol, protocol},
	}}
}

// DeletePortMappingRange returns the DeletePortMappingRange action of
// WANIPConnection:2: NewStartPort, NewEndPort, NewProtocol, NewManage ("1"
// asks to delete other clients' mappings too, where allowed).
func DeletePortMappingRange(serviceType string, start, end uint16, protocol string, manage bool) Action {
	return Action{ServiceType: serviceType, Name: ActionDeletePortMappingRange, Args: []Arg{
		{argStartPort, strconv.Itoa(int(start))},
		{argEndPort, strconv.Itoa(int(end))},
		{argProtocol, protocol},
		{argManage, boolArg(manage)},
	}}
}

// GetSpecificPortMappingEntry returns the GetSpecificPortMappingEntry
// action: NewRemoteHost, NewExternalPort, NewProtocol. SpecificEntry reads
// the answer.
func GetSpecificPortMappingEntry(serviceType, remoteHost string, externalPort uint16, protocol string) Action {
	return Action{ServiceType: serviceType, Name: ActionGetSpecificPortMappingEntry, Args: []Arg{
		{argRemoteHost, remoteHost},
		{argExternalPort, strconv.Itoa(int(externalPort))},
		{argProtocol, protocol},
	}}
}

// GetGenericPortMappingEntry returns the GetGenericPortMappingEntry action:
// NewPortMappingIndex, from 0. GenericEntry reads the answer; past the last
// entry the gateway answers 713 SpecifiedArrayIndexInvalid.
func GetGenericPortMappingEntry(serviceType string, index int) Action {
	return Action{ServiceType: serviceType, Name: ActionGetGenericPortMappingEntry, Args: []Arg{
		{argIndex, strconv.Itoa(index)},
	}}
}

// GetListOfPortMappings returns the GetListOfPortMappings action of
// WANIPConnection:2: NewStartPort, NewEndPort, NewProtocol, NewManage,
// NewNumberOfPorts (max, 0 for no limit). ParsePortListing reads the
// answer's NewPortListing.
func GetListOfPortMappings(serviceType string, start, end uint16, protocol string, manage bool, max int) Action {
	return Action{ServiceType: serviceType, Name: ActionGetListOfPortMappings, Args: []Arg{
		{argStartPort, strconv.Itoa(int(start))},
		{argEndPort, strconv.Itoa(int(end))},
		{argProtocol, protocol},
		{argManage, boolArg(manage)},
		{argNumberOfPorts, strconv.Itoa(max)},
	}}
}

// GetExternalIPAddress returns the GetExternalIPAddress action, without
// arguments. ExternalIPAddress reads the answer.
func GetExternalIPAddress(serviceType string) Action {
	return Action{ServiceType: serviceType, Name: ActionGetExternalIPAddress}
}

// GetStatusInfo returns the GetStatusInfo action, without arguments.
// StatusInfo reads the answer.
func GetStatusInfo(serviceType string) Action {
	return Action{ServiceType: serviceType, Name: ActionGetStatusInfo}
}

// ArgError is an argument of an action or response that is missing or whose
// value does not have its type. errors.Is(err, ErrMalformed) holds for it.
type ArgError struct {
	// Entry names the element holding the argument when it is not the
	// action itself ("PortMappingEntry 3" in a port listing); usually "".
	Entry string
	// Name is the argument's name.
	Name string
	// Value is the value received; "" when missing.
	Value string
	// Problem says what is wrong: "missing", "not a port number", ….
	Problem string
}

// Error returns a message such as `upnp: argument NewExternalPort "x": not
// a port number`.
func (e *ArgError) Error() string {
	var b strings.Builder
	b.WriteString("upnp: ")
	if e.Entry != "" {
		b.WriteString(e.Entry)
		b.WriteString(": ")
	}
	b.WriteString("argument ")
	b.WriteString(e.Name)
	if e.Value != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(truncate(e.Value)))
	}
	b.WriteString(": ")
	b.WriteString(e.Problem)
	return b.String()
}

// Unwrap returns ErrMalformed.
func (e *ArgError) Unwrap() error { return ErrMalformed }

// Problems an ArgError reports.
const (
	problemMissing = "missing"
	problemPort    = "not a port number"
	problemUint32  = "not a number from 0 to 4294967295"
	problemBool    = "not a boolean"
	problemAddr    = "not an IP address"
	problemZero    = "zero"
)

// argReader reads the arguments of one action or response, or one entry of
// a port listing, and remembers the first problem.
type argReader struct {
	get   func(name string) (string, bool)
	entry string
	err   *ArgError
}

// fail records a problem with argument name unless one is recorded.
func (r *argReader) fail(name, value, problem string) {
	if r.err == nil {
		r.err = &ArgError{Entry: r.entry, Name: name, Value: value, Problem: problem}
	}
}

// str returns an argument's value with white space trimmed; a missing
// required argument is a problem, a missing optional one is "".
func (r *argReader) str(name string, required bool) (string, bool) {
	v, ok := r.get(name)
	if !ok {
		if required {
			r.fail(name, "", problemMissing)
		}
		return "", false
	}
	return strings.TrimSpace(v), true
}

// port reads a ui2 port number.
func (r *argReader) port(name string, required bool) uint16 {
	v, ok := r.str(name, required)
	if !ok {
		return 0
	}
	n, ok := parseUint(v, 65535)
	if !ok {
		r.fail(name, v, problemPort)
	}
	return uint16(n)
}

// uint32 reads a ui4.
func (r *argReader) uint32(name string, required bool) uint32 {
	v, ok := r.str(name, required)
	if !ok {
		return 0
	}
	n, ok := parseUint(v, 1<<32-1)
	if !ok {
		r.fail(name, v, problemUint32)
	}
	return uint32(n)
}

// bool reads a boolean, def when it is optional and missing.
func (r *argReader) bool(name string, required, def bool) bool {
	v, ok := r.str(name, required)
	if !ok {
		return def
	}
	b, ok := parseBool(v)
	if !ok {
		r.fail(name, v, problemBool)
	}
	return b
}

// parseUint reads a decimal number from 0 to max: digits only, no sign.
func parseUint(s string, max uint64) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n > max {
			return 0, false
		}
	}
	return n, true
}

// parseBool reads a UPnP boolean (UDA 1.1 §2.5, "0, false, or no for false;
// 1, true, or yes for true"), in any case.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "1", "true", "yes":
		return true, true
	case "0", "false", "no":
		return false, true
	}
	return false, false
}

// SpecificEntry decodes the answer to GetSpecificPortMappingEntry (from
// WANIPConnection:1 on), which holds only the internal side: NewInternalPort
// and NewInternalClient (required), NewEnabled (true when missing),
// NewPortMappingDescription and NewLeaseDuration (0 when missing).
// externalPort and protocol, those of the request, fill the rest; RemoteHost
// stays "". Values may be surrounded by white space; booleans may be
// 1/0/true/false/yes/no; a port or lease out of range or not a number is an
// *ArgError naming the argument.
func SpecificEntry(r Response, externalPort uint16, protocol string) (PortMapping, error) {
	a := argReader{get: r.Get}
	m := PortMapping{
		ExternalPort:   externalPort,
		Protocol:       strings.ToUpper(strings.TrimSpace(protocol)),
		InternalPort:   a.port(argInternalPort, true),
		Enabled:        a.bool(argEnabled, false, true),
		LeaseDuration:  a.uint32(argLeaseDuration, false),
		InternalClient: a.strValue(argInternalClient, true),
		Description:    a.strValue(argDescription, false),
	}
	if a.err != nil {
		return PortMapping{}, a.err
	}
	return m, nil
}

// strValue is str without the presence flag.
func (r *argReader) strValue(name string, required bool) string {
	v, _ := r.str(name, required)
	return v
}

// GenericEntry decodes the answer to GetGenericPortMappingEntry: all eight
// fields, NewExternalPort, NewProtocol, NewInternalPort and
// NewInternalClient required, the others as in SpecificEntry. The protocol
// is upper-cased.
func GenericEntry(r Response) (PortMapping, error) {
	return entry(argReader{get: r.Get}, argDescription, argLeaseDuration)
}

// entry reads a full port-mapping entry; desc and lease name the last two
// arguments, which a port listing names differently.
func entry(a argReader, desc, lease string) (PortMapping, error) {
	m := PortMapping{
		RemoteHost:     a.strValue(argRemoteHost, false),
		ExternalPort:   a.port(argExternalPort, true),
		Protocol:       strings.ToUpper(a.strValue(argProtocol, true)),
		InternalPort:   a.port(argInternalPort, true),
		InternalClient: a.strValue(argInternalClient, true),
		Enabled:        a.bool(argEnabled, false, true),
		Description:    a.strValue(desc, false),
		LeaseDuration:  a.uint32(lease, false),
	}
	if a.err == nil && m.Protocol == "" {
		a.fail(argProtocol, "", problemMissing)
	}
	if a.err != nil {
		return PortMapping{}, a.err
	}
	return m, nil
}

// ReservedPort decodes the answer to AddAnyPortMapping (WANIPConnection:2):
// NewReservedPort, the external port the gateway mapped, never 0.
func ReservedPort(r Response) (uint16, error) {
	a := argReader{get: r.Get}
	p := a.port(argReservedPort, true)
	if a.err == nil && p == 0 {
		a.fail(argReservedPort, "0", problemZero)
	}
	if a.err != nil {
		return 0, a.err
	}
	return p, nil
}

// ExternalIPAddress decodes the answer to GetExternalIPAddress:
// NewExternalIPAddress. An empty value or 0.0.0.0 means the gateway has no
// external address (WANIPConnection:2, ExternalIPAddress: "the empty string"
// when it "could not be retrieved"; miniupnpd also sends it for a reserved
// address): the zero netip.Addr and a nil error. An IPv4-mapped address is
// unmapped.
func ExternalIPAddress(r Response) (netip.Addr, error) {
	a := argReader{get: r.Get}
	v, _ := a.str(argExternalIP, true)
	if a.err != nil {
		return netip.Addr{}, a.err
	}
	if v == "" || v == "0.0.0.0" {
		return netip.Addr{}, nil
	}
	addr, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, &ArgError{Name: argExternalIP, Value: v, Problem: problemAddr}
	}
	return addr.Unmap(), nil
}

// StatusInfo decodes the answer to GetStatusInfo: NewConnectionStatus,
// "Connected" when the WAN connection is up ("Unconfigured", "Connecting",
// "PendingDisconnect", "Disconnecting", "Disconnected" otherwise), with
// white space trimmed.
func StatusInfo(r Response) (status string, err error) {
	a := argReader{get: r.Get}
	v, _ := a.str(argStatus, true)
	if a.err != nil {
		return "", a.err
	}
	return v, nil
}

// PortMappingArgs decodes the arguments of an AddPortMapping or
// AddAnyPortMapping request on the device side, checking them as the
// WANIPConnection:2 template does; a refusal is a *Fault whose description
// names the argument, ready for AppendFaultEnvelope:
//
//   - another action: 401 Invalid Action;
//   - NewExternalPort, NewProtocol or NewInternalPort missing, a port that
//     is not a number from 0 to 65535, a lease that is not a ui4, an
//     unreadable boolean, a NewRemoteHost or NewInternalClient that is not
//     an IP address: 402 Invalid Args (UDA 1.1 §3.2.2, "one or more in args
//     are of the wrong data type"; miniupnpd answers 402 for an
//     unresolvable internal client too);
//   - NewProtocol other than TCP or UDP, in any case: 601 Argument Value
//     Out of Range ("not in the allowed value list");
//   - NewExternalPort 0 in AddPortMapping: 716
//     WildCardNotPermittedInExtPort (AddAnyPortMapping takes 0 as "any");
//   - NewInternalPort 0: 732 WildCardNotPermittedInIntPort.
//
// It is lenient where miniupnpd, the gateway control points are tested
// against, is: argument order and unknown extra arguments are not checked;
// NewRemoteHost "*" is the wildcard ""; a missing NewEnabled reads as true,
// a missing NewPortMappingDescription as "" and a missing NewLeaseDuration
// as 0. A missing or empty NewInternalClient is left "" for the front-end to
// replace with the requesting host's address, as miniupnpd does for the
// clients of its issue 236. Whether the lease fits the policy (and
// MaxLeaseDuration), and whether the client may map for that address, are
// the front-end's decisions, not the wire format's.
func PortMappingArgs(a Action) (PortMapping, error) {
	if a.Name != ActionAddPortMapping && a.Name != ActionAddAnyPortMapping {
		return PortMapping{}, &Fault{Code: int(InvalidAction),
			Description: "Invalid Action (" + truncate(a.Name) + " is not AddPortMapping or AddAnyPortMapping)"}
	}
	r := argReader{get: a.Get}
	m := PortMapping{
		RemoteHost:     r.strValue(argRemoteHost, false),
		ExternalPort:   r.port(argExternalPort, true),
		Protocol:       strings.ToUpper(r.strValue(argProtocol, true)),
		InternalPort:   r.port(argInternalPort, true),
		InternalClient: r.strValue(argInternalClient, false),
		Enabled:        r.bool(argEnabled, false, true),
		Description:    r.strValue(argDescription, false),
		LeaseDuration:  r.uint32(argLeaseDuration, false),
	}
	if m.RemoteHost == "*" {
		m.RemoteHost = ""
	}
	if r.err == nil && m.RemoteHost != "" && !isAddr(m.RemoteHost) {
		r.fail(argRemoteHost, m.RemoteHost, problemAddr)
	}
	if r.err == nil && m.InternalClient != "" && !isAddr(m.InternalClient) {
		r.fail(argInternalClient, m.InternalClient, problemAddr)
	}
	switch {
	case r.err != nil:
		return PortMapping{}, argFault(InvalidArgs, r.err)
	case m.Protocol != "TCP" && m.Protocol != "UDP":
		return PortMapping{}, argFault(ArgumentValueOutOfRange,
			&ArgError{Name: argProtocol, Value: m.Protocol, Problem: "not TCP or UDP"})
	case m.ExternalPort == 0 && a.Name == ActionAddPortMapping:
		return PortMapping{}, argFault(WildCardNotPermittedInExtPort,
			&ArgError{Name: argExternalPort, Value: "0", Problem: "wildcard not permitted"})
	case m.InternalPort == 0:
		return PortMapping{}, argFault(WildCardNotPermittedInIntPort,
			&ArgError{Name: argInternalPort, Value: "0", Problem: "wildcard not permitted"})
	}
	return m, nil
}

// argFault returns a *Fault with code whose description is the code's name
// and, in parentheses, the argument and its problem:
// "Invalid Args (NewExternalPort "x": not a port number)".
func argFault(code ErrorCode, e *ArgError) *Fault {
	d := code.name() + " (" + e.Name
	if e.Value != "" {
		d += " " + strconv.Quote(truncate(e.Value))
	}
	return &Fault{Code: int(code), Description: d + ": " + e.Problem + ")"}
}

// isAddr reports whether s is an IPv4 or IPv6 address.
func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
