package igdclient

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portlease/portlease/upnp"
)

// localAddr is the LAN address the tests' IGDs advertise by default.
func localAddr() netip.Addr { return netip.MustParseAddr("192.168.1.10") }

// routerFor starts a fake router with one connection service described by
// the miniupnpd 2.3.1 description captured in the lab, IGD:2
// (WANIPConnection:2) or IGD:1 (WANIPConnection:1, force_igd_desc_v1).
func routerFor(t *testing.T, version int) *fakeRouter {
	t.Helper()
	desc := "miniupnpd-2.3.1-igd2-rootDesc.xml"
	if version == 1 {
		desc = "miniupnpd-2.3.1-igd1-rootDesc.xml"
	}
	return newFakeRouter(t,
		map[string]string{"/rootDesc.xml": golden(t, desc)},
		map[string]*fakeService{"/ctl/IPConn": {status: "Connected", extIP: "203.0.113.1"}})
}

// dial returns the IGD of r's /rootDesc.xml.
func dial(t *testing.T, r *fakeRouter) *IGD {
	t.Helper()
	c := New(Config{Logger: testLogger(t)})
	g, err := c.Dial(t.Context(), r.url("/rootDesc.xml"), localAddr())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// leases returns the NewLeaseDuration of each call.
func leases(calls []soapCall) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Args["NewLeaseDuration"])
	}
	return out
}

// ports returns the NewExternalPort of each call.
func ports(calls []soapCall) []uint16 {
	var out []uint16
	for _, c := range calls {
		n, _ := strconv.ParseUint(c.Args["NewExternalPort"], 10, 16)
		out = append(out, uint16(n))
	}
	return out
}

// otherHolder is a mapping of another LAN host on TCP 8080.
func otherHolder() upnp.PortMapping {
	return upnp.PortMapping{ExternalPort: 8080, Protocol: "TCP", InternalPort: 22,
		InternalClient: "192.168.1.20", Enabled: true, Description: "ssh", LeaseDuration: 0}
}

