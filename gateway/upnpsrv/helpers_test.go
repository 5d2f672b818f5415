package upnpsrv

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/upnp"
)

// Addresses of the tests: the lab's LAN (docs/architecture.md) and WAN.
const (
	testUUID  = "5e1f0c2a-8d3b-4c6e-9f70-0123456789ab"
	hostA     = "198.51.100.10"
	hostB     = "198.51.100.11"
	gwHost    = "198.51.100.1:5000"
	extAddr   = "203.0.113.1"
	ctlIP     = "/ctl/IPConn"
	ctlCommon = "/ctl/CmnIfCfg"
	ctlL3F    = "/ctl/L3F"
)

// testLogger sends the server's log to the test's.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// testConfig is the configuration of most tests: the lab's LAN and
// loopback served, fixed link figures.
func testConfig(t testing.TB) Config {
	return Config{
		Logger:  testLogger(t),
		UUID:    testUUID,
		Clients: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("127.0.0.0/8")},
		LinkStats: func() (LinkStats, error) {
			return LinkStats{BytesSent: 1<<32 + 5, BytesReceived: 7, PacketsSent: 3, PacketsReceived: 4, Up: true,
				MaxBitRateUp: 1e9, MaxBitRateDown: 1e9}, nil
		},
		ConfigID: 1,
	}
}

// newTable returns a table without firewall whose external address is
// extAddr.
func newTable(t testing.TB, gc gateway.Config) *gateway.Table {
	t.Helper()
	table := gateway.New(gc)
	table.SetExternalAddress(netip.MustParseAddr(extAddr))
	t.Cleanup(table.Close)
	return table
}

// startServer returns a server of cfg (testConfig when cfg.UUID is empty)
// on a table; c, when not nil, is the core it serves instead of the table.
// Shutdown runs at the end of the test.
func startServer(t testing.TB, cfg Config, table *gateway.Table, c core) *Server {
	t.Helper()
	if cfg.UUID == "" {
		base := testConfig(t)
		base.Version, base.AllowForeign, base.Dial = cfg.Version, cfg.AllowForeign, cfg.Dial
		base.MaxSubscriptions = cfg.MaxSubscriptions
		cfg = base
	}
	if table == nil {
		table = newTable(t, gateway.Config{})
	}
	cfg.Table = table
	if c == nil {
		c = table
	}
	s, err := newServer(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// serve sends a request straight to the handler, from client.
func serve(s *Server, client, method, path string, header http.Header, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://"+gwHost+path, bytes.NewReader(body))
	r.RemoteAddr = net.JoinHostPort(client, "40000")
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// call performs act from client on the control URL path and returns the
// answer; a fault is a *upnp.Fault error. The HTTP status must be 200 for
// an answer and 500 for a fault (UDA 1.1 §3.2.2).
func call(t testing.TB, s *Server, client, path string, act upnp.Action) (upnp.Response, error) {
	t.Helper()
	w := serve(s, client, http.MethodPost, path, http.Header{
		"Content-Type": {`text/xml; charset="utf-8"`},
		"Soapaction":   {act.SOAPAction()},
	}, act.AppendEnvelope(nil))
	resp, err := upnp.ParseResponse(w.Body, act.Name)
	switch code := w.Code; {
	case err == nil && code != http.StatusOK, err != nil && code != http.StatusInternalServerError:
		t.Fatalf("%s: HTTP %d with %v", act.Name, code, err)
	}
	if ct := w.Header().Get("Content-Type"); ct != `text/xml; charset="utf-8"` {
		t.Errorf("%s: Content-Type %q", act.Name, ct)
	}
	return resp, err
}

// mustCall is call for an action that must succeed.
func mustCall(t testing.TB, s *Server, client, path string, act upnp.Action) upnp.Response {
	t.Helper()
	resp, err := call(t, s, client, path, act)
	if err != nil {
		t.Fatalf("%s from %s: %v", act.Name, client, err)
	}
	return resp
}

// codeOf returns the UPnP error code of err, 0 for nil and -1 for an error
// that is not a fault.
func codeOf(err error) int {
	if err == nil {
		return 0
	}
	var f *upnp.Fault
	if errors.As(err, &f) {
		return f.Code
	}
	return -1
}

// add is an AddPortMapping of the WANIPConnection:2 service.
func add(eport uint16, proto string, iport uint16, client string, lease uint32) upnp.Action {
	return upnp.AddPortMapping(upnp.ServiceWANIP2, upnp.PortMapping{ExternalPort: eport, Protocol: proto,
		InternalPort: iport, InternalClient: client, Enabled: true, Description: "test", LeaseDuration: lease})
}

// cores are the lease cores the table-driven tests run against: today the
// table itself, the only core the server has.
func cores() []struct {
	name string
	wrap func(*gateway.Table) core
} {
	return []struct {
		name string
		wrap func(*gateway.Table) core
	}{
		{"table", func(t *gateway.Table) core { return t }},
	}
}

// leaseKeys returns the table's mappings as "TCP 8080" strings, sorted.
func leaseKeys(table *gateway.Table) []string {
	var out []string
	for _, l := range table.Leases() {
		out = append(out, strings.ToUpper(l.Protocol.String())+" "+strconv.Itoa(int(l.ExternalPort)))
	}
	slices.Sort(out)
	return out
}
