package upnpsrv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/upnp"
)

func TestNewChecksConfig(t *testing.T) {
	table := newTable(t, gateway.Config{})
	ok := func() Config { c := testConfig(t); c.Table = table; return c }
	tests := []struct {
		name   string
		change func(*Config)
		err    string
	}{
		{"valid", func(*Config) {}, ""},
		{"uuid: prefix and upper case", func(c *Config) { c.UUID = "uuid:" + strings.ToUpper(testUUID) }, ""},
		{"no table", func(c *Config) { c.Table = nil }, "upnpsrv: no lease table"},
		{"no UUID", func(c *Config) { c.UUID = "" }, "upnpsrv: UUID"},
		{"bad UUID", func(c *Config) { c.UUID = "portleased-1" }, "upnpsrv: UUID"},
		{"version 3", func(c *Config) { c.Version = 3 }, "upnpsrv: IGD version 3"},
		{"no clients", func(c *Config) { c.Clients = nil }, "upnpsrv: no client prefixes"},
		{"invalid client prefix", func(c *Config) { c.Clients = []netip.Prefix{{}} }, "upnpsrv: client prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok()
			tt.change(&cfg)
			s, err := New(cfg)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if err := s.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Fatalf("New = %v; want %q…", err, tt.err)
			}
		})
	}
}

// listen serves s on a listener of its own on 127.0.0.1 and returns its
// address; Serve must return http.ErrServerClosed after Shutdown.
func listen(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Shutdown(context.Background())
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v; want http.ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// raw sends a request over a new connection and returns what comes back
// until the server closes it or 10 s pass.
func raw(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestServeHTTPOverTCP(t *testing.T) {
	s := startServer(t, Config{}, nil, nil)
	addr := listen(t, s)
	out := raw(t, addr, "GET /rootDesc.xml HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.Contains(out, "InternetGatewayDevice:2") ||
		!strings.Contains(out, "\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n") || !strings.Contains(out, "\r\nServer: "+DefaultServer+"\r\n") {
		t.Fatalf("GET /rootDesc.xml:\n%s", out)
	}
	body := upnp.GetExternalIPAddress(ip2).AppendEnvelope(nil)
	out = raw(t, addr, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/xml\r\nSOAPAction: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		ctlIP, addr, upnp.GetExternalIPAddress(ip2).SOAPAction(), len(body), body))
	// UDA 1.1 §3.2.2: EXT in the response header.
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.Contains(out, "\r\nEXT: \r\n") || !strings.Contains(out, "<NewExternalIPAddress>"+extAddr+"<") {
		t.Fatalf("GetExternalIPAddress:\n%s", out)
	}
	sub := newSubscriber(t, http.StatusOK)
	out = raw(t, addr, "SUBSCRIBE /evt/IPConn HTTP/1.1\r\nHost: "+addr+"\r\nCALLBACK: <"+sub.url+">\r\nNT: upnp:event\r\nTIMEOUT: Second-100\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.Contains(out, "\r\nSID: uuid:") || !strings.Contains(out, "\r\nTIMEOUT: Second-100\r\n") {
		t.Fatalf("SUBSCRIBE:\n%s", out)
	}
	if n := sub.next(t); n.seq != 0 {
		t.Errorf("initial event %+v", n)
	}
}

// TestRefusedConnection: a connection from outside Config.Clients is closed
// without an answer.
func TestRefusedConnection(t *testing.T) {
	cfg := testConfig(t)
	cfg.Clients = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	s := startServer(t, cfg, nil, nil)
	addr := listen(t, s)
	if out := raw(t, addr, "GET /rootDesc.xml HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); out != "" {
		t.Fatalf("a client outside the LAN got:\n%s", out)
	}
}

// TestHostileRequests: oversize and malformed requests are refused, and the
// server goes on serving.
func TestHostileRequests(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRequestBytes = 4 << 10
	cfg.MaxHeaderBytes = 2 << 10
	cfg.ReadTimeout = time.Second // for the body that never comes
	s := startServer(t, cfg, nil, nil)
	addr := listen(t, s)
	soap := func(body string, extra string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nSOAPAction: %s\r\n%sConnection: close\r\n\r\n%s",
			ctlIP, addr, upnp.GetStatusInfo(ip2).SOAPAction(), extra, body)
	}
	big := strings.Repeat("<a>", 4<<10)
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big)
	tests := []struct {
		name, req, status string
	}{
		{"body over the limit", soap(big, fmt.Sprintf("Content-Length: %d\r\n", len(big))), "HTTP/1.1 413 "},
		{"chunked body over the limit", soap(chunked, "Transfer-Encoding: chunked\r\n"), "HTTP/1.1 413 "},
		{"header over the limit", soap("", "X-Filler: "+strings.Repeat("x", 8<<10)+"\r\n"), "HTTP/1.1 431 "},
		{"truncated XML", soap("<s:Envelope><s:Body><u:GetStatusInfo", "Content-Length: 36\r\n"), "HTTP/1.1 500 "},
		{"body shorter than its length", soap("<s:Envelope>", "Content-Length: 100\r\n"), ""},
		{"not HTTP", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "HTTP/1.1 400 "},
		{"no Host", "GET /rootDesc.xml HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 400 "},
		{"HTTP/1.0 without Host", "GET /rootDesc.xml HTTP/1.0\r\n\r\n", "HTTP/1.0 200 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := raw(t, addr, tt.req)
			if !strings.HasPrefix(out, tt.status) {
				t.Errorf("got:\n%.300s\nwant %q…", out, tt.status)
			}
			if out := raw(t, addr, "GET /rootDesc.xml HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(out, "HTTP/1.1 200 ") {
				t.Fatalf("after it, GET /rootDesc.xml got:\n%.300s", out)
			}
		})
	}
}

