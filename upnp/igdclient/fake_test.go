package igdclient

import (
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/portlease/portlease/upnp"
)

// This file holds the fakes the unit tests run against: a router on an
// httptest server (description + SOAP control with a small mapping table and
// switchable quirks) and an SSDP responder on 127.0.0.1. Nothing here
// touches port 1900 or multicast.

// Envelope shapes. Each is the form a real device answers in.
const (
	// miniupnpd 2.3.1 (Debian miniupnpd-nftables), captured in the lab
	// (testdata/miniupnpd-2.3.1-*.txt): one line, "s:" prefix, "u:" on the
	// action response; a fault has no XML declaration and no final CRLF.
	miniupnpdResponse = `<?xml version="1.0"?>` + "\r\n" +
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:%[1]sResponse xmlns:u="%[2]s">%[3]s</u:%[1]sResponse></s:Body></s:Envelope>` + "\r\n"
	miniupnpdFault = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode><errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`

	// ARRIS NVG578LX, as logged in tailscale issue 15223: "SOAP:" prefix,
	// CRLF and indentation, xsd/xsi namespaces declared.
	arrisFault = "<?xml version=\"1.0\"?>\r\n" +
		"<SOAP:Envelope xmlns:SOAP=\"http://schemas.xmlsoap.org/soap/envelope/\" SOAP:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\r\n" +
		" <SOAP:Body>\r\n   <SOAP:Fault>\r\n    <faultcode>SOAP:Client</faultcode>\r\n    <faultstring>UPnPError</faultstring>\r\n" +
		"    <detail>\r\n     <UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\">\r\n      <errorCode>%d</errorCode>\r\n" +
		"      <errorDescription>%s</errorDescription>\r\n     </UPnPError>\r\n    </detail>\r\n   </SOAP:Fault>\r\n </SOAP:Body>\r\n</SOAP:Envelope>\r\n"
)

// faultNames are the errorDescription texts of the faults the fakes send.
func faultName(code upnp.ErrorCode) string {
	switch code {
	case 401:
		return "Invalid Action"
	case 402:
		return "Invalid Args"
	case 602:
		return "Optional Action Not Implemented"
	case 606:
		return "Action not authorized"
	case 713:
		return "SpecifiedArrayIndexInvalid"
	case 714:
		return "NoSuchEntryInArray"
	case 718:
		return "ConflictInMappingEntry"
	case 724:
		return "SamePortValuesRequired"
	case 725:
		return "OnlyPermanentLeasesSupported"
	}
	return "Error"
}

// soapCall is one action received by a fakeRouter.
type soapCall struct {
	Action      string
	ServiceType string
	SOAPAction  string
	Args        map[string]string
}

// fakeService is one connection service of a fakeRouter.
type fakeService struct {
	status string // GetStatusInfo's NewConnectionStatus
	extIP  string // GetExternalIPAddress's answer
}

// fakeRouter is an IGD on an httptest server on 127.0.0.1. It serves
// descriptions by path and answers SOAP on any other path, keyed by the
// control path, with a mapping table shared by its services.
type fakeRouter struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	descs    map[string]string       // path -> description
	services map[string]*fakeService // control path -> service
	table    []upnp.PortMapping      // in insertion order
	calls    []soapCall
	gets     int // GET requests received

	// Quirks, set before use.
	faultTmpl        string         // the fault envelope, miniupnpdFault by default
	onlyPermanent    bool           // 725 to any lease but 0
	invalidArgsLease bool           // 402 to any lease but 0
	tableFull        bool           // 402 to every AddPortMapping
	samePort         bool           // 724 when external and internal ports differ
	refuseRefresh    bool           // 718 to a re-add by the same client
	fixedLease       uint32         // lease held whatever was asked, when not 0
	maxLease         uint32         // leases above are shortened to it, when not 0
	noLeases         bool           // every mapping is held without a lease (read back 0)
	faultIn200       bool           // faults come with HTTP status 200, not 500
	endMarker        upnp.ErrorCode // answer past the end of the table, 713 by default
	endEmpty         bool           // past the end, answer an entry with empty fields
	ignoreIndex      bool           // GetGenericPortMappingEntry answers entry 0 for any index
	emptyMissing     bool           // GetSpecificPortMappingEntry answers empty fields for a missing entry
	noAddAny         bool           // 401 to AddAnyPortMapping
	noSpecific       bool           // 401 to GetSpecificPortMappingEntry
	grantedElsewhere string         // AddPortMapping succeeds, but the entry forwards to this client
	busy             int            // 503 with busyAfter to this many actions, before answering
	busyAfter        string         // the Retry-After of a busy answer
}

