package upnp

import (
	"strconv"
	"strings"
)

// Names of the port listing document (WANIPConnection:2,
// A_ARG_TYPE_PortListing and its schema WANIPConnection-v2.xsd).
const (
	portListingNS  = "urn:schemas-upnp-org:gw:WANIPConnection"
	listDesc       = "NewDescription"
	listLeaseTime  = "NewLeaseTime"
	listingElement = "PortMappingList"
	entryElement   = "PortMappingEntry"
)

// ParsePortListing reads NewPortListing, the XML document that
// GetListOfPortMappings returns (WANIPConnection:2, A_ARG_TYPE_PortListing):
//
//	<p:PortMappingList xmlns:p="urn:schemas-upnp-org:gw:WANIPConnection" …>
//	<p:PortMappingEntry>
//	<p:NewRemoteHost>…</p:NewRemoteHost><p:NewExternalPort>…</p:NewExternalPort>
//	<p:NewProtocol>…</p:NewProtocol><p:NewInternalPort>…</p:NewInternalPort>
//	<p:NewInternalClient>…</p:NewInternalClient><p:NewEnabled>…</p:NewEnabled>
//	<p:NewDescription>…</p:NewDescription><p:NewLeaseTime>…</p:NewLeaseTime>
//	</p:PortMappingEntry>…
//	</p:PortMappingList>
//
// Names match whatever their prefix, namespace or case, and the names of
// GetGenericPortMappingEntry (NewPortMappingDescription, NewLeaseDuration)
// are read too. Each entry is decoded as GenericEntry decodes an answer; a
// bad one is an *ArgError naming it. An empty or blank s is an empty list
// (some gateways answer so instead of 730 PortMappingNotFound).
func ParsePortListing(s string) ([]PortMapping, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if len(s) > MaxResponseSize {
		return nil, ErrTooLarge
	}
	root, err := parseXML([]byte(s))
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(root.name.Local, listingElement) {
		return nil, malformed("port listing root element is <%s>, not <%s>", root.name.Local, listingElement)
	}
	var ms []PortMapping
	for _, c := range root.children {
		if !strings.EqualFold(c.name.Local, entryElement) {
			continue
		}
		r := argReader{get: c.childValue, entry: entryElement + " " + strconv.Itoa(len(ms))}
		desc, lease := listDesc, listLeaseTime
		if c.child(listDesc) == nil {
			desc = argDescription
		}
		if c.child(listLeaseTime) == nil {
			lease = argLeaseDuration
		}
		m, err := entry(r, desc, lease)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// childValue returns the text of the first child element named name, for
// an argReader.
func (n *node) childValue(name string) (string, bool) {
	if c := n.child(name); c != nil {
		return c.text, true
	}
	return "", false
}

// AppendPortListing appends ms to b as the NewPortListing document of
// WANIPConnection:2 (A_ARG_TYPE_PortListing), one entry a line, for the
// device side. As miniupnpd's, the document has no XML declaration, so that
// it can go straight into a SOAP argument (Response.AppendEnvelope puts it
// in a CDATA section).
func AppendPortListing(b []byte, ms []PortMapping) []byte {
	b = append(b, `<p:PortMappingList xmlns:p="`+portListingNS+`"`+
		` xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`+
		` xsi:schemaLocation="`+portListingNS+` http://www.upnp.org/schemas/gw/WANIPConnection-v2.xsd">`+"\n"...)
	for _, m := range ms {
		b = append(b, "<p:PortMappingEntry>"...)
		b = appendElement(b, "p:"+argRemoteHost, m.RemoteHost)
		b = appendElement(b, "p:"+argExternalPort, strconv.Itoa(int(m.ExternalPort)))
		b = appendElement(b, "p:"+argProtocol, m.Protocol)
		b = appendElement(b, "p:"+argInternalPort, strconv.Itoa(int(m.InternalPort)))
		b = appendElement(b, "p:"+argInternalClient, m.InternalClient)
		b = appendElement(b, "p:"+argEnabled, boolArg(m.Enabled))
		b = appendElement(b, "p:"+listDesc, m.Description)
		b = appendElement(b, "p:"+listLeaseTime, strconv.FormatUint(uint64(m.LeaseDuration), 10))
		b = append(b, "</p:PortMappingEntry>\n"...)
	}
	return append(b, "</p:PortMappingList>"...)
}
