package upnp

import (
	"net/netip"
	"strconv"
	"strings"
)

// ServiceWANIPv6FC1 is the service type of WANIPv6FirewallControl:1, the
// IGD:2 service that opens IPv6 firewall pinholes, embedded in the
// WANConnectionDevice:2 beside WANIPConnection:2.
const ServiceWANIPv6FC1 = "urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"

// Actions of WANIPv6FirewallControl:1.
const (
	ActionGetFirewallStatus         = "GetFirewallStatus"
	ActionGetOutboundPinholeTimeout = "GetOutboundPinholeTimeout"
	ActionAddPinhole                = "AddPinhole"
	ActionUpdatePinhole             = "UpdatePinhole"
	ActionDeletePinhole             = "DeletePinhole"
	ActionGetPinholePackets         = "GetPinholePackets"
	ActionCheckPinholeWorking       = "CheckPinholeWorking"
)

// Argument names of WANIPv6FirewallControl:1 (its actions' argument
// lists). Unlike WANIPConnection's, they carry no "New" prefix, except
// UpdatePinhole's NewLeaseTime.
const (
	ArgRemoteHost             = "RemoteHost"
	ArgRemotePort             = "RemotePort"
	ArgInternalClient         = "InternalClient"
	ArgInternalPort           = "InternalPort"
	ArgProtocol               = "Protocol"
	ArgLeaseTime              = "LeaseTime"
	ArgNewLeaseTime           = "NewLeaseTime"
	ArgUniqueID               = "UniqueID"
	ArgFirewallEnabled        = "FirewallEnabled"
	ArgInboundPinholeAllowed  = "InboundPinholeAllowed"
	ArgOutboundPinholeTimeout = "OutboundPinholeTimeout"
	ArgPinholePackets         = "PinholePackets"
	ArgIsWorking              = "IsWorking"
)

// Protocol numbers of A_ARG_TYPE_Protocol (WANIPv6FirewallControl:1): the
// IANA protocol number, 65535 for any protocol.
const (
	PinholeTCP         uint16 = 6
	PinholeUDP         uint16 = 17
	PinholeAnyProtocol uint16 = 65535
)

// MaxPinholeLeaseTime is the upper bound of A_ARG_TYPE_LeaseTime, one day;
// its allowed range is 1 to 86400 seconds.
const MaxPinholeLeaseTime = 86400

// Pinhole is the 5-tuple and lease of an IPv6 firewall pinhole, as
// AddPinhole and GetOutboundPinholeTimeout carry it.
type Pinhole struct {
	// RemoteHost admits traffic from this IPv6 address only; the zero
	// Addr is any (the wildcard, "" on the wire; "*" is read as it too).
	RemoteHost netip.Addr
	// RemotePort admits traffic from this port only; 0 is any.
	RemotePort uint16
	// InternalClient is the LAN host's IPv6 address. The zero Addr is
	// the wildcard, which AddPinhole refuses (708).
	InternalClient netip.Addr
	// InternalPort is the LAN host's port; 0 is the wildcard.
	InternalPort uint16
	// Protocol is the IANA protocol number; PinholeAnyProtocol is any.
	Protocol uint16
	// LeaseTime is the pinhole's lifetime in seconds, 1 to
	// MaxPinholeLeaseTime (AddPinhole only).
	LeaseTime uint32
}

// args returns p's arguments in the order of the service template's
// argument list, with LeaseTime when lease is set.
func (p Pinhole) args(lease bool) []Arg {
	addr := func(a netip.Addr) string {
		if !a.IsValid() {
			return ""
		}
		return a.String()
	}
	args := []Arg{
		{Name: ArgRemoteHost, Value: addr(p.RemoteHost)},
		{Name: ArgRemotePort, Value: strconv.Itoa(int(p.RemotePort))},
		{Name: ArgInternalClient, Value: addr(p.InternalClient)},
		{Name: ArgInternalPort, Value: strconv.Itoa(int(p.InternalPort))},
		{Name: ArgProtocol, Value: strconv.Itoa(int(p.Protocol))},
	}
	if lease {
		args = append(args, Arg{Name: ArgLeaseTime, Value: strconv.FormatUint(uint64(p.LeaseTime), 10)})
	}
	return args
}