func TestAddPortMapping(t *testing.T) {
	web := upnp.PortMapping{ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080, Description: "web", LeaseDuration: 3600}
	withPorts := func(m upnp.PortMapping, ext, in uint16) upnp.PortMapping {
		m.ExternalPort, m.InternalPort = ext, in
		return m
	}
	tests := []struct {
		name    string
		version int
		setup   func(r *fakeRouter)
		req     upnp.PortMapping

		wantPort      uint16
		wantLease     uint32
		wantPermanent bool
		wantReadBack  bool
		wantFaults    []upnp.ErrorCode
		wantErr       error
		wantCode      upnp.ErrorCode
		check         func(t *testing.T, r *fakeRouter)
	}{
		{
			name: "miniupnpd grants as asked", version: 2, req: web,
			wantPort: 8080, wantLease: 3600, wantReadBack: true,
			check: func(t *testing.T, r *fakeRouter) {
				c := r.callsOf("AddPortMapping")[0]
				want := map[string]string{"NewRemoteHost": "", "NewExternalPort": "8080", "NewProtocol": "TCP",
					"NewInternalPort": "8080", "NewInternalClient": "192.168.1.10", "NewEnabled": "1",
					"NewPortMappingDescription": "web", "NewLeaseDuration": "3600"}
				for k, v := range want {
					if c.Args[k] != v {
						t.Errorf("AddPortMapping %s = %q; want %q", k, c.Args[k], v)
					}
				}
				if c.SOAPAction != `"urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"` {
					t.Errorf("SOAPAction = %s", c.SOAPAction)
				}
			},
		},
		{
			// MikroTik RouterOS (nicotine-plus issue 2200, 192.168.88.x),
			// ZyXEL VMG1312-B10B (TinyUPnP issue 39).
			name: "725 OnlyPermanentLeasesSupported", version: 2, req: web,
			setup:    func(r *fakeRouter) { r.onlyPermanent = true },
			wantPort: 8080, wantLease: 0, wantPermanent: true, wantReadBack: true,
			wantFaults: []upnp.ErrorCode{725},
			check: func(t *testing.T, r *fakeRouter) {
				if got := leases(r.callsOf("AddPortMapping")); !slices.Equal(got, []string{"3600", "0"}) {
					t.Errorf("leases sent = %q; want 3600 then 0", got)
				}
			},
		},
		{
			// ARRIS NVG578LX, tailscale issue 15223 (fault envelope in its
			// shape).
			name: "402 InvalidArgs for a lease", version: 2, req: web,
			setup: func(r *fakeRouter) {
				r.invalidArgsLease = true
				r.faultTmpl = arrisFault
			},
			wantPort: 8080, wantLease: 0, wantPermanent: true, wantReadBack: true,
			wantFaults: []upnp.ErrorCode{402},
		},
		{
			// 402 to a lease of 0 as well: a full table (miniupnp issue 92).
			name: "402 twice is returned", version: 2, req: web,
			setup:    func(r *fakeRouter) { r.tableFull = true },
			wantCode: upnp.InvalidArgs,
			check: func(t *testing.T, r *fakeRouter) {
				if got := leases(r.callsOf("AddPortMapping")); !slices.Equal(got, []string{"3600", "0"}) {
					t.Errorf("leases sent = %q; want 3600 then 0", got)
				}
			},
		},
		{
			name: "724 SamePortValuesRequired", version: 1, req: withPorts(web, 40000, 8080),
			setup:    func(r *fakeRouter) { r.samePort = true },
			wantPort: 8080, wantLease: 3600, wantReadBack: true,
			wantFaults: []upnp.ErrorCode{724},
			check: func(t *testing.T, r *fakeRouter) {
				if got := ports(r.callsOf("AddPortMapping")); !slices.Equal(got, []uint16{40000, 8080}) {
					t.Errorf("external ports sent = %v; want 40000 then 8080", got)
				}
			},
		},
		{
			name: "718 ConflictInMappingEntry names the holder", version: 2, req: web,
			setup:   func(r *fakeRouter) { r.table = append(r.table, otherHolder()) },
			wantErr: ErrConflict, wantCode: upnp.ConflictInMappingEntry,
			check: func(t *testing.T, r *fakeRouter) {
				if n := len(r.callsOf("GetSpecificPortMappingEntry")); n != 1 {
					t.Errorf("holder read %d times; want 1", n)
				}
			},
		},
		{
			name: "718 for our own mapping replaces it", version: 2, req: web,
			setup: func(r *fakeRouter) {
				own := web
				own.InternalClient = "192.168.1.10"
				r.table = append(r.table, own)
				r.refuseRefresh = true
			},
			wantPort: 8080, wantLease: 3600, wantReadBack: true,
			wantFaults: []upnp.ErrorCode{718},
			check: func(t *testing.T, r *fakeRouter) {
				if n := len(r.callsOf("DeletePortMapping")); n != 1 {
					t.Errorf("DeletePortMapping sent %d times; want 1", n)
				}
			},
		},
		{
			name: "lease shortened, read back", version: 2, req: web,
			setup:    func(r *fakeRouter) { r.maxLease = 600 },
			wantPort: 8080, wantLease: 600, wantReadBack: true,
		},
		{
			// Technicolor router of miniupnp issue 398: 86400 whatever was
			// asked.
			name: "lease fixed at 86400, read back", version: 1, req: web,
			setup:    func(r *fakeRouter) { r.fixedLease = 86400 },
			wantPort: 8080, wantLease: 86400, wantReadBack: true,
		},
		{
			name: "lease ignored, read back as 0", version: 1, req: web,
			setup:    func(r *fakeRouter) { r.noLeases = true },
			wantPort: 8080, wantLease: 0, wantPermanent: true, wantReadBack: true,
		},
		{
			name: "wildcard on IGD:2 is AddAnyPortMapping", version: 2, req: withPorts(web, 0, 8080),
			setup:    func(r *fakeRouter) { r.table = append(r.table, otherHolder()) },
			wantPort: 8081, wantLease: 3600, wantReadBack: true,
			check: func(t *testing.T, r *fakeRouter) {
				if n := len(r.callsOf("AddPortMapping")); n != 0 {
					t.Errorf("AddPortMapping sent %d times; want none", n)
				}
				if got := ports(r.callsOf("AddAnyPortMapping")); !slices.Equal(got, []uint16{8080}) {
					t.Errorf("AddAnyPortMapping external ports = %v; want the internal port as hint", got)
				}
			},
		},
		{
			name: "wildcard on IGD:1 tries the internal port, then others", version: 1, req: withPorts(web, 0, 8080),
			setup:        func(r *fakeRouter) { r.table = append(r.table, otherHolder()) },
			wantLease:    3600,
			wantReadBack: true,
			wantFaults:   []upnp.ErrorCode{718},
			check: func(t *testing.T, r *fakeRouter) {
				got := ports(r.callsOf("AddPortMapping"))
				if len(got) != 2 || got[0] != 8080 || got[1] < 1024 || got[1] == 8080 {
					t.Errorf("external ports sent = %v; want 8080, then a free port ≥1024", got)
				}
			},
		},
		{
			name: "wildcard on an IGD:2 without AddAnyPortMapping", version: 2, req: withPorts(web, 0, 8080),
			setup:    func(r *fakeRouter) { r.noAddAny = true },
			wantPort: 8080, wantLease: 3600, wantReadBack: true,
		},
		{
			name: "wildcard with 724 stops", version: 1, req: withPorts(web, 0, 8080),
			setup: func(r *fakeRouter) {
				r.table = append(r.table, otherHolder())
				r.samePort = true
			},
			wantErr: ErrConflict, wantCode: upnp.ConflictInMappingEntry,
			check: func(t *testing.T, r *fakeRouter) {
				if got := ports(r.callsOf("AddPortMapping")); len(got) != 3 || got[0] != 8080 || got[2] != 8080 {
					t.Errorf("external ports sent = %v; want 8080, one other, 8080", got)
				}
			},
		},
		{
			// tailscale issue 7377: some routers refuse "udp".
			name: "protocol sent upper-case", version: 2,
			req:      upnp.PortMapping{ExternalPort: 5353, Protocol: "udp", InternalPort: 5353, LeaseDuration: 60},
			wantPort: 5353, wantLease: 60, wantReadBack: true,
			check: func(t *testing.T, r *fakeRouter) {
				c := r.callsOf("AddPortMapping")[0]
				if c.Args["NewProtocol"] != "UDP" || c.Args["NewPortMappingDescription"] != "portlease" {
					t.Errorf("sent protocol %q, description %q; want UDP, portlease",
						c.Args["NewProtocol"], c.Args["NewPortMappingDescription"])
				}
			},
		},
		{
			name: "no read-back", version: 2, req: web,
			setup:    func(r *fakeRouter) { r.noSpecific = true },
			wantPort: 8080, wantLease: 3600, wantReadBack: false,
		},
		{
			name: "grant that reads back as another host's", version: 2, req: web,
			setup:   func(r *fakeRouter) { r.grantedElsewhere = "192.168.1.99" },
			wantErr: ErrConflict,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := routerFor(t, tt.version)
			if tt.setup != nil {
				r.mu.Lock()
				tt.setup(r)
				r.mu.Unlock()
			}
			g := dial(t, r)
			gr, err := g.AddPortMapping(t.Context(), tt.req)
			if tt.wantErr != nil || tt.wantCode != 0 {
				if err == nil {
					t.Fatalf("AddPortMapping(%+v) = %+v; want an error", tt.req, gr)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("AddPortMapping error %v; want %v", err, tt.wantErr)
				}
				if code, ok := faultCode(err); tt.wantCode != 0 && (!ok || code != tt.wantCode) {
					t.Errorf("AddPortMapping error %v; want fault %d", err, tt.wantCode)
				}
			} else {
				if err != nil {
					t.Fatalf("AddPortMapping(%+v): %v", tt.req, err)
				}
				if tt.wantPort != 0 && gr.Mapping.ExternalPort != tt.wantPort {
					t.Errorf("granted external port %d; want %d", gr.Mapping.ExternalPort, tt.wantPort)
				}
				if gr.Mapping.LeaseDuration != tt.wantLease || gr.Permanent != tt.wantPermanent || gr.ReadBack != tt.wantReadBack {
					t.Errorf("granted lease %d, permanent %v, read back %v; want %d, %v, %v",
						gr.Mapping.LeaseDuration, gr.Permanent, gr.ReadBack, tt.wantLease, tt.wantPermanent, tt.wantReadBack)
				}
				if !slices.Equal(gr.Faults, tt.wantFaults) {
					t.Errorf("faults %v; want %v", gr.Faults, tt.wantFaults)
				}
				if gr.Mapping.InternalClient != "192.168.1.10" || gr.Mapping.Protocol != strings.ToUpper(tt.req.Protocol) {
					t.Errorf("granted %+v; want internal client 192.168.1.10", gr.Mapping)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestConflictErrorHolder(t *testing.T) {
	r := routerFor(t, 2)
	r.table = append(r.table, otherHolder())
	g := dial(t, r)
	_, err := g.AddPortMapping(t.Context(), upnp.PortMapping{ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080})
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("AddPortMapping error %v; want a *ConflictError", err)
	}
	if !ce.HolderKnown || ce.Holder.InternalClient != "192.168.1.20" || ce.Holder.InternalPort != 22 || ce.Holder.Description != "ssh" {
		t.Errorf("holder %+v (known %v); want 192.168.1.20:22 ssh", ce.Holder, ce.HolderKnown)
	}
	var f *upnp.Fault
	if !errors.As(err, &f) || f.Code != 718 {
		t.Errorf("error %v does not carry the 718 fault", err)
	}
}

func TestAddPortMappingRejects(t *testing.T) {
	r := routerFor(t, 2)
	g := dial(t, r)
	for _, m := range []upnp.PortMapping{
		{ExternalPort: 80, Protocol: "SCTP", InternalPort: 80},
		{ExternalPort: 80, Protocol: "TCP", InternalPort: 0},
	} {
		if _, err := g.AddPortMapping(t.Context(), m); err == nil {
			t.Errorf("AddPortMapping(%+v) = nil error; want one", m)
		}
	}
	if n := len(r.callsOf("AddPortMapping")); n != 0 {
		t.Errorf("%d AddPortMapping sent; want none", n)
	}
}

func TestDeletePortMapping(t *testing.T) {
	tests := []struct {
		name     string
		port     uint16
		wantErr  error
		wantCode upnp.ErrorCode
	}{
		{"present", 8080, nil, 0},
		{"missing is 714", 9999, ErrNotFound, upnp.NoSuchEntryInArray},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := routerFor(t, 2)
			r.table = append(r.table, otherHolder())
			g := dial(t, r)
			err := g.DeletePortMapping(t.Context(), "tcp", tt.port)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DeletePortMapping(tcp, %d) = %v; want %v", tt.port, err, tt.wantErr)
			}
			if code, _ := faultCode(err); code != tt.wantCode {
				t.Errorf("DeletePortMapping(tcp, %d) = %v; want fault %d", tt.port, err, tt.wantCode)
			}
			if err == nil && len(r.table) != 0 {
				t.Errorf("table after delete: %+v", r.table)
			}
		})
	}
}

func TestGetSpecificPortMappingEntry(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(r *fakeRouter)
		port    uint16
		want    upnp.PortMapping
		wantErr error
	}{
		{"present", nil, 8080, otherHolder(), nil},
		{"missing is 714", nil, 9999, upnp.PortMapping{}, ErrNotFound},
		{"missing as an empty answer", func(r *fakeRouter) { r.emptyMissing = true }, 9999, upnp.PortMapping{}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := routerFor(t, 1)
			r.table = append(r.table, otherHolder())
			if tt.setup != nil {
				tt.setup(r)
			}
			g := dial(t, r)
			got, err := g.GetSpecificPortMappingEntry(t.Context(), "TCP", tt.port)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("GetSpecificPortMappingEntry(TCP, %d) error %v; want %v", tt.port, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("GetSpecificPortMappingEntry(TCP, %d) = %+v; want %+v", tt.port, got, tt.want)
			}
		})
	}
}

