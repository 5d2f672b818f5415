package upnpsrv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portlease/portlease/upnp"
)

// dialFrom opens a connection to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends GET /rootDesc.xml over c and returns the status line, or ""
// when the server closes c without an answer (within 10 s).
func get(t *testing.T, c net.Conn, addr string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /rootDesc.xml HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
		return ""
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("no answer and no close within 10 s")
		}
		return ""
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Status
}

// TestMaxConnectionsPerHost: a host that holds its maximum of connections
// gets its next one closed unanswered, another host is served, and the
// first is served again once it closes one.
func TestMaxConnectionsPerHost(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxConnectionsPerHost = 3
	s := startServer(t, cfg, nil, nil)
	addr := listen(t, s)
	var held []net.Conn
	for range 3 {
		c := dialFrom(t, "127.0.0.1", addr)
		if st := get(t, c, addr); st != "200 OK" {
			t.Fatalf("connection %d of 3: %q", len(held)+1, st)
		}
		held = append(held, c)
	}
	if st := get(t, dialFrom(t, "127.0.0.1", addr), addr); st != "" {
		t.Fatalf("a fourth connection of the same host got %q; want it closed", st)
	}
	if st := get(t, dialFrom(t, "127.0.0.2", addr), addr); st != "200 OK" {
		t.Fatalf("another host got %q while the first held its maximum", st)
	}
	held[0].Close()
	// The server sees the close when it reads the connection again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := get(t, dialFrom(t, "127.0.0.1", addr), addr)
		if st == "200 OK" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a connection after one of three closed: %q", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSourceOnLink: a connection from a served prefix other than the one of
// the address it reached is closed unanswered; ServeHTTP applies the same
// check when it knows the local address.
func TestSourceOnLink(t *testing.T) {
	cfg := testConfig(t)
	cfg.Clients = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/24"), netip.MustParsePrefix("127.0.1.0/24")}
	s := startServer(t, cfg, nil, nil)
	addr := listen(t, s) // on 127.0.0.1
	if st := get(t, dialFrom(t, "127.0.1.5", addr), addr); st != "" {
		t.Fatalf("a host of another served prefix got %q; want the connection closed", st)
	}
	if st := get(t, dialFrom(t, "127.0.0.5", addr), addr); st != "200 OK" {
		t.Fatalf("a host of the address's prefix got %q", st)
	}
	for local, want := range map[string]int{"127.0.0.1": http.StatusOK, "127.0.1.1": http.StatusForbidden} {
		r := newRequest(http.MethodGet, DescriptionPath, nil)
		r.RemoteAddr = "127.0.0.5:40000"
		r = withLocalAddr(r, local)
		w := newRecorder()
		s.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("ServeHTTP from 127.0.0.5 to %s: HTTP %d; want %d", local, w.Code, want)
		}
	}
}

// TestHostNames: a Host header may name an address or a configured host
// name, with or without a port, in any case; any other name is refused.
func TestHostNames(t *testing.T) {
	cfg := testConfig(t)
	cfg.HostNames = []string{"router.lan."}
	s := startServer(t, cfg, nil, nil)
	for host, want := range map[string]int{
		"router.lan:5000":    http.StatusOK,
		"Router.LAN":         http.StatusOK,
		"router.lan.":        http.StatusOK,
		"198.51.100.1:5000":  http.StatusOK,
		"[2001:db8::1]:5000": http.StatusOK,
		"evil.example:5000":  http.StatusForbidden,
		"router.lan.evil":    http.StatusForbidden,
		"lan":                http.StatusForbidden,
	} {
		r := newRequest(http.MethodGet, DescriptionPath, nil)
		r.Host = host
		r.RemoteAddr = hostA + ":40000"
		w := newRecorder()
		s.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %s: HTTP %d; want %d", host, w.Code, want)
		}
	}
	cfg.HostNames = []string{"router.lan:80"}
	if _, err := New(cfg); err == nil {
		t.Error("New accepted a host name with a port")
	}
}

type refuseAfter struct{ n atomic.Int32 }

func (l *refuseAfter) Allow(netip.Addr) bool { return l.n.Add(-1) >= 0 }

// TestLimiter: an action that may change the table and that the limiter
// refuses is answered 503 with Retry-After; reads (a walk of the table) and
// descriptions are not counted.
func TestLimiter(t *testing.T) {
	cfg := testConfig(t)
	lim := &refuseAfter{}
	lim.n.Store(1)
	cfg.Limiter = lim
	s := startServer(t, cfg, nil, nil)
	del := upnp.DeletePortMapping(upnp.ServiceWANIP2, "", 40000, "TCP")
	// The one the limiter allows reaches the table: 714, no such entry.
	w := serve(s, hostA, http.MethodPost, ctlIP, http.Header{"Soapaction": {del.SOAPAction()}}, del.AppendEnvelope(nil))
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "714") {
		t.Fatalf("first DeletePortMapping: HTTP %d %s; want 500 with 714", w.Code, w.Body)
	}
	w = serve(s, hostA, http.MethodPost, ctlIP, http.Header{"Soapaction": {del.SOAPAction()}}, del.AppendEnvelope(nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("over the rate: HTTP %d, Retry-After %q; want 503, 1", w.Code, w.Header().Get("Retry-After"))
	}
	for range 5 {
		mustCall(t, s, hostA, ctlIP, upnp.GetStatusInfo(upnp.ServiceWANIP2))
		act := upnp.GetGenericPortMappingEntry(upnp.ServiceWANIP2, 0)
		if w := serve(s, hostA, http.MethodPost, ctlIP, http.Header{"Soapaction": {act.SOAPAction()}}, act.AppendEnvelope(nil)); w.Code == http.StatusServiceUnavailable {
			t.Fatal("GetGenericPortMappingEntry over the rate: 503; reads are not counted")
		}
	}
	if w := serve(s, hostA, http.MethodGet, DescriptionPath, nil, nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "InternetGatewayDevice") {
		t.Fatalf("GET of the description over the rate: HTTP %d", w.Code)
	}
}

func TestChangesState(t *testing.T) {
	for h, want := range map[string]bool{
		`"urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"`:             true,
		`urn:schemas-upnp-org:service:WANIPv6FirewallControl:1#DeletePinhole`:         true,
		`"urn:schemas-upnp-org:service:WANIPConnection:2#GetListOfPortMappings"`:      false,
		`"urn:schemas-upnp-org:control-1-0#QueryStateVariable"`:                       false,
		`"urn:schemas-upnp-org:service:WANIPv6FirewallControl:1#CheckPinholeWorking"`: false,
		``:            true,
		`no-fragment`: true,
	} {
		if got := changesState(h); got != want {
			t.Errorf("changesState(%s) = %v; want %v", h, got, want)
		}
	}
}

func newRequest(method, path string, body io.Reader) *http.Request {
	return httptest.NewRequest(method, "http://"+gwHost+path, body)
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// withLocalAddr returns r as the server gives it when it reached local.
func withLocalAddr(r *http.Request, local string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.ParseIP(local), Port: 5000}))
}
