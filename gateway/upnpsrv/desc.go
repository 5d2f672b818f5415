package upnpsrv

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/portlease/portlease/upnp"
)

// Service types and IDs this device serves besides those the upnp package
// names (Layer3Forwarding:1 service template; the serviceIds the IGD device
// templates use).
const (
	serviceL3F1     = "urn:schemas-upnp-org:service:Layer3Forwarding:1"
	serviceIDL3F    = "urn:upnp-org:serviceId:L3Forwarding1"
	serviceIDCommon = "urn:upnp-org:serviceId:WANCommonIFC1"
	serviceIDWANIP  = "urn:upnp-org:serviceId:WANIPConn1"
	// controlNS is the namespace of QueryStateVariable (UDA 1.0 §3.3).
	controlNS = "urn:schemas-upnp-org:control-1-0"
)

// Descriptive values of the device description (UDA 1.1 §2.3).
const (
	manufacturer    = "portlease"
	manufacturerURL = "https://github.com/portlease/portlease"
	modelName       = "portleased"
	modelURL        = "https://github.com/portlease/portlease"
)

// service is one UPnP service of the device: its description, its actions
// and its evented state variables.
type service struct {
	name        string   // short name, for logs
	typ         string   // the serviceType described
	accepts     []string // the serviceTypes SOAPACTION may name
	id          string
	scpdPath    string
	controlPath string
	eventPath   string
	actions     map[string]actionSpec
	// evented returns the evented state variables and their values, in
	// the order of the SCPD (UDA 1.1 §4.2.1: the initial event message
	// holds all of them).
	evented func(s *Server) []property
}

// property is a state variable's name and value in an event message.
type property struct{ name, value string }

// actionFunc performs an action and returns its out arguments in the order
// of the SCPD (UDA 1.1 §3.2.2), or a fault.
type actionFunc func(s *Server, ctx context.Context, rq *request) ([]upnp.Arg, *upnp.Fault)

// actionSpec is an action of a service: its SCPD entry (UDA 1.1 §2.5) and
// its implementation.
type actionSpec struct {
	name string
	args []argSpec
	do   actionFunc
	v2   bool // WANIPConnection:2 only
}

// argSpec is an argument of an action (UDA 1.1 §2.5, argument).
type argSpec struct {
	name    string
	out     bool
	related string // relatedStateVariable
}

func in(name, related string) argSpec  { return argSpec{name: name, related: related} }
func out(name, related string) argSpec { return argSpec{name: name, out: true, related: related} }

// varSpec is a state variable of a service (UDA 1.1 §2.5, stateVariable).
type varSpec struct {
	name, dataType string
	events         bool
	allowed        []string // allowedValueList
	ranged         bool     // allowedValueRange min..max
	min, max       int64
}

// The state variables' data types (UDA 1.1 §2.5, dataType).
const (
	typeString  = "string"
	typeBoolean = "boolean"
	typeUI2     = "ui2"
	typeUI4     = "ui4"
)

