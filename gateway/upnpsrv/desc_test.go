package upnpsrv

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/portlease/portlease/upnp"
)

// scpdDoc is what the tests read of a service description (UDA 1.1 §2.5).
type scpdDoc struct {
	XMLName  xml.Name `xml:"urn:schemas-upnp-org:service-1-0 scpd"`
	ConfigID string   `xml:"configId,attr"`
	Major    int      `xml:"specVersion>major"`
	Minor    int      `xml:"specVersion>minor"`
	Actions  []struct {
		Name string `xml:"name"`
		Args []struct {
			Name      string `xml:"name"`
			Direction string `xml:"direction"`
			Related   string `xml:"relatedStateVariable"`
		} `xml:"argumentList>argument"`
	} `xml:"actionList>action"`
	Vars []struct {
		SendEvents string   `xml:"sendEvents,attr"`
		Name       string   `xml:"name"`
		DataType   string   `xml:"dataType"`
		Allowed    []string `xml:"allowedValueList>allowedValue"`
	} `xml:"serviceStateTable>stateVariable"`
}

func TestDescription(t *testing.T) {
	for _, v := range []int{1, 2} {
		t.Run("IGD:"+strconv.Itoa(v), func(t *testing.T) {
			s := startServer(t, Config{Version: v}, nil, nil)
			w := serve(s, hostA, http.MethodGet, s.DescriptionPath(), nil, nil)
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != `text/xml; charset="utf-8"` {
				t.Fatalf("GET %s: %d %q", s.DescriptionPath(), w.Code, w.Header().Get("Content-Type"))
			}
			body := w.Body.Bytes()
			d, err := upnp.ParseDescription(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("ParseDescription: %v\n%s", err, body)
			}
			ver := strconv.Itoa(v)
			if d.SpecMajor != 1 || d.SpecMinor != 1 || d.ConfigID != 1 {
				t.Errorf("specVersion %d.%d, configId %d; want 1.1, 1", d.SpecMajor, d.SpecMinor, d.ConfigID)
			}
			root := d.Device
			if root.DeviceType != "urn:schemas-upnp-org:device:InternetGatewayDevice:"+ver || root.UDN != "uuid:"+testUUID || root.FriendlyName != "portleased" {
				t.Errorf("root device %s %s %q", root.DeviceType, root.UDN, root.FriendlyName)
			}
			if len(root.Services) != 1 || root.Services[0].ServiceType != serviceL3F1 || len(root.Devices) != 1 {
				t.Fatalf("root device services %+v, %d devices", root.Services, len(root.Devices))
			}
			wan := root.Devices[0]
			if wan.DeviceType != "urn:schemas-upnp-org:device:WANDevice:"+ver || len(wan.Services) != 1 ||
				wan.Services[0].ServiceType != upnp.ServiceWANCommon1 || len(wan.Devices) != 1 {
				t.Fatalf("WANDevice %+v", wan)
			}
			wcd := wan.Devices[0]
			// IGD:2 adds WANIPv6FirewallControl:1 (the lease core has pinholes).
			if wcd.DeviceType != "urn:schemas-upnp-org:device:WANConnectionDevice:"+ver || len(wcd.Services) != v {
				t.Fatalf("WANConnectionDevice %+v", wcd)
			}
			udns := []string{root.UDN, wan.UDN, wcd.UDN}
			for _, u := range udns {
				if !strings.HasPrefix(u, "uuid:") || !validUUID(u[5:]) {
					t.Errorf("UDN %q", u)
				}
			}
			if sorted := slices.Sorted(slices.Values(udns)); len(slices.Compact(sorted)) != 3 {
				t.Errorf("UDNs not unique: %v", udns)
			}
			// What a control point finds: miniupnpc and upnp.ConnectionServices
			// look for the WANIPConnection service and its control URL.
			loc, _ := url.Parse("http://" + gwHost + s.DescriptionPath())
			cs := d.ConnectionServices(loc)
			if len(cs) != 1 || cs[0].ServiceType != "urn:schemas-upnp-org:service:WANIPConnection:"+ver || cs[0].Version != v ||
				cs[0].ControlURL.String() != "http://"+gwHost+ctlIP || cs[0].EventSubURL.String() != "http://"+gwHost+"/evt/IPConn" {
				t.Fatalf("ConnectionServices = %+v", cs)
			}
			// What SSDP announces is what the description says.
			devs, svcs, uuids := s.Advertisement()
			if !slices.Equal(devs, []string{root.DeviceType, wan.DeviceType, wcd.DeviceType}) ||
				!slices.Equal(svcs, append([]string{serviceL3F1, upnp.ServiceWANCommon1}, serviceTypes(wcd.Services)...)) {
				t.Errorf("Advertisement = %v, %v", devs, svcs)
			}
			for typ, udn := range map[string]string{root.DeviceType: root.UDN, wan.DeviceType: wan.UDN, wcd.DeviceType: wcd.UDN,
				serviceL3F1: root.UDN, upnp.ServiceWANCommon1: wan.UDN, wcd.Services[0].ServiceType: wcd.UDN} {
				if "uuid:"+uuids[typ] != udn {
					t.Errorf("Advertisement UUID of %s = %q; the description says %s", typ, uuids[typ], udn)
				}
			}
			// Every service's description is served, and describes what the
			// control URL answers.
			for _, dev := range []upnp.Device{root, wan, wcd} {
				for _, sv := range dev.Services {
					checkSCPD(t, s, v, sv)
				}
			}
		})
	}
}

