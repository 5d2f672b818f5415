package igdclient

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/portlease/portlease/upnp"
)

// firewallDescription is an IGD:2 with WANIPConnection:2 and
// WANIPv6FirewallControl:1 in its WANConnectionDevice:2.
const firewallDescription = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>1</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><friendlyName>fw</friendlyName><UDN>uuid:fw</UDN>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType><UDN>uuid:fw-wan</UDN>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType><UDN>uuid:fw-conn</UDN>
<serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><SCPDURL>/ip.xml</SCPDURL><controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL></service>
%FIREWALL%
</serviceList></device></deviceList></device></deviceList></device></root>`

const firewallService = `<service><serviceType>urn:schemas-upnp-org:service:WANIPv6FirewallControl:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPv6Firewall1</serviceId><SCPDURL>/fc.xml</SCPDURL><controlURL>/ctl/IP6FCtl</controlURL><eventSubURL>/evt/IP6FCtl</eventSubURL></service>`

// fakeFirewall answers the pinhole actions with a table keyed by
// UniqueID, and records the actions received.
type fakeFirewall struct {
	mu      sync.Mutex
	next    uint16
	holes   map[uint16]upnp.Pinhole
	actions []upnp.Action
}

func (f *fakeFirewall) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fault := func(code upnp.ErrorCode) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(upnp.AppendFaultEnvelope(nil, int(code), "Error"))
	}
	a, err := upnp.ParseActionRequest(r.Body, r.Header.Get("SOAPAction"))
	if err != nil || r.URL.Path != "/ctl/IP6FCtl" {
		fault(upnp.InvalidAction)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, a)
	var out []upnp.Arg
	switch a.Name {
	case upnp.ActionAddPinhole:
		p, err := upnp.PinholeArgs(a)
		if err != nil {
			fault(upnp.InvalidArgs)
			return
		}
		f.next++
		f.holes[f.next] = p
		out = []upnp.Arg{{Name: upnp.ArgUniqueID, Value: strconv.Itoa(int(f.next))}}
	case upnp.ActionUpdatePinhole, upnp.ActionDeletePinhole:
		id, err := upnp.UniqueIDArg(a)
		if err != nil {
			fault(upnp.InvalidArgs)
			return
		}
		if _, ok := f.holes[id]; !ok {
			fault(upnp.NoSuchEntry)
			return
		}
		if a.Name == upnp.ActionDeletePinhole {
			delete(f.holes, id)
		}
	case upnp.ActionGetFirewallStatus:
		out = []upnp.Arg{{Name: upnp.ArgFirewallEnabled, Value: "1"}, {Name: upnp.ArgInboundPinholeAllowed, Value: "1"}}
	default:
		fault(upnp.InvalidAction)
		return
	}
	w.Write(upnp.Response{Action: a.Name, Args: out}.AppendEnvelope(upnp.ServiceWANIPv6FC1, nil))
}

// dialFirewall serves a description (with the firewall service when fw is
// set) and the firewall's control, and dials it.
func dialFirewall(t *testing.T, withFW bool) (*IGD, *fakeFirewall) {
	t.Helper()
	f := &fakeFirewall{holes: make(map[uint16]upnp.Pinhole)}
	mux := http.NewServeMux()
	desc := strings.Replace(firewallDescription, "%FIREWALL%", "", 1)
	if withFW {
		desc = strings.Replace(firewallDescription, "%FIREWALL%", firewallService, 1)
	}
	mux.HandleFunc("/rootDesc.xml", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(desc)) })
	mux.Handle("/ctl/", f)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	g, err := New(Config{}).Dial(t.Context(), srv.URL+"/rootDesc.xml", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	return g, f
}

func TestPinholeLife(t *testing.T) {
	g, f := dialFirewall(t, true)
	if g.Firewall == nil || g.Firewall.ServiceType != upnp.ServiceWANIPv6FC1 {
		t.Fatalf("Firewall = %+v; want the WANIPv6FirewallControl:1 service", g.Firewall)
	}
	ctx := t.Context()
	p := upnp.Pinhole{RemoteHost: netip.MustParseAddr("2001:db8:2::7"), RemotePort: 4000,
		InternalClient: netip.MustParseAddr("2001:db8:1::10"), InternalPort: 4662, Protocol: upnp.PinholeTCP, LeaseTime: 3600}
	id, err := g.AddPinhole(ctx, p)
	if err != nil || id != 1 {
		t.Fatalf("AddPinhole = %d, %v; want 1", id, err)
	}
	if got := f.holes[1]; got != p {
		t.Errorf("the router holds %+v; want %+v", got, p)
	}
	if err := g.UpdatePinhole(ctx, id, 7200); err != nil {
		t.Errorf("UpdatePinhole = %v", err)
	}
	if on, in, err := g.FirewallStatus(ctx); !on || !in || err != nil {
		t.Errorf("FirewallStatus = %v, %v, %v; want true, true, nil", on, in, err)
	}
	if err := g.DeletePinhole(ctx, id); err != nil {
		t.Errorf("DeletePinhole = %v", err)
	}
	for name, err := range map[string]error{
		"UpdatePinhole": g.UpdatePinhole(ctx, id, 7200),
		"DeletePinhole": g.DeletePinhole(ctx, id),
	} {
		if code, _ := upnp.FaultCode(err); !errors.Is(err, ErrNotFound) || code != upnp.NoSuchEntry {
			t.Errorf("%s of a deleted pinhole = %v; want ErrNotFound and 704", name, err)
		}
	}
	if a := f.actions[1]; a.Name != upnp.ActionUpdatePinhole || a.ServiceType != upnp.ServiceWANIPv6FC1 {
		t.Errorf("second action %s of %s; want UpdatePinhole of %s", a.Name, a.ServiceType, upnp.ServiceWANIPv6FC1)
	}
}

func TestPinholeWithoutFirewall(t *testing.T) {
	g, _ := dialFirewall(t, false)
	if g.Firewall != nil {
		t.Fatalf("Firewall = %+v; want nil", g.Firewall)
	}
	_, err := g.AddPinhole(t.Context(), upnp.Pinhole{InternalClient: netip.MustParseAddr("2001:db8:1::10"),
		InternalPort: 1, Protocol: upnp.PinholeTCP, LeaseTime: 1})
	if !errors.Is(err, ErrNoFirewallControl) {
		t.Errorf("AddPinhole = %v; want ErrNoFirewallControl", err)
	}
}