// GetFirewallStatus returns the GetFirewallStatus action. FirewallStatus
// reads the answer.
func GetFirewallStatus() Action {
	return Action{ServiceType: ServiceWANIPv6FC1, Name: ActionGetFirewallStatus}
}

// GetOutboundPinholeTimeout returns the GetOutboundPinholeTimeout action
// for p (its LeaseTime is not sent). OutboundPinholeTimeout reads the
// answer.
func GetOutboundPinholeTimeout(p Pinhole) Action {
	return Action{ServiceType: ServiceWANIPv6FC1, Name: ActionGetOutboundPinholeTimeout, Args: p.args(false)}
}

// AddPinhole returns the AddPinhole action for p. UniqueID reads the
// answer.
func AddPinhole(p Pinhole) Action {
	return Action{ServiceType: ServiceWANIPv6FC1, Name: ActionAddPinhole, Args: p.args(true)}
}

// UpdatePinhole returns the UpdatePinhole action: pinhole id gets a new
// lease of leaseTime seconds.
func UpdatePinhole(id uint16, leaseTime uint32) Action {
	return Action{ServiceType: ServiceWANIPv6FC1, Name: ActionUpdatePinhole, Args: []Arg{
		{Name: ArgUniqueID, Value: strconv.Itoa(int(id))},
		{Name: ArgNewLeaseTime, Value: strconv.FormatUint(uint64(leaseTime), 10)},
	}}
}

// DeletePinhole returns the DeletePinhole action.
func DeletePinhole(id uint16) Action { return idAction(ActionDeletePinhole, id) }

// GetPinholePackets returns the GetPinholePackets action. PinholePackets
// reads the answer.
func GetPinholePackets(id uint16) Action { return idAction(ActionGetPinholePackets, id) }

// CheckPinholeWorking returns the CheckPinholeWorking action. IsWorking
// reads the answer.
func CheckPinholeWorking(id uint16) Action { return idAction(ActionCheckPinholeWorking, id) }

func idAction(name string, id uint16) Action {
	return Action{ServiceType: ServiceWANIPv6FC1, Name: name, Args: []Arg{{Name: ArgUniqueID, Value: strconv.Itoa(int(id))}}}
}

// PinholeArgs decodes the arguments of an AddPinhole or
// GetOutboundPinholeTimeout request on the device side; a refusal is a
// *Fault whose description names the argument:
//
//   - another action: 401 Invalid Action;
//   - RemotePort, InternalPort or Protocol missing or not a ui2, LeaseTime
//     (AddPinhole) missing or not a ui4, RemoteHost or InternalClient
//     present but neither a wildcard nor an IPv6 address (an IPv4 address
//     or a host name included): 402 Invalid Args;
//   - LeaseTime outside 1 to MaxPinholeLeaseTime: 601 Argument Value Out
//     of Range (A_ARG_TYPE_LeaseTime's allowed range; miniupnpd answers
//     402).
//
// An empty or missing RemoteHost, or "*", is the wildcard: the zero Addr
// (miniupnpd reads an empty RemoteHost as the text "(null)"). An empty,
// missing or "*" InternalClient is the zero Addr. Protocol is a number;
// "TCP" and "UDP" in any case are read as 6 and 17, since upnpc -G passes
// its protocol argument through unchanged. Whether this gateway supports
// the protocol (705), a protocol (707), internal port (706) or internal
// client (708) wildcard, and whether the client may open a pinhole for that
// address (606), are the front-end's decisions. Argument order and extra
// arguments are not checked.
func PinholeArgs(a Action) (Pinhole, error) {
	if a.Name != ActionAddPinhole && a.Name != ActionGetOutboundPinholeTimeout {
		return Pinhole{}, &Fault{Code: int(InvalidAction),
			Description: "Invalid Action (" + truncate(a.Name) + " is not AddPinhole or GetOutboundPinholeTimeout)"}
	}
	r := argReader{get: a.Get}
	p := Pinhole{
		RemoteHost:     r.ipv6(ArgRemoteHost),
		RemotePort:     r.port(ArgRemotePort, true),
		InternalClient: r.ipv6(ArgInternalClient),
		InternalPort:   r.port(ArgInternalPort, true),
		Protocol:       r.protocol(ArgProtocol),
	}
	if a.Name == ActionAddPinhole {
		p.LeaseTime = r.uint32(ArgLeaseTime, true)
	}
	switch {
	case r.err != nil:
		return Pinhole{}, argFault(InvalidArgs, r.err)
	case a.Name == ActionAddPinhole && (p.LeaseTime < 1 || p.LeaseTime > MaxPinholeLeaseTime):
		return Pinhole{}, argFault(ArgumentValueOutOfRange, &ArgError{Name: ArgLeaseTime,
			Value: strconv.FormatUint(uint64(p.LeaseTime), 10), Problem: "not from 1 to 86400"})
	}
	return p, nil
}