// newFakeRouter starts a router serving the descriptions in descs (path ->
// text; "{{URLBASE}}" in a text is replaced with the server's base URL with
// 127.0.0.1 replaced by 127.0.0.2, a host nothing answers on) with the
// services given by control path.
func newFakeRouter(t *testing.T, descs map[string]string, services map[string]*fakeService) *fakeRouter {
	t.Helper()
	return newFakeRouterOn(t, nil, descs, services)
}

// newFakeRouterOn is newFakeRouter serving on ln (nil: 127.0.0.1 and a port
// of its own), which it closes.
func newFakeRouterOn(t *testing.T, ln net.Listener, descs map[string]string, services map[string]*fakeService) *fakeRouter {
	t.Helper()
	r := &fakeRouter{t: t, descs: descs, services: services, faultTmpl: miniupnpdFault, endMarker: upnp.SpecifiedArrayIndexInvalid}
	if ln == nil {
		r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	} else {
		r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
		r.srv.Listener.Close()
		r.srv.Listener = ln
		r.srv.Start()
	}
	t.Cleanup(r.srv.Close)
	return r
}

// url returns the server's URL for path.
func (r *fakeRouter) url(path string) string { return r.srv.URL + path }

// port returns the server's TCP port.
func (r *fakeRouter) port() int {
	return r.srv.Listener.Addr().(*net.TCPAddr).Port
}

// deadHostURL returns the server's base URL on 127.0.0.2, where nothing
// listens on its port.
func (r *fakeRouter) deadHostURL() string {
	return "http://127.0.0.2:" + strconv.Itoa(r.port())
}

