package upnp

import (
	"bytes"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func mustURL(tb testing.TB, s string) *url.URL {
	tb.Helper()
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// wantService is what a test expects of a ConnectionService: its type and
// URLs as strings.
type wantService struct {
	serviceType string
	version     int
	control     string
	eventSub    string
}

func services(cs []ConnectionService) []wantService {
	var out []wantService
	for _, c := range cs {
		w := wantService{serviceType: c.ServiceType, version: c.Version, control: c.ControlURL.String()}
		if c.EventSubURL != nil {
			w.eventSub = c.EventSubURL.String()
		}
		out = append(out, w)
	}
	return out
}

func TestConnectionServicesGoldens(t *testing.T) {
	for _, tt := range []struct {
		file, location string
		root           Device // the fields of the root device checked
		want           []wantService
	}{
		{
			file: "desc-miniupnpd-2.3.1-igd2.xml", location: "http://198.51.100.1:5000/rootDesc.xml",
			root: Device{DeviceType: DeviceIGD2, FriendlyName: "Debian router", UDN: labUUID},
			want: []wantService{{ServiceWANIP2, 2, "http://198.51.100.1:5000/ctl/IPConn", "http://198.51.100.1:5000/evt/IPConn"}},
		},
		{
			file: "desc-pfsense-2.5.0-igd1.xml", location: "http://192.168.1.1:2189/rootDesc.xml",
			root: Device{DeviceType: DeviceIGD1, FriendlyName: "FreeBSD router", UDN: "uuid:bee7052b-49e8-3597-b545-55a1e38ac11"},
			want: []wantService{{ServiceWANIP1, 1, "http://192.168.1.1:2189/ctl/IPConn", "http://192.168.1.1:2189/evt/IPConn"}},
		},
		{
			file: "desc-google-wifi-igd2.xml", location: "http://192.168.86.1:5000/rootDesc.xml",
			root: Device{DeviceType: DeviceIGD2, FriendlyName: "OnHub", UDN: "uuid:a9708184-a6c0-413a-bbac-11bcf7e30ece"},
			want: []wantService{{ServiceWANIP2, 2, "http://192.168.86.1:5000/ctl/IPConn", "http://192.168.86.1:5000/evt/IPConn"}},
		},
		{
			// URLBase names 10.0.0.1 although 192.168.88.1 served the
			// description: kept as written.
			file: "desc-mikrotik-urlbase-other-host.xml", location: "http://192.168.88.1:2828/rootDesc.xml",
			root: Device{DeviceType: DeviceIGD1, FriendlyName: "MikroTik Router", UDN: "uuid:UUID-MIKROTIK-INTERNET-GATEWAY-DEVICE-"},
			want: []wantService{
				{ServiceWANIP1, 1, "http://10.0.0.1:2828/upnp/control/yomkmsnooi/wanipconn-1", "http://10.0.0.1:2828/upnp/event/veeabhzzva/wanipconn-1"},
				{ServiceWANIP1, 1, "http://10.0.0.1:2828/upnp/control/xstnsgeuyh/wanipconn-7", "http://10.0.0.1:2828/upnp/event/rscixkusbs/wanipconn-7"},
			},
		},
		{
			file: "desc-urlbase-relative.xml", location: "http://192.168.1.1:49152/gatedesc.xml",
			root: Device{DeviceType: DeviceIGD1, FriendlyName: "Example Gateway", UDN: "uuid:00000000-0000-1000-8000-0000000000a1"},
			want: []wantService{{ServiceWANIP1, 1, "http://192.168.1.1:49152/upnp/control/WANIPConn1", "http://192.168.1.1:49152/upnp/event/WANIPConn1"}},
		},
		{
			file: "desc-absolute-other-host.xml", location: "http://192.168.1.1:5000/rootDesc.xml",
			root: Device{DeviceType: DeviceIGD2, FriendlyName: "Example Gateway", UDN: "uuid:00000000-0000-1000-8000-0000000000b1"},
			want: []wantService{
				{ServiceWANIP2, 2, "http://127.0.0.1:5000/ctl/IPConn", "http://127.0.0.1:5000/evt/IPConn"},
				{ServiceWANIP1, 1, "http://10.10.10.1/ctl/IPConn1?x=1", "http://192.168.1.1:5000/evt/IPConn1"},
			},
		},
		{
			file: "desc-huawei-hg531-dslforum.xml", location: "http://192.168.1.1:37215/upnpdev.xml",
			root: Device{DeviceType: "urn:dslforum-org:device:InternetGatewayDevice:1", FriendlyName: "HG531 V1", UDN: "uuid:00e0fc37-2626-2828-2600-587f668bdd9a"},
			want: []wantService{{"urn:dslforum-org:service:WANPPPConnection:1", 1, "http://192.168.1.1:37215/ctrlt/WANPPPConnection_1", "http://192.168.1.1:37215/evt/WANPPPConnection_1"}},
		},
		{
			// PPP comes first in the document, IP first in the result.
			file: "desc-fritzbox-ppp-beside-ip.xml", location: "http://192.168.178.1:49000/igddesc.xml",
			root: Device{DeviceType: DeviceIGD1, FriendlyName: "FRITZ!Box 7590", UDN: "uuid:75802409-bccb-40e7-8e6c-3810d5000001"},
			want: []wantService{
				{ServiceWANIP1, 1, "http://192.168.178.1:49000/igdupnp/control/WANIPConn1", "http://192.168.178.1:49000/igdupnp/control/WANIPConn1"},
				{ServiceWANPPP1, 1, "http://192.168.178.1:49000/igdupnp/control/WANPPPConn1", "http://192.168.178.1:49000/igdupnp/control/WANPPPConn1"},
			},
		},
		{
			// Empty URLBase, white space in tags and around a control URL.
			file: "desc-mercury-mr804-spaces.xml", location: "http://192.168.1.1:1900/igd.xml",
			root: Device{DeviceType: DeviceIGD1, FriendlyName: "Mercury Router MR804", UDN: "uuid:6ec73f58-1dd2-11b2-9465-e6838914e4d9"},
			want: []wantService{{ServiceWANIP1, 1, "http://192.168.1.1:1900/ipc", "http://192.168.1.1:1900/ipc"}},
		},
		{
			file: "desc-prefixed-latin1.xml", location: "http://192.168.0.254/desc.xml",
			root: Device{DeviceType: DeviceIGD1, FriendlyName: "Passerelle été", UDN: "uuid:00000000-0000-1000-8000-0000000000c1"},
			want: []wantService{{ServiceWANIP1, 1, "http://192.168.0.254/control/ip", "http://192.168.0.254/event/ip"}},
		},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data := golden(t, "desc/"+tt.file)
			d, err := ParseDescription(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("ParseDescription = %v", err)
			}
			root := Device{DeviceType: d.Device.DeviceType, FriendlyName: d.Device.FriendlyName, UDN: d.Device.UDN}
			if !reflect.DeepEqual(root, tt.root) {
				t.Errorf("root device %+v; want %+v", root, tt.root)
			}
			cs := d.ConnectionServices(mustURL(t, tt.location))
			if got := services(cs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ConnectionServices(%s) = %+v; want %+v", tt.location, got, tt.want)
			}
			for _, c := range cs {
				if c.UDN != tt.root.UDN || c.DeviceType != tt.root.DeviceType || c.FriendlyName != tt.root.FriendlyName {
					t.Errorf("service %s names root %q %q %q; want %+v", c.ServiceType, c.DeviceType, c.UDN, c.FriendlyName, tt.root)
				}
			}
			checkDescriptionRoundTrip(t, d)
		})
	}
}