// wanIPActions are the actions of WANIPConnection:1 (all of its required
// ones) and :2 (AddAnyPortMapping, DeletePortMappingRange and
// GetListOfPortMappings added), in the order of the service templates.
func wanIPActions() []actionSpec {
	mappingIn := []argSpec{
		in("NewRemoteHost", "RemoteHost"),
		in("NewExternalPort", "ExternalPort"),
		in("NewProtocol", "PortMappingProtocol"),
		in("NewInternalPort", "InternalPort"),
		in("NewInternalClient", "InternalClient"),
		in("NewEnabled", "PortMappingEnabled"),
		in("NewPortMappingDescription", "PortMappingDescription"),
		in("NewLeaseDuration", "PortMappingLeaseDuration"),
	}
	entryOut := []argSpec{
		out("NewInternalPort", "InternalPort"),
		out("NewInternalClient", "InternalClient"),
		out("NewEnabled", "PortMappingEnabled"),
		out("NewPortMappingDescription", "PortMappingDescription"),
		out("NewLeaseDuration", "PortMappingLeaseDuration"),
	}
	key := []argSpec{
		in("NewRemoteHost", "RemoteHost"),
		in("NewExternalPort", "ExternalPort"),
		in("NewProtocol", "PortMappingProtocol"),
	}
	rangeIn := []argSpec{
		in("NewStartPort", "ExternalPort"),
		in("NewEndPort", "ExternalPort"),
		in("NewProtocol", "PortMappingProtocol"),
		in("NewManage", "A_ARG_TYPE_Manage"),
	}
	return []actionSpec{
		{name: "SetConnectionType", args: []argSpec{in("NewConnectionType", "ConnectionType")}, do: (*Server).setConnectionType},
		{name: "GetConnectionTypeInfo", args: []argSpec{
			out("NewConnectionType", "ConnectionType"),
			out("NewPossibleConnectionTypes", "PossibleConnectionTypes"),
		}, do: (*Server).getConnectionTypeInfo},
		{name: "RequestConnection", do: (*Server).notAuthorized},
		{name: "ForceTermination", do: (*Server).notAuthorized},
		{name: "GetStatusInfo", args: []argSpec{
			out("NewConnectionStatus", "ConnectionStatus"),
			out("NewLastConnectionError", "LastConnectionError"),
			out("NewUptime", "Uptime"),
		}, do: (*Server).getStatusInfo},
		{name: "GetNATRSIPStatus", args: []argSpec{
			out("NewRSIPAvailable", "RSIPAvailable"),
			out("NewNATEnabled", "NATEnabled"),
		}, do: (*Server).getNATRSIPStatus},
		{name: upnp.ActionGetGenericPortMappingEntry, args: append([]argSpec{
			in("NewPortMappingIndex", "PortMappingNumberOfEntries"),
			out("NewRemoteHost", "RemoteHost"),
			out("NewExternalPort", "ExternalPort"),
			out("NewProtocol", "PortMappingProtocol"),
		}, entryOut...), do: (*Server).getGenericPortMappingEntry},
		{name: upnp.ActionGetSpecificPortMappingEntry, args: append(append([]argSpec{}, key...), entryOut...),
			do: (*Server).getSpecificPortMappingEntry},
		{name: upnp.ActionAddPortMapping, args: mappingIn, do: (*Server).addPortMapping},
		{name: upnp.ActionDeletePortMapping, args: key, do: (*Server).deletePortMapping},
		{name: upnp.ActionGetExternalIPAddress, args: []argSpec{out("NewExternalIPAddress", "ExternalIPAddress")},
			do: (*Server).getExternalIPAddress},
		{name: upnp.ActionDeletePortMappingRange, args: rangeIn, do: (*Server).deletePortMappingRange, v2: true},
		{name: upnp.ActionGetListOfPortMappings, args: append(append([]argSpec{}, rangeIn...),
			in("NewNumberOfPorts", "PortMappingNumberOfEntries"),
			out("NewPortListing", "A_ARG_TYPE_PortListing"),
		), do: (*Server).getListOfPortMappings, v2: true},
		{name: upnp.ActionAddAnyPortMapping, args: append(append([]argSpec{}, mappingIn...),
			out("NewReservedPort", "ExternalPort"),
		), do: (*Server).addAnyPortMapping, v2: true},
	}
}

// wanIPVars are the state variables of WANIPConnection:1, and of :2 when v2
// (allowed ranges and the A_ARG_TYPE_ variables of the new actions).
func wanIPVars(v2 bool) []varSpec {
	vars := []varSpec{
		{name: "ConnectionType", dataType: typeString, allowed: []string{"Unconfigured", "IP_Routed", "IP_Bridged"}},
		{name: "PossibleConnectionTypes", dataType: typeString, events: true, allowed: []string{"Unconfigured", "IP_Routed", "IP_Bridged"}},
		{name: "ConnectionStatus", dataType: typeString, events: true, allowed: []string{
			"Unconfigured", "Connecting", "Connected", "PendingDisconnect", "Disconnecting", "Disconnected"}},
		{name: "Uptime", dataType: typeUI4},
		{name: "LastConnectionError", dataType: typeString, allowed: []string{"ERROR_NONE"}},
		{name: "RSIPAvailable", dataType: typeBoolean},
		{name: "NATEnabled", dataType: typeBoolean},
		{name: "ExternalIPAddress", dataType: typeString, events: true},
		{name: "PortMappingNumberOfEntries", dataType: typeUI2, events: true},
		{name: "PortMappingEnabled", dataType: typeBoolean},
		{name: "PortMappingLeaseDuration", dataType: typeUI4},
		{name: "RemoteHost", dataType: typeString},
		{name: "ExternalPort", dataType: typeUI2},
		{name: "InternalPort", dataType: typeUI2},
		{name: "PortMappingProtocol", dataType: typeString, allowed: []string{"TCP", "UDP"}},
		{name: "InternalClient", dataType: typeString},
		{name: "PortMappingDescription", dataType: typeString},
	}
	if v2 {
		for i := range vars {
			switch vars[i].name {
			case "PortMappingLeaseDuration":
				// WANIPConnection:2 §2.3.16: 0 to 604800 s.
				vars[i].ranged, vars[i].min, vars[i].max = true, 0, upnp.MaxLeaseDuration
			case "InternalPort":
				vars[i].ranged, vars[i].min, vars[i].max = true, 1, 65535
			}
		}
		vars = append(vars,
			varSpec{name: "A_ARG_TYPE_Manage", dataType: typeBoolean},
			varSpec{name: "A_ARG_TYPE_PortListing", dataType: typeString},
		)
	}
	return vars
}