func TestPortMappings(t *testing.T) {
	table := []upnp.PortMapping{
		{ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080, InternalClient: "192.168.1.10", Enabled: true, Description: "web", LeaseDuration: 3600},
		{ExternalPort: 8080, Protocol: "UDP", InternalPort: 8080, InternalClient: "192.168.1.10", Enabled: true, Description: "web", LeaseDuration: 3600},
		{ExternalPort: 2222, Protocol: "TCP", InternalPort: 22, InternalClient: "192.168.1.20", Enabled: true, Description: "ssh"},
	}
	tests := []struct {
		name     string
		setup    func(r *fakeRouter)
		want     int
		wantCode upnp.ErrorCode
	}{
		{"713 ends the table (miniupnpd)", nil, 3, 0},
		{"714 ends the table", func(r *fakeRouter) { r.endMarker = upnp.NoSuchEntryInArray }, 3, 0},
		{"402 ends the table", func(r *fakeRouter) { r.endMarker = upnp.InvalidArgs }, 3, 0},
		{"714 in an HTTP 200 answer ends the table", func(r *fakeRouter) {
			r.endMarker = upnp.NoSuchEntryInArray
			r.faultIn200 = true
		}, 3, 0},
		{"an empty entry ends the table", func(r *fakeRouter) { r.endEmpty = true }, 3, 0},
		{"a router ignoring the index", func(r *fakeRouter) { r.ignoreIndex = true }, 1, 0},
		{"an empty table", func(r *fakeRouter) { r.table = nil }, 0, 0},
		{"606 passes through", func(r *fakeRouter) { r.endMarker = upnp.ActionNotAuthorized; r.table = nil }, 0, upnp.ActionNotAuthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := routerFor(t, 2)
			r.table = slices.Clone(table)
			if tt.setup != nil {
				tt.setup(r)
			}
			g := dial(t, r)
			got, err := g.PortMappings(t.Context())
			if code, _ := faultCode(err); code != tt.wantCode || (tt.wantCode == 0 && err != nil) {
				t.Fatalf("PortMappings error %v; want fault %d", err, tt.wantCode)
			}
			if len(got) != tt.want {
				t.Fatalf("PortMappings = %d entries %+v; want %d", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != table[i] {
					t.Errorf("entry %d = %+v; want %+v", i, got[i], table[i])
				}
			}
		})
	}
}