// checkDescriptionRoundTrip writes d as XML, reads it back and wants d.
func checkDescriptionRoundTrip(t *testing.T, d *Description) {
	t.Helper()
	enc, err := d.AppendXML(nil)
	if errors.Is(err, ErrInvalid) {
		return // a description missing required elements is not written
	}
	if err != nil {
		t.Fatalf("AppendXML = %v", err)
	}
	back, err := ParseDescription(bytes.NewReader(enc))
	if err != nil || !reflect.DeepEqual(back, d) {
		t.Fatalf("ParseDescription(%s) = %+v, %v; want %+v", enc, back, err, d)
	}
}

func TestParseDescriptionFields(t *testing.T) {
	d, err := ParseDescription(bytes.NewReader(golden(t, "desc/desc-miniupnpd-2.3.1-igd2.xml")))
	if err != nil {
		t.Fatal(err)
	}
	wcd := Device{
		DeviceType: DeviceWANConnection2, FriendlyName: "WANConnectionDevice", Manufacturer: "MiniUPnP",
		ManufacturerURL: "http://miniupnp.free.fr/", ModelDescription: "MiniUPnP daemon", ModelName: "MiniUPnPd",
		ModelNumber: "20230225", ModelURL: "http://miniupnp.free.fr/", SerialNumber: "00000000",
		UDN: "uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ad",
		Services: []Service{{ServiceType: ServiceWANIP2, ServiceID: "urn:upnp-org:serviceId:WANIPConn1",
			SCPDURL: "/WANIPCn.xml", ControlURL: "/ctl/IPConn", EventSubURL: "/evt/IPConn"}},
	}
	switch {
	case d.SpecMajor != 1 || d.SpecMinor != 1 || d.ConfigID != 1337 || d.URLBase != "":
		t.Errorf("spec %d.%d configId %d URLBase %q; want 1.1, 1337, empty", d.SpecMajor, d.SpecMinor, d.ConfigID, d.URLBase)
	case d.Device.PresentationURL != "http://198.51.100.1/" || d.Device.Manufacturer != "Debian":
		t.Errorf("root device %+v", d.Device)
	case len(d.Device.Devices) != 1 || d.Device.Devices[0].DeviceType != DeviceWAN2 || len(d.Device.Devices[0].Devices) != 1:
		t.Fatalf("device tree %+v", d.Device.Devices)
	case !reflect.DeepEqual(d.Device.Devices[0].Devices[0], wcd):
		t.Errorf("WANConnectionDevice %+v; want %+v", d.Device.Devices[0].Devices[0], wcd)
	}
}

