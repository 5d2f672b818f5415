package upnp

import (
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// deviceNS is the namespace of a device description (UDA 1.1 §2.3,
// "urn:schemas-upnp-org:device-1-0").
const deviceNS = "urn:schemas-upnp-org:device-1-0"

// Description is a root device description, the document at the LOCATION
// of an SSDP message (UDA 1.1 §2.3).
type Description struct {
	// SpecMajor and SpecMinor are the UDA version of specVersion, 1 and 0
	// or 1 for an IGD; 0 when absent or unreadable.
	SpecMajor, SpecMinor int
	// ConfigID is the configId attribute of the root element (UDA 1.1
	// §2.3), -1 when absent.
	ConfigID int
	// URLBase is the base of the relative URLs, deprecated since UDA 1.1
	// and removed in UDA 2.0; empty when absent, which is usual.
	URLBase string
	// Device is the root device.
	Device Device
}

// Device is a device of a description, the root one or an embedded one
// (UDA 1.1 §2.3).
type Device struct {
	// DeviceType is "urn:schemas-upnp-org:device:deviceType:v" or a
	// vendor's type.
	DeviceType string
	// FriendlyName is the short name for users.
	FriendlyName string
	// Manufacturer is the manufacturer's name.
	Manufacturer string
	// ManufacturerURL is the manufacturer's web site; optional.
	ManufacturerURL string
	// ModelDescription is a long description for users; optional.
	ModelDescription string
	// ModelName is the model's name.
	ModelName string
	// ModelNumber is the model's number; optional.
	ModelNumber string
	// ModelURL is the model's web site; optional.
	ModelURL string
	// SerialNumber is the serial number; optional.
	SerialNumber string
	// UDN is the unique device name, "uuid:…".
	UDN string
	// PresentationURL is the device's web interface; optional.
	PresentationURL string
	// Services are the services of serviceList.
	Services []Service
	// Devices are the embedded devices of deviceList.
	Devices []Device
}

// Service is a service of a device (UDA 1.1 §2.3, serviceList). Its URLs
// are as written: relative to the description's URL or URLBase.
type Service struct {
	ServiceType string // "urn:schemas-upnp-org:service:serviceType:v"
	ServiceID   string // "urn:upnp-org:serviceId:serviceID"
	SCPDURL     string // the service description
	ControlURL  string // where actions are POSTed (§3.2)
	EventSubURL string // where events are subscribed to (§4.1.2)
}

// ParseDescription reads a device description (UDA 1.1 §2.3) from r. It
// reads at most MaxDescriptionSize bytes (ErrTooLarge beyond) and is
// tolerant: elements match by local name whatever their namespace, prefix or
// case ("controlUrl" is "controlURL"), white space around values is dropped,
// unknown elements (iconList, UPC, vendor extensions) are skipped, and
// specVersion and URLBase may be missing. The root element must be "root"
// and hold a device, else the error wraps ErrMalformed.
func ParseDescription(r io.Reader) (*Description, error) {
	data, err := readLimited(r, MaxDescriptionSize)
	if err != nil {
		return nil, err
	}
	root, err := parseXML(data)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(root.name.Local, "root") {
		return nil, malformed("description root element is <%s>, not <root>", root.name.Local)
	}
	dev := root.child("device")
	if dev == nil {
		return nil, malformed("description without a root device")
	}
	d := &Description{ConfigID: -1, URLBase: root.childText("URLBase")}
	if v, ok := root.attr("configId"); ok {
		d.ConfigID = parseID(strings.TrimSpace(v))
	}
	if sv := root.child("specVersion"); sv != nil {
		d.SpecMajor, _ = strconv.Atoi(sv.childText("major"))
		d.SpecMinor, _ = strconv.Atoi(sv.childText("minor"))
	}
	d.Device = parseDevice(dev)
	return d, nil
}

// parseDevice reads a device element and, recursively, its embedded
// devices (parseXML bounds the depth).
func parseDevice(n *node) Device {
	d := Device{
		DeviceType:       n.childText("deviceType"),
		FriendlyName:     n.childText("friendlyName"),
		Manufacturer:     n.childText("manufacturer"),
		ManufacturerURL:  n.childText("manufacturerURL"),
		ModelDescription: n.childText("modelDescription"),
		ModelName:        n.childText("modelName"),
		ModelNumber:      n.childText("modelNumber"),
		ModelURL:         n.childText("modelURL"),
		SerialNumber:     n.childText("serialNumber"),
		UDN:              n.childText("UDN"),
		PresentationURL:  n.childText("presentationURL"),
	}
	if l := n.child("serviceList"); l != nil {
		for _, c := range l.children {
			if strings.EqualFold(c.name.Local, "service") {
				d.Services = append(d.Services, Service{
					ServiceType: c.childText("serviceType"),
					ServiceID:   c.childText("serviceId"),
					SCPDURL:     c.childText("SCPDURL"),
					ControlURL:  c.childText("controlURL"),
					EventSubURL: c.childText("eventSubURL"),
				})
			}
		}
	}
	if l := n.child("deviceList"); l != nil {
		for _, c := range l.children {
			if strings.EqualFold(c.name.Local, "device") {
				d.Devices = append(d.Devices, parseDevice(c))
			}
		}
	}
	return d
}

// AppendXML appends the description to b as the document of UDA 1.1 §2.3,
// for the device side:
//
//	<?xml version="1.0"?>
//	<root xmlns="urn:schemas-upnp-org:device-1-0" configId="n">
//	<specVersion><major>1</major><minor>1</minor></specVersion>
//	<URLBase>…</URLBase>                       (when set)
//	<device>
//	<deviceType>…</deviceType><friendlyName>…</friendlyName>
//	<manufacturer>…</manufacturer><manufacturerURL>…</manufacturerURL>
//	<modelDescription>…</modelDescription><modelName>…</modelName>
//	<modelNumber>…</modelNumber><modelURL>…</modelURL>
//	<serialNumber>…</serialNumber><UDN>…</UDN>
//	<serviceList><service><serviceType>…</serviceType><serviceId>…</serviceId>
//	<SCPDURL>…</SCPDURL><controlURL>…</controlURL><eventSubURL>…</eventSubURL>
//	</service>…</serviceList>
//	<deviceList><device>…</device>…</deviceList>
//	<presentationURL>…</presentationURL>
//	</device>
//	</root>
//
// in the order §2.3 gives, one element a line, values escaped. SpecMajor
// and SpecMinor are written as they are (1 and 1 for a UDA 1.1 device).
// Optional elements are left out when empty, configId when ConfigID is
// negative. It
// returns b unchanged and an error wrapping ErrInvalid when a device lacks
// deviceType, friendlyName, manufacturer, modelName or UDN, or a service
// lacks one of its five URLs and names, all REQUIRED by §2.3.
func (d *Description) AppendXML(b []byte) ([]byte, error) {
	if err := d.Device.check(); err != nil {
		return b, err
	}
	b = append(b, "<?xml version=\"1.0\"?>\r\n<root xmlns=\""+deviceNS+"\""...)
	if d.ConfigID >= 0 {
		b = append(b, ` configId="`...)
		b = strconv.AppendInt(b, int64(d.ConfigID), 10)
		b = append(b, '"')
	}
	b = append(b, ">\r\n<specVersion><major>"...)
	b = strconv.AppendInt(b, int64(d.SpecMajor), 10)
	b = append(b, "</major><minor>"...)
	b = strconv.AppendInt(b, int64(d.SpecMinor), 10)
	b = append(b, "</minor></specVersion>\r\n"...)
	if d.URLBase != "" {
		b = appendElement(b, "URLBase", d.URLBase)
		b = append(b, "\r\n"...)
	}
	b = d.Device.appendXML(b)
	return append(b, "</root>\r\n"...), nil
}

// check returns an error wrapping ErrInvalid when d or an embedded device
// lacks an element UDA 1.1 §2.3 requires.
func (d *Device) check() error {
	if d.DeviceType == "" || d.FriendlyName == "" || d.Manufacturer == "" || d.ModelName == "" || d.UDN == "" {
		return invalid("device %q needs deviceType, friendlyName, manufacturer, modelName and UDN", d.UDN)
	}
	for _, s := range d.Services {
		if s.ServiceType == "" || s.ServiceID == "" || s.SCPDURL == "" || s.ControlURL == "" || s.EventSubURL == "" {
			return invalid("service %q of device %q needs serviceType, serviceId, SCPDURL, controlURL and eventSubURL", s.ServiceID, d.UDN)
		}
	}
	for i := range d.Devices {
		if err := d.Devices[i].check(); err != nil {
			return err
		}
	}
	return nil
}

// appendXML appends the device element.
func (d *Device) appendXML(b []byte) []byte {
	b = append(b, "<device>\r\n"...)
	for _, e := range [...]struct{ name, value string }{
		{"deviceType", d.DeviceType},
		{"friendlyName", d.FriendlyName},
		{"manufacturer", d.Manufacturer},
		{"manufacturerURL", d.ManufacturerURL},
		{"modelDescription", d.ModelDescription},
		{"modelName", d.ModelName},
		{"modelNumber", d.ModelNumber},
		{"modelURL", d.ModelURL},
		{"serialNumber", d.SerialNumber},
		{"UDN", d.UDN},
	} {
		if e.value != "" {
			b = appendElement(b, e.name, e.value)
			b = append(b, "\r\n"...)
		}
	}
	if len(d.Services) > 0 {
		b = append(b, "<serviceList>\r\n"...)
		for _, s := range d.Services {
			b = append(b, "<service>"...)
			b = appendElement(b, "serviceType", s.ServiceType)
			b = appendElement(b, "serviceId", s.ServiceID)
			b = appendElement(b, "SCPDURL", s.SCPDURL)
			b = appendElement(b, "controlURL", s.ControlURL)
			b = appendElement(b, "eventSubURL", s.EventSubURL)
			b = append(b, "</service>\r\n"...)
		}
		b = append(b, "</serviceList>\r\n"...)
	}
	if len(d.Devices) > 0 {
		b = append(b, "<deviceList>\r\n"...)
		for i := range d.Devices {
			b = d.Devices[i].appendXML(b)
		}
		b = append(b, "</deviceList>\r\n"...)
	}
	if d.PresentationURL != "" {
		b = appendElement(b, "presentationURL", d.PresentationURL)
		b = append(b, "\r\n"...)
	}
	return append(b, "</device>\r\n"...)
}

// ConnectionService is a WAN connection service found in a description,
// with its URLs resolved: what a control point needs to map ports.
type ConnectionService struct {
	// ServiceType is the serviceType as written: ServiceWANIP2,
	// ServiceWANIP1 or ServiceWANPPP1, or the TR-064 forms
	// "urn:dslforum-org:service:WANIPConnection:1" and
	// "urn:dslforum-org:service:WANPPPConnection:1". Actions go to the
	// service with this type, the SOAPACTION namespace included.
	ServiceType string
	// Version is the service version, 1 or 2: AddAnyPortMapping,
	// DeletePortMappingRange and GetListOfPortMappings need 2.
	Version int
	// ServiceID is the serviceId, to tell apart two services of one type.
	ServiceID string
	// ControlURL is where actions are POSTed, resolved as written even when
	// it names another host than the description's; see RebaseToHost.
	ControlURL *url.URL
	// EventSubURL is the resolved eventSubURL, nil when absent.
	EventSubURL *url.URL
	// DeviceType, UDN and FriendlyName are those of the root device.
	DeviceType, UDN, FriendlyName string
}

// connectionRank ranks the service types ConnectionServices returns, best
// first, and gives their versions: IGD:2's WANIPConnection:2
// (AddAnyPortMapping, leases), then WANIPConnection:1, then
// WANPPPConnection:1, whose template defines the same port-mapping actions;
// then the same services under the TR-064 "dslforum-org" namespace, which
// some routers publish instead (the Huawei HG531 of tailscale issue 10911)
// and which answer the same actions. ok is false for other types.
func connectionRank(serviceType string) (rank, version int, ok bool) {
	switch serviceType {
	case ServiceWANIP2:
		return 0, 2, true
	case ServiceWANIP1:
		return 1, 1, true
	case ServiceWANPPP1:
		return 2, 1, true
	case "urn:dslforum-org:service:WANIPConnection:1":
		return 3, 1, true
	case "urn:dslforum-org:service:WANPPPConnection:1":
		return 4, 1, true
	}
	return 0, 0, false
}

// ConnectionServices returns every WANIPConnection:2, WANIPConnection:1 and
// WANPPPConnection:1 service of the description, wherever it sits in the
// device tree (IGDs nest it as InternetGatewayDevice → WANDevice →
// WANConnectionDevice, but any nesting is searched), best first: by type in
// that order, then in document order. Services without a usable controlURL
// are left out.
//
// URLs are resolved against URLBase when it is an absolute URL (UDA 1.0
// §2.1; deprecated by UDA 1.1 §2.3, still sent by older routers), else
// against location, the URL the description was fetched from; with a nil
// location, relative URLs stay relative. A URL naming another host than
// location's is kept as written: some routers put an unreachable address
// there (127.0.0.1, or another LAN address, as in the MikroTik description
// of tailscale issue 8364). ConnectionServices cannot know which is right;
// a client that cannot reach the named host retries with RebaseToHost.
func (d *Description) ConnectionServices(location *url.URL) []ConnectionService {
	base := location
	if d.URLBase != "" {
		if u, err := url.Parse(d.URLBase); err == nil && u.IsAbs() && u.Host != "" {
			base = u
		}
	}
	type ranked struct {
		rank int
		s    ConnectionService
	}
	var found []ranked
	var walk func(dev *Device)
	walk = func(dev *Device) {
		for _, s := range dev.Services {
			rank, version, ok := connectionRank(s.ServiceType)
			if !ok {
				continue
			}
			control := resolveURL(base, s.ControlURL)
			if control == nil {
				continue
			}
			found = append(found, ranked{rank, ConnectionService{
				ServiceType:  s.ServiceType,
				Version:      version,
				ServiceID:    s.ServiceID,
				ControlURL:   control,
				EventSubURL:  resolveURL(base, s.EventSubURL),
				DeviceType:   d.Device.DeviceType,
				UDN:          d.Device.UDN,
				FriendlyName: d.Device.FriendlyName,
			}})
		}
		for i := range dev.Devices {
			walk(&dev.Devices[i])
		}
	}
	walk(&d.Device)
	slices.SortStableFunc(found, func(a, b ranked) int { return a.rank - b.rank })
	out := make([]ConnectionService, len(found))
	for i, f := range found {
		out[i] = f.s
	}
	return out
}

// resolveURL resolves ref against base (RFC 3986 §5.2), or returns nil when
// ref is empty or unreadable. With a nil base, ref is returned as it is.
func resolveURL(base *url.URL, ref string) *url.URL {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil
	}
	u, err := url.Parse(ref)
	if err != nil {
		return nil
	}
	if base == nil {
		return u
	}
	return base.ResolveReference(u)
}

