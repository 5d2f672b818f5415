package upnpsrv

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/upnp"
)

// FuzzServeHTTP feeds arbitrary bodies and SOAPACTION headers (and methods
// and paths) through the handler: it must answer every one with 200, a 4xx
// or 500, a control request with a SOAP response (200) or a SOAP fault
// carrying a UPnPError (500), and never panic.
func FuzzServeHTTP(f *testing.F) {
	miniupnpc, err := os.ReadFile("../../upnp/testdata/soap/req-addportmapping-miniupnpc.xml")
	if err != nil {
		f.Fatal(err)
	}
	seeds := []upnp.Action{
		add(8080, "TCP", 8080, loopback, 3600),
		upnp.AddAnyPortMapping(ip2, upnp.PortMapping{Protocol: "UDP", InternalPort: 5000, Enabled: true}),
		upnp.DeletePortMapping(ip2, "", 8080, "TCP"),
		upnp.DeletePortMappingRange(ip2, 1, 65535, "TCP", true),
		upnp.GetGenericPortMappingEntry(ip2, 0),
		upnp.GetSpecificPortMappingEntry(ip1, "", 8080, "TCP"),
		upnp.GetListOfPortMappings(ip2, 0, 65535, "UDP", false, 10),
		upnp.GetExternalIPAddress(ip1),
		upnp.GetStatusInfo(ip2),
		action(upnp.ServiceWANCommon1, "GetTotalBytesSent"),
		action(serviceL3F1, "SetDefaultConnectionService", "NewDefaultConnectionService", "uuid:x,y"),
		action(controlNS, "QueryStateVariable", "varName", "ExternalIPAddress"),
		upnp.AddPinhole(upnp.Pinhole{InternalClient: netip.MustParseAddr(host6A), InternalPort: 8080, Protocol: 6, LeaseTime: 60}),
		upnp.UpdatePinhole(1, 60),
		upnp.CheckPinholeWorking(1),
		upnp.GetPinholePackets(1),
		upnp.DeletePinhole(1),
		upnp.GetFirewallStatus(),
		upnp.GetOutboundPinholeTimeout(upnp.Pinhole{Protocol: 65535}),
	}
	for _, a := range seeds {
		sel := byte(0)
		if a.ServiceType == upnp.ServiceWANIPv6FC1 {
			sel = 7 // POST to ctlFW
		}
		f.Add(sel, a.SOAPAction(), a.AppendEnvelope(nil))
	}
	f.Add(byte(0), `"`+ip1+`#AddPortMapping"`, miniupnpc)
	f.Add(byte(0), `"`+ip1+`#AddPortMapping"`, []byte(strings.Repeat("<a>", 10000)))
	f.Add(byte(0), `"`+ip2+`#GetStatusInfo"`, []byte(`<s:Envelope><s:Body><u:GetStatusInfo`))
	for name, act := range map[string]string{
		"req-addpinhole-miniupnpc.xml":          upnp.ActionAddPinhole,
		"req-addpinhole-filtered-miniupnpc.xml": upnp.ActionAddPinhole,
		"req-updatepinhole-miniupnpc.xml":       upnp.ActionUpdatePinhole,
	} {
		b, err := os.ReadFile("../../upnp/testdata/soap/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(7), upnp.ServiceWANIPv6FC1+"#"+act, b)
	}
	f.Add(byte(0), `#`, []byte{})
	f.Add(byte(3), "", []byte{})
	f.Add(byte(4), "", []byte{})

	table := newTable(f, gateway.Config{})
	cfg := testConfig(f)
	cfg.Logger = nil
	cfg.AllowForeign = true
	cfg.MaxSubscriptions = 4
	cfg.Dial = func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no network in the fuzzer")
	}
	cfg.Neighbours = labNeighbours
	cfg.OutboundTimeout = func(gateway.Protocol) (time.Duration, error) { return time.Minute, nil }
	s := startServer(f, cfg, table, newFakePinholes(table))
	fuzzPaths := [...]string{ctlIP, ctlCommon, ctlL3F, evtIP, DescriptionPath, "/WANIPCn.xml", "/nowhere", ctlFW}
	methods := [...]string{http.MethodPost, http.MethodGet, "SUBSCRIBE", "UNSUBSCRIBE", "M-POST"}

	f.Fuzz(func(t *testing.T, sel byte, soapAction string, body []byte) {
		path := fuzzPaths[int(sel)%len(fuzzPaths)]
		method := methods[int(sel>>4)%len(methods)]
		h := http.Header{}
		if soapAction != "" {
			h.Set("SOAPAction", soapAction)
		}
		if method == "SUBSCRIBE" {
			h.Set("CALLBACK", "<http://127.0.0.1:9/"+soapAction+">")
			h.Set("NT", "upnp:event")
		}
		w := serve(s, loopback, method, path, h, body)
		switch {
		case w.Code == http.StatusOK, w.Code >= 400 && w.Code < 500, w.Code == http.StatusInternalServerError, w.Code == http.StatusServiceUnavailable:
		default:
			t.Fatalf("%s %s: HTTP %d", method, path, w.Code)
		}
		if method != http.MethodPost || !strings.HasPrefix(path, "/ctl/") || w.Code == http.StatusRequestEntityTooLarge {
			return
		}
		_, err := upnp.ParseResponse(bytes.NewReader(w.Body.Bytes()), "")
		var fault *upnp.Fault
		switch {
		case w.Code == http.StatusOK && err != nil:
			t.Fatalf("200 with a body that is no response: %v\n%s", err, w.Body)
		case w.Code == http.StatusInternalServerError && (!errors.As(err, &fault) || fault.Code == 0):
			t.Fatalf("500 without a UPnPError: %v\n%s", err, w.Body)
		case w.Code != http.StatusOK && w.Code != http.StatusInternalServerError:
			t.Fatalf("control request answered HTTP %d", w.Code)
		}
	})
}
