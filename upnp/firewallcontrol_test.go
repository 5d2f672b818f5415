package upnp

import (
	"strings"
	"testing"
)

// igd2WithFirewall is an IGD:2 whose WANConnectionDevice:2 carries
// WANIPv6FirewallControl:1 beside WANIPConnection:2, with a relative
// control URL.
const igd2WithFirewall = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><friendlyName>gw</friendlyName><UDN>uuid:1</UDN>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType><UDN>uuid:2</UDN>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType><UDN>uuid:3</UDN>
<serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><SCPDURL>/ip.xml</SCPDURL><controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPv6FirewallControl:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPv6Firewall1</serviceId><SCPDURL>/fc.xml</SCPDURL><controlURL>ctl/IP6FCtl</controlURL><eventSubURL>/evt/IP6FCtl</eventSubURL></service>
</serviceList></device></deviceList></device></deviceList></device></root>`

func TestFirewallControl(t *testing.T) {
	d, err := ParseDescription(strings.NewReader(igd2WithFirewall))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := d.FirewallControl(mustURL(t, "http://[2001:db8:1::1]:5000/rootDesc.xml"))
	if !ok {
		t.Fatal("FirewallControl found nothing")
	}
	if s.ServiceType != ServiceWANIPv6FC1 || s.ControlURL.String() != "http://[2001:db8:1::1]:5000/ctl/IP6FCtl" ||
		s.UDN != "uuid:1" || s.Version != 1 {
		t.Errorf("FirewallControl = %+v (control %s)", s, s.ControlURL)
	}
	for _, c := range d.ConnectionServices(nil) {
		if c.ServiceType == ServiceWANIPv6FC1 {
			t.Error("ConnectionServices lists the firewall control service")
		}
	}

	d, err = ParseDescription(strings.NewReader(strings.ReplaceAll(igd2WithFirewall, "WANIPv6FirewallControl", "Other")))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := d.FirewallControl(nil); ok {
		t.Errorf("FirewallControl without the service = %+v", s)
	}
}
