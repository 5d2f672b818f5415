package upnpsrv

import (
	"github.com/portlease/portlease/upnp"
)

// serviceIDFirewall is the serviceId of WANIPv6FirewallControl:1 in the
// InternetGatewayDevice:2 device template.
const serviceIDFirewall = "urn:upnp-org:serviceId:WANIPv6Firewall1"

// firewallActions are the actions of WANIPv6FirewallControl:1, in the
// order of the service template.
func firewallActions() []actionSpec {
	tuple := []argSpec{
		in(upnp.ArgRemoteHost, "A_ARG_TYPE_IPv6Address"),
		in(upnp.ArgRemotePort, "A_ARG_TYPE_Port"),
		in(upnp.ArgInternalClient, "A_ARG_TYPE_IPv6Address"),
		in(upnp.ArgInternalPort, "A_ARG_TYPE_Port"),
		in(upnp.ArgProtocol, "A_ARG_TYPE_Protocol"),
	}
	id := in(upnp.ArgUniqueID, "A_ARG_TYPE_UniqueID")
	return []actionSpec{
		{name: upnp.ActionGetFirewallStatus, args: []argSpec{
			out(upnp.ArgFirewallEnabled, "FirewallEnabled"),
			out(upnp.ArgInboundPinholeAllowed, "InboundPinholeAllowed"),
		}, do: (*Server).getFirewallStatus},
		{name: upnp.ActionGetOutboundPinholeTimeout, args: append(append([]argSpec{}, tuple...),
			out(upnp.ArgOutboundPinholeTimeout, "A_ARG_TYPE_OutboundPinholeTimeout"),
		), do: (*Server).getOutboundPinholeTimeout},
		{name: upnp.ActionAddPinhole, args: append(append([]argSpec{}, tuple...),
			in(upnp.ArgLeaseTime, "A_ARG_TYPE_LeaseTime"),
			out(upnp.ArgUniqueID, "A_ARG_TYPE_UniqueID"),
		), do: (*Server).addPinhole},
		{name: upnp.ActionUpdatePinhole, args: []argSpec{id, in(upnp.ArgNewLeaseTime, "A_ARG_TYPE_LeaseTime")},
			do: (*Server).updatePinhole},
		{name: upnp.ActionDeletePinhole, args: []argSpec{id}, do: (*Server).deletePinhole},
		{name: upnp.ActionGetPinholePackets, args: []argSpec{id,
			out(upnp.ArgPinholePackets, "A_ARG_TYPE_PinholePackets"),
		}, do: (*Server).getPinholePackets},
		{name: upnp.ActionCheckPinholeWorking, args: []argSpec{id,
			out(upnp.ArgIsWorking, "A_ARG_TYPE_Boolean"),
		}, do: (*Server).checkPinholeWorking},
	}
}

// firewallVars are the state variables of WANIPv6FirewallControl:1; the
// two evented ones come first.
func firewallVars() []varSpec {
	return []varSpec{
		{name: "FirewallEnabled", dataType: typeBoolean, events: true},
		{name: "InboundPinholeAllowed", dataType: typeBoolean, events: true},
		{name: "A_ARG_TYPE_OutboundPinholeTimeout", dataType: typeUI4},
		{name: "A_ARG_TYPE_IPv6Address", dataType: typeString},
		{name: "A_ARG_TYPE_Port", dataType: typeUI2},
		{name: "A_ARG_TYPE_Protocol", dataType: typeUI2},
		{name: "A_ARG_TYPE_LeaseTime", dataType: typeUI4, ranged: true, min: 1, max: upnp.MaxPinholeLeaseTime},
		{name: "A_ARG_TYPE_UniqueID", dataType: typeUI2},
		{name: "A_ARG_TYPE_PinholePackets", dataType: typeUI4},
		{name: "A_ARG_TYPE_Boolean", dataType: typeBoolean},
	}
}