// commonActions are the actions of WANCommonInterfaceConfig:1: the required
// GetCommonLinkProperties and the optional counters.
func commonActions() []actionSpec {
	return []actionSpec{
		{name: "GetCommonLinkProperties", args: []argSpec{
			out("NewWANAccessType", "WANAccessType"),
			out("NewLayer1UpstreamMaxBitRate", "Layer1UpstreamMaxBitRate"),
			out("NewLayer1DownstreamMaxBitRate", "Layer1DownstreamMaxBitRate"),
			out("NewPhysicalLinkStatus", "PhysicalLinkStatus"),
		}, do: (*Server).getCommonLinkProperties},
		{name: "GetTotalBytesSent", args: []argSpec{out("NewTotalBytesSent", "TotalBytesSent")}, do: counter(func(st LinkStats) uint64 { return st.BytesSent })},
		{name: "GetTotalBytesReceived", args: []argSpec{out("NewTotalBytesReceived", "TotalBytesReceived")}, do: counter(func(st LinkStats) uint64 { return st.BytesReceived })},
		{name: "GetTotalPacketsSent", args: []argSpec{out("NewTotalPacketsSent", "TotalPacketsSent")}, do: counter(func(st LinkStats) uint64 { return st.PacketsSent })},
		{name: "GetTotalPacketsReceived", args: []argSpec{out("NewTotalPacketsReceived", "TotalPacketsReceived")}, do: counter(func(st LinkStats) uint64 { return st.PacketsReceived })},
	}
}

func commonVars() []varSpec {
	return []varSpec{
		{name: "WANAccessType", dataType: typeString, allowed: []string{"DSL", "POTS", "Cable", "Ethernet"}},
		{name: "Layer1UpstreamMaxBitRate", dataType: typeUI4},
		{name: "Layer1DownstreamMaxBitRate", dataType: typeUI4},
		{name: "PhysicalLinkStatus", dataType: typeString, events: true, allowed: []string{"Up", "Down"}},
		{name: "TotalBytesSent", dataType: typeUI4},
		{name: "TotalBytesReceived", dataType: typeUI4},
		{name: "TotalPacketsSent", dataType: typeUI4},
		{name: "TotalPacketsReceived", dataType: typeUI4},
	}
}

// l3fActions are the actions of Layer3Forwarding:1.
func l3fActions() []actionSpec {
	return []actionSpec{
		{name: "SetDefaultConnectionService", args: []argSpec{in("NewDefaultConnectionService", "DefaultConnectionService")},
			do: (*Server).setDefaultConnectionService},
		{name: "GetDefaultConnectionService", args: []argSpec{out("NewDefaultConnectionService", "DefaultConnectionService")},
			do: (*Server).getDefaultConnectionService},
	}
}

func l3fVars() []varSpec {
	return []varSpec{{name: "DefaultConnectionService", dataType: typeString, events: true}}
}