func TestDescriptionAppendXML(t *testing.T) {
	d := &Description{
		SpecMajor: 1, SpecMinor: 1, ConfigID: 7,
		Device: Device{
			DeviceType: DeviceIGD2, FriendlyName: "portleased & co", Manufacturer: "portlease", ModelName: "portleased",
			UDN: labUUID,
			Devices: []Device{{
				DeviceType: DeviceWAN2, FriendlyName: "WANDevice", Manufacturer: "portlease", ModelName: "portleased",
				UDN: "uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ac",
				Services: []Service{{ServiceType: ServiceWANIP2, ServiceID: "urn:upnp-org:serviceId:WANIPConn1",
					SCPDURL: "/WANIPCn.xml", ControlURL: "/ctl/IPConn", EventSubURL: "/evt/IPConn"}},
			}},
		},
	}
	want := "<?xml version=\"1.0\"?>\r\n" +
		"<root xmlns=\"urn:schemas-upnp-org:device-1-0\" configId=\"7\">\r\n" +
		"<specVersion><major>1</major><minor>1</minor></specVersion>\r\n" +
		"<device>\r\n" +
		"<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>\r\n" +
		"<friendlyName>portleased &amp; co</friendlyName>\r\n" +
		"<manufacturer>portlease</manufacturer>\r\n" +
		"<modelName>portleased</modelName>\r\n" +
		"<UDN>" + labUUID + "</UDN>\r\n" +
		"<deviceList>\r\n" +
		"<device>\r\n" +
		"<deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>\r\n" +
		"<friendlyName>WANDevice</friendlyName>\r\n" +
		"<manufacturer>portlease</manufacturer>\r\n" +
		"<modelName>portleased</modelName>\r\n" +
		"<UDN>uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ac</UDN>\r\n" +
		"<serviceList>\r\n" +
		"<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>" +
		"<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><SCPDURL>/WANIPCn.xml</SCPDURL>" +
		"<controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL></service>\r\n" +
		"</serviceList>\r\n" +
		"</device>\r\n" +
		"</deviceList>\r\n" +
		"</device>\r\n" +
		"</root>\r\n"
	got, err := d.AppendXML(nil)
	if err != nil || string(got) != want {
		t.Fatalf("AppendXML = %v\n%s\nwant\n%s", err, got, want)
	}
	checkDescriptionRoundTrip(t, d)

	d.Device.Devices[0].Services[0].ControlURL = ""
	if b, err := d.AppendXML([]byte("keep")); !errors.Is(err, ErrInvalid) || string(b) != "keep" {
		t.Errorf("AppendXML without controlURL = %q, %v; want keep, ErrInvalid", b, err)
	}
	d.Device.Devices[0].Services[0].ControlURL = "/ctl"
	d.Device.UDN = ""
	if _, err := d.AppendXML(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("AppendXML without UDN = %v; want ErrInvalid", err)
	}
}

