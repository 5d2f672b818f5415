package upnp_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/portlease/portlease/upnp"
)

// A control point's steps, without the network: the search it multicasts,
// the answer it reads, the services of the description at LOCATION, and the
// AddPortMapping it POSTs to the best one.
func Example_controlPoint() {
	search, _ := upnp.SearchRequest{ST: upnp.DeviceIGD2, MX: 2}.AppendBinary(nil)
	fmt.Printf("%q\n", search)

	answer := "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
		"USN: uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab::urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\nEXT:\r\n" +
		"SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: http://198.51.100.1:5000/rootDesc.xml\r\n\r\n"
	r, err := upnp.ParseSearchResponse([]byte(answer))
	if err != nil {
		panic(err)
	}
	location, _ := url.Parse(r.Location)

	desc, err := upnp.ParseDescription(strings.NewReader(`<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><UDN>uuid:x</UDN>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>
<controlURL>/ctl/IPConn</controlURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>`))
	if err != nil {
		panic(err)
	}
	best := desc.ConnectionServices(location)[0]
	fmt.Println(best.ServiceType, best.ControlURL)

	a := upnp.AddPortMapping(best.ServiceType, upnp.PortMapping{
		ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080, InternalClient: "198.51.100.10",
		Enabled: true, Description: "web", LeaseDuration: 3600,
	})
	fmt.Println("SOAPACTION:", a.SOAPAction())
	fmt.Println(strings.ReplaceAll(string(a.AppendEnvelope(nil)), "\r\n", "\n"))
	// Output:
	// "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n\r\n"
	// urn:schemas-upnp-org:service:WANIPConnection:2 http://198.51.100.1:5000/ctl/IPConn
	// SOAPACTION: "urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"
	// <?xml version="1.0"?>
	// <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2"><NewRemoteHost></NewRemoteHost><NewExternalPort>8080</NewExternalPort><NewProtocol>TCP</NewProtocol><NewInternalPort>8080</NewInternalPort><NewInternalClient>198.51.100.10</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>web</NewPortMappingDescription><NewLeaseDuration>3600</NewLeaseDuration></u:AddPortMapping></s:Body></s:Envelope>
}

// A UPnP error comes back from ParseResponse as a *Fault; FaultCode picks
// the code out of the error chain.
func ExampleFaultCode() {
	body := `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>` +
		`<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>` +
		`<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>725</errorCode>` +
		`<errorDescription>OnlyPermanentLeasesSupported</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`
	_, err := upnp.ParseResponse(strings.NewReader(body), "AddPortMapping")
	fmt.Println(err)
	if code, ok := upnp.FaultCode(err); ok && code == upnp.OnlyPermanentLeasesSupported {
		fmt.Println("retry with lease 0")
	}
	// Output:
	// upnp: error 725 OnlyPermanentLeasesSupported
	// retry with lease 0
}

// The device side: read the request, check its arguments, answer with a
// response or a fault.
func ExamplePortMappingArgs() {
	body := upnp.AddPortMapping(upnp.ServiceWANIP2, upnp.PortMapping{
		ExternalPort: 8080, Protocol: "TCP", InternalPort: 0, InternalClient: "198.51.100.10",
	}).AppendEnvelope(nil)
	a, err := upnp.ParseActionRequest(strings.NewReader(string(body)), upnp.ServiceWANIP2+"#AddPortMapping")
	if err != nil {
		panic(err)
	}
	_, err = upnp.PortMappingArgs(a)
	var f *upnp.Fault
	if errors.As(err, &f) {
		fmt.Println(f.Code, f.Description)
		_, fault, _ := strings.Cut(string(upnp.AppendFaultEnvelope(nil, f.Code, f.Description)), "<s:Body>")
		fmt.Println(fault)
	}
	// Output:
	// 732 WildCardNotPermittedInIntPort (NewInternalPort "0": wildcard not permitted)
	// <s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>732</errorCode><errorDescription>WildCardNotPermittedInIntPort (NewInternalPort "0": wildcard not permitted)</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>
}