// buildDevice builds the services, their SCPDs and the root description.
func (s *Server) buildDevice() error {
	v := s.cfg.Version
	ver := strconv.Itoa(v)
	root := "uuid:" + s.cfg.UUID
	udnWAN := "uuid:" + derivedUUID(s.cfg.UUID, "WANDevice")
	s.udnWCD = "uuid:" + derivedUUID(s.cfg.UUID, "WANConnectionDevice")

	ipc := &service{
		name: "WANIPConnection", typ: upnp.ServiceWANIP1, accepts: []string{upnp.ServiceWANIP1}, id: serviceIDWANIP,
		scpdPath: "/WANIPCn.xml", controlPath: "/ctl/IPConn", eventPath: "/evt/IPConn",
		evented: (*Server).wanIPEvented,
	}
	if v == 2 {
		ipc.typ = upnp.ServiceWANIP2
		ipc.accepts = []string{upnp.ServiceWANIP2, upnp.ServiceWANIP1}
	}
	common := &service{
		name: "WANCommonInterfaceConfig", typ: upnp.ServiceWANCommon1, accepts: []string{upnp.ServiceWANCommon1}, id: serviceIDCommon,
		scpdPath: "/WANCfg.xml", controlPath: "/ctl/CmnIfCfg", eventPath: "/evt/CmnIfCfg",
		evented: (*Server).commonEvented,
	}
	l3f := &service{
		name: "Layer3Forwarding", typ: serviceL3F1, accepts: []string{serviceL3F1}, id: serviceIDL3F,
		scpdPath: "/L3F.xml", controlPath: "/ctl/L3F", eventPath: "/evt/L3F",
		evented: (*Server).l3fEvented,
	}
	s.services = []*service{l3f, common, ipc}
	type described struct {
		svc     *service
		actions []actionSpec
		vars    []varSpec
	}
	all := []described{
		{ipc, wanIPActions(), wanIPVars(v == 2)},
		{common, commonActions(), commonVars()},
		{l3f, l3fActions(), l3fVars()},
	}
	// WANIPv6FirewallControl:1 is a service of the IGD:2
	// WANConnectionDevice, beside WANIPConnection:2, when the core has
	// pinholes.
	var fw *service
	if v == 2 && s.pinholes != nil {
		fw = &service{
			name: "WANIPv6FirewallControl", typ: upnp.ServiceWANIPv6FC1, accepts: []string{upnp.ServiceWANIPv6FC1},
			id: serviceIDFirewall, scpdPath: "/WANIP6FC.xml", controlPath: "/ctl/IP6FCtl", eventPath: "/evt/IP6FCtl",
			evented: (*Server).firewallEvented,
		}
		s.services = append(s.services, fw)
		all = append(all, described{fw, firewallActions(), firewallVars()})
	}
	s.byPath = map[string]route{}
	for _, sv := range all {
		var acts []actionSpec
		sv.svc.actions = map[string]actionSpec{}
		for _, a := range sv.actions {
			if a.v2 && v != 2 {
				continue
			}
			acts = append(acts, a)
			sv.svc.actions[a.name] = a
		}
		s.byPath[sv.svc.scpdPath] = route{kind: routeDoc, doc: appendSCPD(nil, s.cfg.ConfigID, acts, sv.vars)}
		s.byPath[sv.svc.controlPath] = route{kind: routeControl, svc: sv.svc}
		s.byPath[sv.svc.eventPath] = route{kind: routeEvent, svc: sv.svc}
	}

	describe := func(svc *service) upnp.Service {
		return upnp.Service{ServiceType: svc.typ, ServiceID: svc.id, SCPDURL: svc.scpdPath,
			ControlURL: svc.controlPath, EventSubURL: svc.eventPath}
	}
	device := func(typ, name, udn string) upnp.Device {
		return upnp.Device{
			DeviceType: typ, FriendlyName: name, Manufacturer: manufacturer, ManufacturerURL: manufacturerURL,
			ModelDescription: "portleased UPnP Internet Gateway Device", ModelName: modelName, ModelNumber: ver,
			ModelURL: modelURL, UDN: udn,
		}
	}
	types := map[int][3]string{
		1: {upnp.DeviceIGD1, upnp.DeviceWAN1, upnp.DeviceWANConnection1},
		2: {upnp.DeviceIGD2, upnp.DeviceWAN2, upnp.DeviceWANConnection2},
	}[v]
	wcd := device(types[2], "WANConnectionDevice", s.udnWCD)
	wcd.Services = []upnp.Service{describe(ipc)}
	if fw != nil {
		wcd.Services = append(wcd.Services, describe(fw))
	}
	wan := device(types[1], "WANDevice", udnWAN)
	wan.Services = []upnp.Service{describe(common)}
	wan.Devices = []upnp.Device{wcd}
	igd := device(types[0], s.cfg.FriendlyName, root)
	igd.Services = []upnp.Service{describe(l3f)}
	igd.Devices = []upnp.Device{wan}
	d := upnp.Description{SpecMajor: 1, SpecMinor: 1, ConfigID: s.cfg.ConfigID, Device: igd}
	desc, err := d.AppendXML(nil)
	if err != nil {
		return fmt.Errorf("upnpsrv: description: %w", err)
	}
	s.desc = desc
	s.byPath[DescriptionPath] = route{kind: routeDoc, doc: desc}
	s.adv = advertisement{uuids: map[string]string{}}
	for _, dev := range []upnp.Device{igd, wan, wcd} {
		udn := strings.TrimPrefix(dev.UDN, "uuid:")
		s.adv.devices = append(s.adv.devices, dev.DeviceType)
		s.adv.uuids[dev.DeviceType] = udn
		for _, sv := range dev.Services {
			s.adv.services = append(s.adv.services, sv.ServiceType)
			s.adv.uuids[sv.ServiceType] = udn
		}
	}
	return nil
}

// advertisement is what SSDP announces of the device.
type advertisement struct {
	devices, services []string
	uuids             map[string]string
}