func TestParseDescriptionErrors(t *testing.T) {
	deep := strings.Repeat("<deviceList><device>", 40) + strings.Repeat("</device></deviceList>", 40)
	for _, tt := range []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrMalformed},
		{"not XML", "HTTP/1.1 200 OK\r\n", ErrMalformed},
		{"other root", `<?xml version="1.0"?><scpd xmlns="urn:schemas-upnp-org:service-1-0"/>`, ErrMalformed},
		{"no device", `<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion/></root>`, ErrMalformed},
		{"truncated", `<root><device><deviceType>x</deviceType>`, ErrMalformed},
		{"two roots", `<root><device/></root><root/>`, ErrMalformed},
		{"text after root", `<root><device/></root>junk`, ErrMalformed},
		{"unknown encoding", `<?xml version="1.0" encoding="EBCDIC"?><root><device/></root>`, ErrMalformed},
		{"too deep", "<root><device>" + deep + "</device></root>", ErrMalformed},
		{"too large", "<root><device>" + strings.Repeat(" ", MaxDescriptionSize) + "</device></root>", ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseDescription(strings.NewReader(tt.in)); !errors.Is(err, tt.want) {
				t.Fatalf("ParseDescription(%.60q) = %v; want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseDescriptionTolerant(t *testing.T) {
	// An "&" left unescaped ("AT&T"), an unknown entity, an element left
	// unclosed inside its parent: encoding/xml's non-strict mode.
	in := `<root><specVersion><major>x</major></specVersion><device><friendlyName>AT&T &nbsp;box</friendlyName>` +
		`<deviceType>t</deviceType><serviceList><service><serviceType>` + ServiceWANIP1 + `</serviceType>` +
		`<controlURL>/c</controlURL><x-vendor></service></serviceList></device></root>`
	d, err := ParseDescription(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if d.Device.FriendlyName != "AT&T &nbsp;box" || d.SpecMajor != 0 || d.ConfigID != -1 {
		t.Errorf("description %+v", d)
	}
	cs := d.ConnectionServices(nil)
	if len(cs) != 1 || cs[0].ControlURL.String() != "/c" || cs[0].EventSubURL != nil {
		t.Errorf("ConnectionServices(nil) = %+v; want one with a relative /c", services(cs))
	}
}

func TestConnectionServicesSkipsUnusable(t *testing.T) {
	d := &Description{Device: Device{Services: []Service{
		{ServiceType: ServiceWANIP1},                            // no controlURL
		{ServiceType: ServiceWANIP1, ControlURL: "http://[::1"}, // unreadable
		{ServiceType: "urn:schemas-upnp-org:service:WANIPConnection:3", ControlURL: "/v3"},
		{ServiceType: ServiceWANCommon1, ControlURL: "/common"},
		{ServiceType: ServiceWANPPP1, ControlURL: "/ppp"},
	}}}
	got := services(d.ConnectionServices(mustURL(t, "http://192.168.1.1/d.xml")))
	want := []wantService{{ServiceWANPPP1, 1, "http://192.168.1.1/ppp", ""}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ConnectionServices = %+v; want %+v", got, want)
	}
}

func TestRebaseToHost(t *testing.T) {
	for _, tt := range []struct {
		name, u, location, want string
	}{
		{"URLBase 127.0.0.1, same port", "http://127.0.0.1:5000/ctl/IPConn", "http://192.168.1.1:5000/rootDesc.xml", "http://192.168.1.1:5000/ctl/IPConn"},
		{"MikroTik URLBase 10.0.0.1:2828", "http://10.0.0.1:2828/upnp/control/yomkmsnooi/wanipconn-1", "http://192.168.88.1:2828/rootDesc.xml", "http://192.168.88.1:2828/upnp/control/yomkmsnooi/wanipconn-1"},
		{"u's port is kept", "http://10.0.0.1:49153/ctl?x=1", "http://192.168.1.1:49152/desc.xml", "http://192.168.1.1:49153/ctl?x=1"},
		{"no port in u: location's", "http://10.0.0.1/ctl", "http://192.168.1.1:49152/desc.xml", "http://192.168.1.1:49152/ctl"},
		{"no port anywhere", "http://10.0.0.1/ctl", "http://192.168.1.1/desc.xml", "http://192.168.1.1/ctl"},
		{"IPv6 location", "http://[fd00::99]:5000/ctl", "http://[fe80::1%25eth0]:5000/rootDesc.xml", "http://[fe80::1%25eth0]:5000/ctl"},
		{"IPv6 location without port", "http://10.0.0.1/ctl", "http://[2001:db8::1]/d.xml", "http://[2001:db8::1]/ctl"},
		{"relative u takes location's scheme", "/ctl/IPConn", "http://192.168.1.1:5000/rootDesc.xml", "http://192.168.1.1:5000/ctl/IPConn"},
		{"https kept", "https://127.0.0.1:5443/ctl", "http://192.168.1.1:5000/rootDesc.xml", "https://192.168.1.1:5443/ctl"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := mustURL(t, tt.u)
			got := RebaseToHost(u, mustURL(t, tt.location))
			if got.String() != tt.want {
				t.Fatalf("RebaseToHost(%s, %s) = %s; want %s", tt.u, tt.location, got, tt.want)
			}
			if u.String() != tt.u {
				t.Fatalf("RebaseToHost changed its argument to %s", u)
			}
		})
	}
	if RebaseToHost(nil, mustURL(t, "http://h/")) != nil {
		t.Error("RebaseToHost(nil, …) != nil")
	}
	u := mustURL(t, "http://127.0.0.1:5000/c")
	if got := RebaseToHost(u, nil); got == u || got.String() != u.String() {
		t.Errorf("RebaseToHost(u, nil) = %v; want a copy of %v", got, u)
	}
}