func (r *fakeRouter) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	desc, isDesc := r.descs[req.URL.Path]
	if req.Method == http.MethodGet {
		r.gets++
	}
	r.mu.Unlock()
	if req.Method == http.MethodGet && isDesc {
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		io.WriteString(w, strings.ReplaceAll(desc, "{{URLBASE}}", r.deadHostURL()))
		return
	}
	if req.Method != http.MethodPost {
		http.NotFound(w, req)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<16))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	call, err := parseSOAPRequest(body)
	if err != nil {
		r.t.Errorf("fake router: bad request %q: %v", body, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	call.SOAPAction = req.Header.Get("SOAPAction")
	r.mu.Lock()
	r.calls = append(r.calls, call)
	if r.busy > 0 {
		r.busy--
		r.mu.Unlock()
		w.Header().Set("Retry-After", r.busyAfter)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	svc := r.services[req.URL.Path]
	status, out := r.answer(svc, call)
	r.mu.Unlock()
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	w.WriteHeader(status)
	io.WriteString(w, out)
}

// fault returns a fault answer.
func (r *fakeRouter) fault(code upnp.ErrorCode) (int, string) {
	status := http.StatusInternalServerError
	if r.faultIn200 {
		status = http.StatusOK
	}
	return status, fmt.Sprintf(r.faultTmpl, int(code), faultName(code))
}

// ok returns a successful answer with args (name, value pairs).
func (r *fakeRouter) ok(call soapCall, args ...string) (int, string) {
	var b strings.Builder
	for i := 0; i+1 < len(args); i += 2 {
		fmt.Fprintf(&b, "<%s>%s</%s>", args[i], args[i+1], args[i])
	}
	return http.StatusOK, fmt.Sprintf(miniupnpdResponse, call.Action, call.ServiceType, b.String())
}

// find returns the index of the entry for (external port, protocol), or -1.
func (r *fakeRouter) find(port uint16, proto string) int {
	return slices.IndexFunc(r.table, func(m upnp.PortMapping) bool {
		return m.ExternalPort == port && m.Protocol == proto
	})
}

// entryArgs returns the output arguments describing m.
func entryArgs(m upnp.PortMapping, generic bool) []string {
	enabled := "0"
	if m.Enabled {
		enabled = "1"
	}
	var a []string
	if generic {
		a = append(a, "NewRemoteHost", m.RemoteHost, "NewExternalPort", strconv.Itoa(int(m.ExternalPort)),
			"NewProtocol", m.Protocol)
	}
	return append(a, "NewInternalPort", strconv.Itoa(int(m.InternalPort)), "NewInternalClient", m.InternalClient,
		"NewEnabled", enabled, "NewPortMappingDescription", m.Description,
		"NewLeaseDuration", strconv.FormatUint(uint64(m.LeaseDuration), 10))
}

// answer plays the router. Called with r.mu held.
func (r *fakeRouter) answer(svc *fakeService, c soapCall) (int, string) {
	if svc == nil {
		return r.fault(401)
	}
	port := func(name string) uint16 {
		n, _ := strconv.ParseUint(c.Args[name], 10, 16)
		return uint16(n)
	}
	switch c.Action {
	case "GetStatusInfo":
		return r.ok(c, "NewConnectionStatus", svc.status, "NewLastConnectionError", "ERROR_NONE", "NewUptime", "4242")
	case "GetExternalIPAddress":
		return r.ok(c, "NewExternalIPAddress", svc.extIP)
	case "AddPortMapping", "AddAnyPortMapping":
		lease64, _ := strconv.ParseUint(c.Args["NewLeaseDuration"], 10, 32)
		m := upnp.PortMapping{
			RemoteHost: c.Args["NewRemoteHost"], ExternalPort: port("NewExternalPort"),
			Protocol: c.Args["NewProtocol"], InternalPort: port("NewInternalPort"),
			InternalClient: c.Args["NewInternalClient"], Enabled: c.Args["NewEnabled"] == "1",
			Description: c.Args["NewPortMappingDescription"], LeaseDuration: uint32(lease64),
		}
		any := c.Action == "AddAnyPortMapping"
		switch {
		case any && r.noAddAny:
			return r.fault(401)
		case m.ExternalPort == 0 && !any:
			r.t.Errorf("fake router: AddPortMapping with the wildcard external port 0: %v", c.Args)
			return r.fault(402)
		case r.tableFull:
			return r.fault(402)
		case r.onlyPermanent && m.LeaseDuration != 0:
			return r.fault(725)
		case r.invalidArgsLease && m.LeaseDuration != 0:
			return r.fault(402)
		case r.samePort && m.ExternalPort != m.InternalPort:
			return r.fault(724)
		}
		if i := r.find(m.ExternalPort, m.Protocol); i >= 0 {
			held := r.table[i]
			own := held.InternalClient == m.InternalClient && held.InternalPort == m.InternalPort
			switch {
			case any:
				for r.find(m.ExternalPort, m.Protocol) >= 0 {
					m.ExternalPort++
				}
			case !own || r.refuseRefresh:
				return r.fault(718)
			default:
				r.table = slices.Delete(r.table, i, i+1)
			}
		}
		if r.noLeases {
			m.LeaseDuration = 0
		} else if r.fixedLease != 0 {
			m.LeaseDuration = r.fixedLease
		} else if r.maxLease != 0 && (m.LeaseDuration == 0 || m.LeaseDuration > r.maxLease) {
			m.LeaseDuration = r.maxLease
		}
		if r.grantedElsewhere != "" {
			m.InternalClient = r.grantedElsewhere
		}
		r.table = append(r.table, m)
		if any {
			return r.ok(c, "NewReservedPort", strconv.Itoa(int(m.ExternalPort)))
		}
		return r.ok(c)
	case "DeletePortMapping":
		i := r.find(port("NewExternalPort"), c.Args["NewProtocol"])
		if i < 0 {
			return r.fault(714)
		}
		r.table = slices.Delete(r.table, i, i+1)
		return r.ok(c)
	case "GetSpecificPortMappingEntry":
		if r.noSpecific {
			return r.fault(401)
		}
		i := r.find(port("NewExternalPort"), c.Args["NewProtocol"])
		if i < 0 {
			if r.emptyMissing {
				return r.ok(c, "NewInternalPort", "", "NewInternalClient", "", "NewEnabled", "",
					"NewPortMappingDescription", "", "NewLeaseDuration", "")
			}
			return r.fault(714)
		}
		return r.ok(c, entryArgs(r.table[i], false)...)
	case "GetGenericPortMappingEntry":
		i, err := strconv.Atoi(c.Args["NewPortMappingIndex"])
		if err != nil {
			return r.fault(402)
		}
		if r.ignoreIndex && len(r.table) > 0 {
			i = 0
		}
		if i >= len(r.table) {
			if r.endEmpty {
				return r.ok(c, "NewRemoteHost", "", "NewExternalPort", "", "NewProtocol", "",
					"NewInternalPort", "", "NewInternalClient", "", "NewEnabled", "",
					"NewPortMappingDescription", "", "NewLeaseDuration", "")
			}
			return r.fault(r.endMarker)
		}
		return r.ok(c, entryArgs(r.table[i], true)...)
	}
	return r.fault(401)
}

// getCount returns the number of GET requests received.
func (r *fakeRouter) getCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets
}

// callsOf returns the calls received for action, in order.
func (r *fakeRouter) callsOf(action string) []soapCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []soapCall
	for _, c := range r.calls {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

// parseSOAPRequest reads the action element of a SOAP request: its local
// name, namespace and child elements. It is deliberately independent of
// package upnp.
func parseSOAPRequest(b []byte) (soapCall, error) {
	d := xml.NewDecoder(strings.NewReader(string(b)))
	depth := 0
	var c soapCall
	var arg string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 3: // Envelope > Body > action
				c.Action, c.ServiceType, c.Args = t.Name.Local, t.Name.Space, map[string]string{}
			case 4:
				arg = t.Name.Local
				text.Reset()
			}
		case xml.CharData:
			if depth == 4 {
				text.Write(t)
			}
		case xml.EndElement:
			if depth == 4 {
				c.Args[arg] = text.String()
			}
			depth--
		}
	}
	if c.Action == "" {
		return c, fmt.Errorf("no action element")
	}
	return c, nil
}

