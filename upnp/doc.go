// Package upnp is the wire format of UPnP Internet Gateway Devices for both
// ends: the control point (a client mapping ports) and the device (a
// gateway granting them). It covers SSDP discovery, device descriptions,
// SOAP control envelopes and faults, and the arguments of the port-mapping
// actions of WANIPConnection:1, WANIPConnection:2 and WANPPPConnection:1. It
// opens no sockets, sends nothing and keeps no state: it turns messages
// into values and back.
//
// The specifications: UPnP Device Architecture 1.1 (UDA; 2.0 where it adds
// to it), the InternetGatewayDevice:1 and :2 device templates and the
// WANIPConnection:1 and :2 service templates. Comments cite them by section
// (UDA 1.1 §1.3.2) or, for the service templates, by action and state
// variable.
//
// # Discovery (UDA 1.1 §1)
//
// SSDP messages are HTTP over UDP, one datagram each:
//
//	SearchRequest   M-SEARCH * HTTP/1.1    §1.3.2   control point → 239.255.255.250:1900
//	SearchResponse  HTTP/1.1 200 OK        §1.3.3   device → control point, unicast
//	Notify          NOTIFY * HTTP/1.1      §1.2     device → 239.255.255.250:1900
//
// Each has an append-style AppendBinary and a Parse function. The parsers
// are strict about structure (a start line, "name: value" lines) and
// lenient where devices differ: header names in any case, spaces around
// values, CRLF or LF, a missing final blank line, missing optional headers,
// unreadable optional numbers, HTTP/1.0 status lines. They refuse input
// over MaxSSDPSize (ErrTooLarge) and never panic.
//
// # Description (UDA 1.1 §2)
//
// ParseDescription reads the device description at a search response's
// LOCATION, and ConnectionServices finds its WAN connection services, best
// first, with their control URLs resolved. RebaseToHost aims a URL that
// names an unreachable host back at the host that served the description.
// Description.AppendXML writes a description for the device side.
//
// # Control (UDA 1.1 §3)
//
// An Action is a SOAP request: AppendEnvelope writes its body and
// SOAPAction its SOAPACTION header; ParseActionRequest (or
// ParseActionRequestBody, of a body already read) reads it on the device,
// with a scanner written for the envelope whose allocation is proportional
// to the body (a device parses what any LAN host sends). A Response is the answer: AppendEnvelope on the device,
// ParseResponse on the control point, which returns a *Fault when the
// device sent a UPnP error (AppendFaultEnvelope writes one). ErrorCode names
// the codes of UDA and of the IGD service templates.
//
// The functions AddPortMapping, AddAnyPortMapping, DeletePortMapping,
// DeletePortMappingRange, GetSpecificPortMappingEntry,
// GetGenericPortMappingEntry, GetListOfPortMappings, GetExternalIPAddress
// and GetStatusInfo build the IGD actions with their arguments in the
// templates' order. SpecificEntry, GenericEntry, ReservedPort,
// ExternalIPAddress, StatusInfo and ParsePortListing decode the answers;
// PortMappingArgs decodes and checks an AddPortMapping request on the
// device, and AppendPortListing writes a GetListOfPortMappings answer.
//
// WANIPv6FirewallControl:1 (the IGD:2 service that opens IPv6 firewall
// pinholes) has its builders too: GetFirewallStatus,
// GetOutboundPinholeTimeout, AddPinhole, UpdatePinhole, DeletePinhole,
// GetPinholePackets and CheckPinholeWorking, with Pinhole the 5-tuple and
// lease; UniqueID, FirewallStatus, OutboundPinholeTimeout, PinholePackets
// and IsWorking decode the answers, and PinholeArgs, UniqueIDArg and
// NewLeaseTimeArg decode and check the requests on the device.
//
// XML is read into a small tree (control requests: scanned in place)
// rather than bound to structs, so that every element matches by its local
// name whatever its prefix, namespace or case;
// documents are bounded in size (MaxDescriptionSize, MaxActionRequestSize,
// MaxResponseSize) and in nesting.
package upnp