func TestConfigHTTPClient(t *testing.T) {
	r := routerFor(t, 2)
	var n atomic.Int32
	hc := &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		n.Add(1)
		if ua := req.Header.Get("User-Agent"); ua != "test/1 UPnP/1.1 portlease/0.1" {
			t.Errorf("User-Agent %q", ua)
		}
		return http.DefaultTransport.RoundTrip(req)
	})}
	c := New(Config{HTTPClient: hc, UserAgent: "test/1 UPnP/1.1 portlease/0.1"})
	g, err := c.Dial(t.Context(), r.url("/rootDesc.xml"), localAddr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.ExternalIPAddress(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n.Load() < 2 {
		t.Errorf("the configured HTTP client carried %d requests", n.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func TestConnected(t *testing.T) {
	tests := []struct {
		status string
		want   bool
	}{
		{"Connected", true},
		{"Up", true}, // answered by some devices, as tailscale's portmapper notes
		{"Disconnected", false},
		{"Unconfigured", false},
	}
	for _, tt := range tests {
		r := routerFor(t, 2)
		g := dial(t, r)
		r.mu.Lock()
		r.services["/ctl/IPConn"].status = tt.status
		r.mu.Unlock()
		got, err := g.Connected(t.Context())
		if err != nil || got != tt.want {
			t.Errorf("Connected() with %q = %v, %v; want %v", tt.status, got, err, tt.want)
		}
	}
}

func TestPublicAddr(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"203.0.113.1", true}, // documentation, but not private: the lab's WAN address
		{"8.8.8.8", true},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"100.64.0.1", false}, // RFC 6598 shared address space (CGNAT)
		{"100.127.255.254", false},
		{"100.128.0.1", true},
		{"0.0.0.0", false},
		{"127.0.0.1", false},
		{"169.254.1.1", false},
	}
	for _, tt := range tests {
		if got := PublicAddr(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("PublicAddr(%s) = %v; want %v", tt.addr, got, tt.want)
		}
	}
	if PublicAddr(netip.Addr{}) {
		t.Error("PublicAddr(invalid) = true")
	}
}

// replayRouter answers each SOAP action with a file captured from
// miniupnpd 2.3.1 in the lab: "HTTP <status>" on the first line, the body
// after it. The file for an action is <Action>.txt unless set.
type replayRouter struct {
	mu    sync.Mutex
	files map[string]string
}

func (rr *replayRouter) set(action, file string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.files[action] = file
}

func newReplayServer(t *testing.T, version string) (*replayRouter, *httptest.Server) {
	t.Helper()
	rr := &replayRouter{files: map[string]string{}}
	desc := golden(t, "miniupnpd-2.3.1-"+version+"-rootDesc.xml")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet {
			io.WriteString(w, desc)
			return
		}
		body, _ := io.ReadAll(req.Body)
		call, err := parseSOAPRequest(body)
		if err != nil {
			t.Errorf("replay: %v", err)
			return
		}
		rr.mu.Lock()
		name, ok := rr.files[call.Action]
		rr.mu.Unlock()
		if !ok {
			name = call.Action + ".txt"
		}
		text := golden(t, "miniupnpd-2.3.1-"+version+"-"+name)
		status, rest, _ := strings.Cut(text, "\n")
		code, err := strconv.Atoi(strings.TrimPrefix(status, "HTTP "))
		if err != nil {
			t.Errorf("replay %s: first line %q", name, status)
		}
		w.WriteHeader(code)
		io.WriteString(w, rest)
	}))
	t.Cleanup(srv.Close)
	return rr, srv
}

