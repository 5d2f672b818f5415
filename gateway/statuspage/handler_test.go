package statuspage

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Leases of the tests, on the lab's addresses.
var (
	leaseTCP = gateway.Lease{Protocol: gateway.TCP, Internal: netip.MustParseAddrPort("198.51.100.2:8080"), ExternalPort: 8080,
		Origin: gateway.OriginNATPMP, Created: time.Unix(1000, 0), Expires: time.Unix(5000, 0)}
	leaseUDP = gateway.Lease{Protocol: gateway.UDP, Internal: netip.MustParseAddrPort("198.51.100.3:53"), ExternalPort: 5353,
		Origin: gateway.OriginPCP, Nonce: [12]byte{1}, Description: "<b>dns</b>", Created: time.Unix(1000, 0),
		Filters: []gateway.Filter{{Remote: netip.MustParsePrefix("203.0.113.9/32"), Port: 4000}}}
	leaseUPnP = gateway.Lease{Protocol: gateway.TCP, Internal: netip.MustParseAddrPort("198.51.100.2:22"), ExternalPort: 2222,
		Origin: gateway.OriginUPnP, Description: "ssh", Created: time.Unix(1000, 0)}
	pinhole = gateway.Lease{Protocol: gateway.TCP, Internal: netip.MustParseAddrPort("[2001:db8:100::2]:443"), ExternalPort: 443,
		Pinhole: true, PinholeID: 3, Origin: gateway.OriginUPnP, Created: time.Unix(1000, 0), Expires: time.Unix(9000, 0)}
)

func newHandler(t *testing.T, cfg Config) *Handler {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(h http.Handler, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://198.51.100.1:5000"+path, nil))
	return w
}

func TestNewChecksConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a table: no error")
	}
	if _, err := New(Config{Table: newFake(), Admin: true}); err == nil {
		t.Error("New with Admin and no token: no error")
	}
}

// TestAssets: the page, its style and its script, under a policy that
// allows nothing else and no framing; other paths are not found.
func TestAssets(t *testing.T) {
	h := newHandler(t, Config{Table: newFake()})
	for path, want := range map[string]string{
		Path:       "text/html; charset=utf-8",
		StylePath:  "text/css; charset=utf-8",
		ScriptPath: "text/javascript; charset=utf-8",
	} {
		w := get(h, path)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != want || w.Body.Len() == 0 {
			t.Errorf("GET %s: %d, %q, %d bytes", path, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	if w := get(h, Path+"/nothing"); w.Code != http.StatusNotFound {
		t.Errorf("GET %s/nothing: %d; want 404", Path, w.Code)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, Path, nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST %s: %d, Allow %q", Path, w.Code, w.Header().Get("Allow"))
	}
	// The page and its script name the paths the handler serves.
	page, script := get(h, Path).Body.String(), get(h, ScriptPath).Body.String()
	for _, p := range []string{StylePath, ScriptPath} {
		if !strings.Contains(page, `"`+p+`"`) {
			t.Errorf("the page does not load %s", p)
		}
	}
	for _, p := range []string{SnapshotPath, EventsPath, DeletePath, TokenHeader} {
		if !strings.Contains(script, `"`+p+`"`) {
			t.Errorf("the script does not use %s", p)
		}
	}
}

// TestSnapshot: the JSON snapshot carries the leases in order, the usage,
// the events, the address history and the epoch; the sections the table
// has nothing for are empty lists.
func TestSnapshot(t *testing.T) {
	f := newFake()
	f.leases = []gateway.Lease{pinhole, leaseUDP, leaseTCP, leaseUPnP}
	f.usage = []gateway.HostUsage{{Host: netip.MustParseAddr("198.51.100.2"), Leases: 2, Limit: 4}}
	f.events = []gateway.Event{{Seq: 7, Time: time.Unix(1000, 0), Kind: gateway.EventRefused, Lease: leaseTCP,
		Requester: netip.MustParseAddr("198.51.100.2"), Reason: "host at its share"}}
	f.history = []gateway.AddressChange{{Time: time.Unix(900, 0), Addr: netip.MustParseAddr("203.0.113.1")}, {Time: time.Unix(950, 0)}}
	started := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newHandler(t, Config{Table: f, Started: started})
	w := get(h, SnapshotPath)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d, %q", SnapshotPath, w.Code, w.Header().Get("Content-Type"))
	}
	var s snapshot
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, l := range s.Leases {
		keys = append(keys, l.Proto+" "+strconv.Itoa(int(l.ExternalPort))+" "+l.Origin)
	}
	if got, want := strings.Join(keys, ", "), "tcp 2222 upnp, tcp 8080 natpmp, udp 5353 pcp, tcp 443 upnp"; got != want {
		t.Errorf("leases %s; want %s", got, want)
	}
	if u := s.Leases[2]; !u.Nonce || u.Description != "<b>dns</b>" || u.Host != "198.51.100.3" || u.InternalPort != 53 ||
		len(u.Filters) != 1 || u.Filters[0] != "203.0.113.9/32 port 4000" || !u.Expires.IsZero() {
		t.Errorf("the PCP lease: %+v", u)
	}
	if p := s.Leases[3]; !p.Pinhole || p.PinholeID != 3 || p.Host != "2001:db8:100::2" {
		t.Errorf("the pinhole: %+v", p)
	}
	if s.External != "203.0.113.1" || !s.EpochStart.Equal(f.start) || !s.Started.Equal(started) || s.MaxPerHost != 4 || s.Admin {
		t.Errorf("snapshot %+v", s)
	}
	if len(s.Usage) != 1 || s.Usage[0] != (hostUsage{Host: "198.51.100.2", Leases: 2, Limit: 4}) {
		t.Errorf("usage %+v", s.Usage)
	}
	if len(s.Events) != 1 || s.Events[0].Kind != "refused" || s.Events[0].Reason != "host at its share" || s.Events[0].Requester != "198.51.100.2" {
		t.Errorf("events %+v", s.Events)
	}
	if len(s.AddressHistory) != 2 || s.AddressHistory[0].Addr != "203.0.113.1" || s.AddressHistory[1].Addr != "" {
		t.Errorf("address history %+v", s.AddressHistory)
	}

	// A table with nothing to show (the stubs of gateway/observe.go).
	empty := newFake()
	empty.external = netip.Addr{}
	body := get(newHandler(t, Config{Table: empty}), SnapshotPath).Body.String()
	for _, want := range []string{`"leases":[]`, `"usage":[]`, `"events":[]`, `"addressHistory":[]`, `"external":""`} {
		if !strings.Contains(body, want) {
			t.Errorf("empty snapshot %s: no %s", body, want)
		}
	}
}