func checkSCPD(t *testing.T, s *Server, version int, sv upnp.Service) {
	t.Helper()
	w := serve(s, hostA, http.MethodGet, sv.SCPDURL, nil, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d", sv.SCPDURL, w.Code)
	}
	var doc scpdDoc
	if err := xml.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("%s: %v", sv.SCPDURL, err)
	}
	if doc.Major != 1 || doc.Minor != 1 || doc.ConfigID != "1" {
		t.Errorf("%s: specVersion %d.%d configId %q", sv.SCPDURL, doc.Major, doc.Minor, doc.ConfigID)
	}
	var svc *service
	for _, x := range s.services {
		if x.scpdPath == sv.SCPDURL {
			svc = x
		}
	}
	if svc == nil || svc.controlPath != sv.ControlURL || svc.eventPath != sv.EventSubURL || svc.typ != sv.ServiceType {
		t.Fatalf("description names %+v; the server has %+v", sv, svc)
	}
	vars := map[string]string{}
	var evented []string
	for _, v := range doc.Vars {
		if v.SendEvents != "yes" && v.SendEvents != "no" {
			t.Errorf("%s: %s sendEvents=%q", sv.SCPDURL, v.Name, v.SendEvents)
		}
		if v.SendEvents == "yes" {
			evented = append(evented, v.Name)
		}
		vars[v.Name] = v.DataType
	}
	var names []string
	for _, a := range doc.Actions {
		names = append(names, a.Name)
		if _, ok := svc.actions[a.Name]; !ok {
			t.Errorf("%s lists %s, which the server does not do", sv.SCPDURL, a.Name)
		}
		for _, arg := range a.Args {
			if _, ok := vars[arg.Related]; !ok || arg.Direction != "in" && arg.Direction != "out" ||
				!strings.HasPrefix(arg.Name, "New") && svc.typ != upnp.ServiceWANIPv6FC1 {
				t.Errorf("%s: %s argument %+v", sv.SCPDURL, a.Name, arg)
			}
		}
	}
	if len(names) != len(svc.actions) {
		t.Errorf("%s lists %v; the server does %d actions", sv.SCPDURL, names, len(svc.actions))
	}
	v2only := []string{"AddAnyPortMapping", "DeletePortMappingRange", "GetListOfPortMappings"}
	for _, n := range v2only {
		if svc.typ == upnp.ServiceWANIP2 != slices.Contains(names, n) {
			t.Errorf("IGD:%d %s lists %v", version, sv.SCPDURL, names)
		}
	}
	var want []string
	for _, p := range svc.evented(s) {
		want = append(want, p.name)
	}
	if !slices.Equal(evented, want) {
		t.Errorf("%s evented %v; the server sends %v", sv.SCPDURL, evented, want)
	}
}

func TestDocumentRequests(t *testing.T) {
	s := startServer(t, Config{}, nil, nil)
	tests := []struct {
		name   string
		client string
		method string
		path   string
		host   string
		code   int
	}{
		{"get", hostA, http.MethodGet, DescriptionPath, "", http.StatusOK},
		{"head", hostA, http.MethodHead, "/WANIPCn.xml", "", http.StatusOK},
		{"post", hostA, http.MethodPost, DescriptionPath, "", http.StatusMethodNotAllowed},
		{"get a control URL", hostA, http.MethodGet, ctlIP, "", http.StatusMethodNotAllowed},
		{"get an event URL", hostA, http.MethodGet, "/evt/IPConn", "", http.StatusMethodNotAllowed},
		{"unknown path", hostA, http.MethodGet, "/index.html", "", http.StatusNotFound},
		{"client outside the LAN", "192.0.2.99", http.MethodGet, DescriptionPath, "", http.StatusForbidden},
		{"IPv6 client outside the LAN", "[2001:db8::1]", http.MethodGet, DescriptionPath, "", http.StatusForbidden},
		{"Host a name (DNS rebinding)", hostA, http.MethodGet, DescriptionPath, "evil.example:5000", http.StatusForbidden},
		{"Host an address without port", hostA, http.MethodGet, DescriptionPath, "198.51.100.1", http.StatusOK},
		{"Host an IPv6 address", hostA, http.MethodGet, DescriptionPath, "[2001:db8:100::1]:5000", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(tt.method, "http://"+gwHost+tt.path, nil)
			r.RemoteAddr = tt.client + ":40000"
			if tt.host != "" {
				r.Host = tt.host
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != tt.code {
				t.Errorf("%s %s from %s: %d; want %d", tt.method, tt.path, tt.client, w.Code, tt.code)
			}
		})
	}
}

// serviceTypes lists the types of services, in order.
func serviceTypes(services []upnp.Service) []string {
	var out []string
	for _, s := range services {
		out = append(out, s.ServiceType)
	}
	return out
}