// TestReplayMiniUPnPd replays miniupnpd 2.3.1's answers captured in the lab
// (TestLabCapture) to each operation. In the capture, 198.51.100.11 holds
// TCP 8080 -> 198.51.100.11:8080 "capture", lease 3600.
func TestReplayMiniUPnPd(t *testing.T) {
	held := upnp.PortMapping{ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080,
		InternalClient: "198.51.100.11", Enabled: true, Description: "capture", LeaseDuration: 3600}
	for _, version := range []string{"igd1", "igd2"} {
		t.Run(version, func(t *testing.T) {
			rr, srv := newReplayServer(t, version)
			c := New(Config{Logger: testLogger(t)})
			g, err := c.Dial(t.Context(), srv.URL+"/rootDesc.xml", netip.MustParseAddr("198.51.100.11"))
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]int{"igd1": 1, "igd2": 2}[version]; g.Version() != want {
				t.Errorf("Version() = %d; want %d", g.Version(), want)
			}
			if g.FriendlyName != "Debian router" || g.Status != "Connected" || g.ExternalAddr != netip.MustParseAddr("203.0.113.1") {
				t.Errorf("IGD %v: status %q, external %v", g, g.Status, g.ExternalAddr)
			}

			got, err := g.GetSpecificPortMappingEntry(t.Context(), "TCP", 8080)
			if err != nil || got != held {
				t.Errorf("GetSpecificPortMappingEntry = %+v, %v; want %+v", got, err, held)
			}
			gr, err := g.AddPortMapping(t.Context(), upnp.PortMapping{ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080,
				Description: "capture", LeaseDuration: 3600})
			if err != nil || gr.Mapping != held || !gr.ReadBack {
				t.Errorf("AddPortMapping = %+v, %v; want %+v read back", gr, err, held)
			}

			// The captured entry 0 comes back for every index: the list
			// stops at the repeat. Then the captured 713 ends it at once.
			rr.set("GetGenericPortMappingEntry", "GetGenericPortMappingEntry-0.txt")
			if list, err := g.PortMappings(t.Context()); err != nil || len(list) != 1 || list[0] != held {
				t.Errorf("PortMappings = %+v, %v; want [%+v]", list, err, held)
			}
			rr.set("GetGenericPortMappingEntry", "GetGenericPortMappingEntry-713.txt")
			if list, err := g.PortMappings(t.Context()); err != nil || len(list) != 0 {
				t.Errorf("PortMappings at 713 = %+v, %v; want none", list, err)
			}

			// miniupnpd 2.3.1 answers success to deleting a missing mapping.
			rr.set("DeletePortMapping", "DeletePortMapping-missing.txt")
			if err := g.DeletePortMapping(t.Context(), "TCP", 9999); err != nil {
				t.Errorf("DeletePortMapping of a missing mapping = %v; want nil, as miniupnpd answers", err)
			}

			rr.set("AddPortMapping", "AddPortMapping-718.txt")
			_, err = g.AddPortMapping(t.Context(), upnp.PortMapping{ExternalPort: 8080, Protocol: "TCP",
				InternalPort: 8080, InternalClient: "198.51.100.10"})
			var ce *ConflictError
			if !errors.As(err, &ce) || !ce.HolderKnown || ce.Holder != held {
				t.Errorf("AddPortMapping at 718 = %v; want a *ConflictError naming %+v", err, held)
			}

			if version == "igd2" {
				// The captured AddAnyPortMapping reserved 8081.
				gr, err := g.AddPortMapping(t.Context(), upnp.PortMapping{Protocol: "TCP", InternalPort: 8080})
				if err != nil || gr.Mapping.ExternalPort != 8081 || !gr.ReadBack {
					t.Errorf("AddPortMapping(wildcard) = %+v, %v; want external port 8081 read back", gr, err)
				}
			}
		})
	}
}