// RebaseToHost returns a copy of u aimed at the host that served the
// description: scheme, path and query of u; the host name of location; the
// port of u when u names one, else the port of location (none when neither
// does). A nil location returns a copy of u; a nil u returns nil.
//
// Why: a description may name a host in its URLBase or absolute control
// URLs that the control point cannot reach or that is not the gateway that
// answered: 127.0.0.1, another LAN address, a WAN address (the MikroTik
// description of tailscale issue 8364 has URLBase http://10.0.0.1:2828 and
// presentationURL http://127.0.0.1/). The host that served the description
// is known to answer, so a control point retries there. It keeps u's port
// when u names one because the wrong part is usually the address, not the
// port of the router's UPnP server; when u names none, the port that served
// the description is the better guess than the scheme's default.
//
// For example, u http://127.0.0.1:5000/ctl/IPConn and location
// http://192.168.1.1:5000/rootDesc.xml give http://192.168.1.1:5000/ctl/IPConn;
// u http://10.0.0.1/ctl and location http://192.168.1.1:49152/desc.xml give
// http://192.168.1.1:49152/ctl.
func RebaseToHost(u, location *url.URL) *url.URL {
	if u == nil {
		return nil
	}
	out := &url.URL{
		Scheme:   u.Scheme,
		Host:     u.Host,
		Path:     u.Path,
		RawPath:  u.RawPath,
		RawQuery: u.RawQuery,
	}
	if location == nil {
		out.User, out.Opaque, out.Fragment = u.User, u.Opaque, u.Fragment
		return out
	}
	if out.Scheme == "" {
		out.Scheme = location.Scheme
	}
	port := u.Port()
	if port == "" {
		port = location.Port()
	}
	host := location.Hostname()
	switch {
	case port != "":
		out.Host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"):
		out.Host = "[" + host + "]"
	default:
		out.Host = host
	}
	return out
}