// TestMaxConnections: with one connection allowed, a second client is
// served only once the first connection is gone.
func TestMaxConnections(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxConnections = 1
	s := startServer(t, cfg, nil, nil)
	addr := listen(t, s)
	first, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	// The first connection is accepted and served: it holds the slot.
	fmt.Fprintf(first, "GET /rootDesc.xml HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(first), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	var firstClosed atomic.Bool
	answered := make(chan string, 1)
	go func() {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			answered <- err.Error()
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /rootDesc.xml HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr)
		b, _ := io.ReadAll(c)
		answered <- string(b)
	}()
	time.Sleep(200 * time.Millisecond) // long enough for a server without the limit to answer
	firstClosed.Store(true)
	first.Close()
	out := <-answered
	if !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Fatalf("second client got:\n%.300s", out)
	}
	if !firstClosed.Load() {
		t.Fatal("second client served while the first held the only connection")
	}
}

// TestServeAfterShutdown: Serve and Shutdown after Shutdown.
func TestServeAfterShutdown(t *testing.T) {
	s := startServer(t, Config{}, nil, nil)
	for range 2 {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Serve after Shutdown left the listener open")
	}
}

// serverGoroutines returns the stacks of goroutines that belong to a server:
// this package's, and net/http's serving and client connections.
func serverGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "TestShutdownLeavesNoGoroutines") {
			continue
		}
		if strings.Contains(g, "upnpsrv.(*") || strings.Contains(g, "net/http.(*conn).serve") || strings.Contains(g, "net/http.(*persistConn)") {
			out = append(out, g)
		}
	}
	return out
}

// TestShutdownLeavesNoGoroutines: after Shutdown nothing of the server runs:
// listeners, connections, subscriptions and their deliveries, the table
// watch.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	if gs := serverGoroutines(); len(gs) > 0 {
		t.Skipf("goroutines of other tests still running:\n%s", strings.Join(gs, "\n\n"))
	}
	table := newTable(t, gateway.Config{})
	cfg := testConfig(t)
	cfg.Table = table
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var served []chan error
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(ln) }()
		served = append(served, done)
		addrs = append(addrs, ln.Addr().String())
	}
	// A subscriber that answers slowly, so that a delivery is in flight at
	// Shutdown; one that answers; idle kept-alive connections.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices a closed connection
		select {
		case <-r.Context().Done():
		case <-time.After(notifyTimeout * 2):
		}
	}))
	defer slow.Close()
	sub := newSubscriber(t, http.StatusOK)
	client := &http.Client{}
	for _, cb := range []string{slow.URL, sub.url} {
		req, _ := http.NewRequest("SUBSCRIBE", "http://"+addrs[0]+"/evt/IPConn", nil)
		req.Header.Set("CALLBACK", "<"+cb+">")
		req.Header.Set("NT", "upnp:event")
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("SUBSCRIBE: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	sub.next(t)
	for _, addr := range addrs {
		resp, err := client.Get("http://" + addr + DescriptionPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	body := add(8080, "TCP", 8080, loopback, 60).AppendEnvelope(nil)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addrs[1]+ctlIP, bytes.NewReader(body))
	req.Header.Set("SOAPAction", add(8080, "TCP", 8080, loopback, 60).SOAPAction())
	if resp, err := client.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("AddPortMapping: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, done := range served {
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	}
	client.CloseIdleConnections()
	slow.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		gs := serverGoroutines()
		if len(gs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Shutdown %d goroutines remain:\n%s", len(gs), strings.Join(gs, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