// readSSDPGolden splits a capture of datagrams ("from ADDR" line, the
// datagram, "----" between them) into the datagrams.
func readSSDPGolden(t *testing.T, name string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, part := range strings.Split(golden(t, name), "----\n") {
		sc := bufio.NewScanner(strings.NewReader(part))
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "from ") {
			t.Fatalf("%s: datagram without a from line", name)
		}
		_, rest, _ := strings.Cut(part, "\n")
		out = append(out, []byte(rest))
	}
	return out
}

// TestBusyRetried: a gateway over its request rate for this host answers
// 503 with Retry-After; the call waits and tries again, and gives up with a
// BusyError after three retries or when the wait is too long.
func TestBusyRetried(t *testing.T) {
	r := routerFor(t, 2)
	g := dial(t, r)
	r.mu.Lock()
	r.busy, r.busyAfter = 2, "1"
	r.mu.Unlock()
	if _, err := g.ExternalIPAddress(t.Context()); err != nil {
		t.Fatalf("after two 503s: %v", err)
	}
	r.mu.Lock()
	r.busy, r.busyAfter = 5, "1"
	r.mu.Unlock()
	_, err := g.ExternalIPAddress(t.Context())
	var busy *BusyError
	if !errors.As(err, &busy) || busy.RetryAfter != time.Second || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("after four 503s: %v; want a BusyError", err)
	}
	r.mu.Lock()
	r.busy, r.busyAfter = 1, "3600"
	r.mu.Unlock()
	if _, err := g.ExternalIPAddress(t.Context()); !errors.As(err, &busy) {
		t.Fatalf("503 with Retry-After 3600: %v; want a BusyError at once", err)
	}
}