// FirewallControl returns the first WANIPv6FirewallControl:1 service of the
// description (IGD:2 embeds it in the WANConnectionDevice:2), wherever it
// sits in the device tree, with its URLs resolved as ConnectionServices
// resolves them; ok is false when there is none with a usable controlURL.
// Its Version is 1; DeviceType, UDN and FriendlyName are the root device's.
func (d *Description) FirewallControl(location *url.URL) (s ConnectionService, ok bool) {
	base := location
	if d.URLBase != "" {
		if u, err := url.Parse(d.URLBase); err == nil && u.IsAbs() && u.Host != "" {
			base = u
		}
	}
	var walk func(dev *Device) bool
	walk = func(dev *Device) bool {
		for _, sv := range dev.Services {
			if sv.ServiceType != ServiceWANIPv6FC1 {
				continue
			}
			control := resolveURL(base, sv.ControlURL)
			if control == nil {
				continue
			}
			s = ConnectionService{
				ServiceType:  sv.ServiceType,
				Version:      1,
				ServiceID:    sv.ServiceID,
				ControlURL:   control,
				EventSubURL:  resolveURL(base, sv.EventSubURL),
				DeviceType:   d.Device.DeviceType,
				UDN:          d.Device.UDN,
				FriendlyName: d.Device.FriendlyName,
			}
			return true
		}
		for i := range dev.Devices {
			if walk(&dev.Devices[i]) {
				return true
			}
		}
		return false
	}
	return s, walk(&d.Device)
}