// Advertisement returns what SSDP is to announce of the device (UDA 1.1
// §1.2.2), as the description has it: the device types, the root device's
// first; the service types; and the UUID (without "uuid:") of the device
// of each type and of the device holding each service, the embedded
// devices' UUIDs being derived from Config.UUID. The results are copies.
func (s *Server) Advertisement() (deviceTypes, serviceTypes []string, uuids map[string]string) {
	return slices.Clone(s.adv.devices), slices.Clone(s.adv.services), maps.Clone(s.adv.uuids)
}

// derivedUUID returns a name-based (version 5, SHA-1) UUID of name in the
// namespace of the root device's UUID (RFC 9562 §5.5): a stable UDN for an
// embedded device (UDA 1.1 §1.1.4: "MUST be the same over time for a
// specific device instance").
func derivedUUID(root, name string) string {
	ns, _ := hex.DecodeString(strings.ReplaceAll(root, "-", ""))
	h := sha1.New()
	h.Write(ns)
	h.Write([]byte(name))
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// appendSCPD appends a service description (UDA 1.1 §2.5):
//
//	<?xml version="1.0"?>
//	<scpd xmlns="urn:schemas-upnp-org:service-1-0" configId="n">
//	<specVersion><major>1</major><minor>1</minor></specVersion>
//	<actionList>
//	<action><name>…</name><argumentList>
//	<argument><name>…</name><direction>in|out</direction>
//	<relatedStateVariable>…</relatedStateVariable></argument>…
//	</argumentList></action>…
//	</actionList>
//	<serviceStateTable>
//	<stateVariable sendEvents="yes|no"><name>…</name><dataType>…</dataType>
//	<allowedValueList><allowedValue>…</allowedValue>…</allowedValueList>
//	<allowedValueRange><minimum>…</minimum><maximum>…</maximum></allowedValueRange>
//	</stateVariable>…
//	</serviceStateTable>
//	</scpd>
//
// one action or state variable a line; argumentList is left out of an
// action without arguments, as §2.5 allows.
func appendSCPD(b []byte, configID int, actions []actionSpec, vars []varSpec) []byte {
	b = append(b, "<?xml version=\"1.0\"?>\r\n<scpd xmlns=\"urn:schemas-upnp-org:service-1-0\""...)
	if configID >= 0 {
		b = append(b, ` configId="`...)
		b = strconv.AppendInt(b, int64(configID), 10)
		b = append(b, '"')
	}
	b = append(b, ">\r\n<specVersion><major>1</major><minor>1</minor></specVersion>\r\n<actionList>\r\n"...)
	for _, a := range actions {
		b = append(b, "<action>"...)
		b = appendElement(b, "name", a.name)
		if len(a.args) > 0 {
			b = append(b, "<argumentList>"...)
			for _, arg := range a.args {
				dir := "in"
				if arg.out {
					dir = "out"
				}
				b = append(b, "<argument>"...)
				b = appendElement(b, "name", arg.name)
				b = appendElement(b, "direction", dir)
				b = appendElement(b, "relatedStateVariable", arg.related)
				b = append(b, "</argument>"...)
			}
			b = append(b, "</argumentList>"...)
		}
		b = append(b, "</action>\r\n"...)
	}
	b = append(b, "</actionList>\r\n<serviceStateTable>\r\n"...)
	for _, v := range vars {
		events := "no"
		if v.events {
			events = "yes"
		}
		b = append(b, `<stateVariable sendEvents="`...)
		b = append(b, events...)
		b = append(b, `">`...)
		b = appendElement(b, "name", v.name)
		b = appendElement(b, "dataType", v.dataType)
		if len(v.allowed) > 0 {
			b = append(b, "<allowedValueList>"...)
			for _, a := range v.allowed {
				b = appendElement(b, "allowedValue", a)
			}
			b = append(b, "</allowedValueList>"...)
		}
		if v.ranged {
			b = append(b, "<allowedValueRange>"...)
			b = appendElement(b, "minimum", strconv.FormatInt(v.min, 10))
			b = appendElement(b, "maximum", strconv.FormatInt(v.max, 10))
			b = append(b, "</allowedValueRange>"...)
		}
		b = append(b, "</stateVariable>\r\n"...)
	}
	return append(b, "</serviceStateTable>\r\n</scpd>\r\n"...)
}

// appendElement appends <name>text</name>, text escaped for XML.
func appendElement(b []byte, name, text string) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = appendEscaped(b, text)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

// appendEscaped appends s with the characters XML gives a meaning escaped.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '"':
			b = append(b, "&quot;"...)
		case '\'':
			b = append(b, "&apos;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}
