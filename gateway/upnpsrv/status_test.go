package upnpsrv

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestStatusPage: Config.StatusPage serves /status and the paths under it,
// and nothing else; its requests pass the checks of every request first
// (a LAN client, a Host header naming the gateway); without it /status is
// not found.
func TestStatusPage(t *testing.T) {
	var got []string
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path)
		_, _ = io.WriteString(w, "status")
	})
	cfg := testConfig(t)
	cfg.StatusPage = page
	s := startServer(t, cfg, nil, nil)
	for _, tc := range []struct {
		client, path, host string
		want               int
	}{
		{hostA, "/status", gwHost, http.StatusOK},
		{hostA, "/status/leases.json", gwHost, http.StatusOK},
		{hostA, "/statusx", gwHost, http.StatusNotFound},
		{hostA, "/rootDesc.xml", gwHost, http.StatusOK},
		{"203.0.113.2", "/status", gwHost, http.StatusForbidden},      // the WAN side
		{hostA, "/status", "evil.example:5000", http.StatusForbidden}, // DNS rebinding
	} {
		got = nil
		r := serveHost(s, tc.client, tc.host, tc.path)
		if r.Code != tc.want {
			t.Errorf("GET %s from %s, Host %s: %d; want %d", tc.path, tc.client, tc.host, r.Code, tc.want)
		}
		if served := len(got) == 1 && got[0] == tc.path; served != (tc.want == http.StatusOK && tc.path != "/rootDesc.xml") {
			t.Errorf("GET %s from %s, Host %s: the page saw %q", tc.path, tc.client, tc.host, got)
		}
	}

	off := startServer(t, Config{}, nil, nil)
	if r := serve(off, hostA, http.MethodGet, "/status", nil, nil); r.Code != http.StatusNotFound {
		t.Errorf("GET /status without a status page: %d; want 404", r.Code)
	}
}

// serveHost sends a GET straight to the handler, from client, with a Host
// header.
func serveHost(s *Server, client, host, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "http://"+gwHost+path, nil)
	r.RemoteAddr = net.JoinHostPort(client, "40000")
	r.Host = host
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// TestStatusPageShutdown: a status page request that would last for ever
// (an event stream) ends when Shutdown begins, and Shutdown returns.
func TestStatusPageShutdown(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan struct{})
	cfg := testConfig(t)
	cfg.StatusPage = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		close(ended)
	})
	s := startServer(t, cfg, nil, nil)
	go serve(s, hostA, http.MethodGet, "/status/events", nil, nil)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the status page's request still runs after Shutdown")
	}
}