// golden returns the text of testdata/name.
func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testLogger logs to the test when -v is given.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// fakeSSDP answers M-SEARCH on 127.0.0.1 from a second socket, so that its
// answers come from a port other than the one searched (the quirk of some
// devices). For each search it sends the answers answer returns.
type fakeSSDP struct {
	in, out net.PacketConn

	mu       sync.Mutex
	searches []upnp.SearchRequest
}

// newFakeSSDP starts a responder; answer gets each parsed search and
// returns the datagrams to send back.
func newFakeSSDP(t *testing.T, answer func(upnp.SearchRequest) [][]byte) *fakeSSDP {
	t.Helper()
	return newFakeSSDPFrom(t, "127.0.0.1", answer)
}

// newFakeSSDPFrom is newFakeSSDP answering from address from (a loopback
// address: 127.0.0.2 is another host on the same machine).
func newFakeSSDPFrom(t *testing.T, from string, answer func(upnp.SearchRequest) [][]byte) *fakeSSDP {
	t.Helper()
	in, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.ListenPacket("udp4", net.JoinHostPort(from, "0"))
	if err != nil {
		in.Close()
		t.Fatal(err)
	}
	s := &fakeSSDP{in: in, out: out}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := in.ReadFrom(buf)
			if err != nil {
				return
			}
			req, err := upnp.ParseSearchRequest(buf[:n])
			if err != nil {
				t.Errorf("fake SSDP: bad M-SEARCH %q: %v", buf[:n], err)
				continue
			}
			s.mu.Lock()
			s.searches = append(s.searches, req)
			s.mu.Unlock()
			for _, d := range answer(req) {
				if _, err := out.WriteTo(d, from); err != nil {
					t.Errorf("fake SSDP: %v", err)
				}
			}
		}
	}()
	t.Cleanup(func() {
		in.Close()
		<-done
		out.Close()
	})
	return s
}

// addr returns where the responder listens.
func (s *fakeSSDP) addr() netip.AddrPort {
	return s.in.LocalAddr().(*net.UDPAddr).AddrPort()
}

// sts returns the search targets received, in order.
func (s *fakeSSDP) sts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.searches {
		out = append(out, r.ST)
	}
	return out
}