// UniqueIDArg decodes the UniqueID of an UpdatePinhole, DeletePinhole,
// GetPinholePackets or CheckPinholeWorking request: 402 Invalid Args when
// missing or not a ui2.
func UniqueIDArg(a Action) (uint16, error) {
	r := argReader{get: a.Get}
	id := r.port(ArgUniqueID, true)
	if r.err != nil {
		return 0, argFault(InvalidArgs, r.err)
	}
	return id, nil
}

// NewLeaseTimeArg decodes UpdatePinhole's NewLeaseTime: 402 Invalid Args
// when missing or not a ui4, 601 Argument Value Out of Range outside 1 to
// MaxPinholeLeaseTime.
func NewLeaseTimeArg(a Action) (uint32, error) {
	r := argReader{get: a.Get}
	v := r.uint32(ArgNewLeaseTime, true)
	switch {
	case r.err != nil:
		return 0, argFault(InvalidArgs, r.err)
	case v < 1 || v > MaxPinholeLeaseTime:
		return 0, argFault(ArgumentValueOutOfRange, &ArgError{Name: ArgNewLeaseTime,
			Value: strconv.FormatUint(uint64(v), 10), Problem: "not from 1 to 86400"})
	}
	return v, nil
}

// ipv6 reads an optional IPv6 address argument: missing, empty and "*" are
// the zero Addr; a zone is dropped.
func (r *argReader) ipv6(name string) netip.Addr {
	v, _ := r.str(name, false)
	if v == "" || v == "*" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is6() || a.Is4In6() {
		r.fail(name, v, "not an IPv6 address")
		return netip.Addr{}
	}
	return a.WithZone("")
}

// protocol reads A_ARG_TYPE_Protocol: a ui2, or TCP or UDP by name.
func (r *argReader) protocol(name string) uint16 {
	v, ok := r.str(name, true)
	if !ok {
		return 0
	}
	switch strings.ToUpper(v) {
	case "TCP":
		return PinholeTCP
	case "UDP":
		return PinholeUDP
	}
	n, ok := parseUint(v, 65535)
	if !ok {
		r.fail(name, v, "not a protocol number")
	}
	return uint16(n)
}

// UniqueID decodes the answer to AddPinhole.
func UniqueID(r Response) (uint16, error) {
	a := argReader{get: r.Get}
	id := a.port(ArgUniqueID, true)
	if a.err != nil {
		return 0, a.err
	}
	return id, nil
}

// FirewallStatus decodes the answer to GetFirewallStatus.
func FirewallStatus(r Response) (enabled, inboundAllowed bool, err error) {
	a := argReader{get: r.Get}
	enabled = a.bool(ArgFirewallEnabled, true, false)
	inboundAllowed = a.bool(ArgInboundPinholeAllowed, true, false)
	if a.err != nil {
		return false, false, a.err
	}
	return enabled, inboundAllowed, nil
}

// OutboundPinholeTimeout decodes the answer to GetOutboundPinholeTimeout,
// in seconds.
func OutboundPinholeTimeout(r Response) (uint32, error) {
	return uint32Answer(r, ArgOutboundPinholeTimeout)
}

// PinholePackets decodes the answer to GetPinholePackets.
func PinholePackets(r Response) (uint32, error) { return uint32Answer(r, ArgPinholePackets) }

// IsWorking decodes the answer to CheckPinholeWorking.
func IsWorking(r Response) (bool, error) {
	a := argReader{get: r.Get}
	w := a.bool(ArgIsWorking, true, false)
	if a.err != nil {
		return false, a.err
	}
	return w, nil
}

func uint32Answer(r Response, name string) (uint32, error) {
	a := argReader{get: r.Get}
	v := a.uint32(name, true)
	if a.err != nil {
		return 0, a.err
	}
	return v, nil
}
