package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/upnp"
)

// soapStatus sends GetStatusInfo from host to the gateway's control URL
// and returns the answer.
func soapStatus(host *netlab.Host, hostHeader string) (string, error) {
	act := upnp.GetStatusInfo(upnp.ServiceWANIP2)
	body := act.AppendEnvelope(nil)
	return rawHTTP(host, "198.51.100.1:5000", fmt.Sprintf("POST /ctl/IPConn HTTP/1.1\r\nHost: %s\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"+
		"SOAPAction: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", hostHeader, act.SOAPAction(), len(body), body))
}

// TestUPnPConnectionsPerHost: LAN host A holds 300 idle connections to the
// UPnP port; the gateway keeps 16 of them (upnp max connections per host's
// default) and closes the rest, and host B's GetStatusInfo (upnpc -s, and a
// SOAP request of its own) is answered at once. Without the per-host cap A
// holds all 256 connections the server serves, and B waits in the backlog
// until the server's read timeout (10 s) closes A's: its 5 s deadline
// fails (checked with "upnp max connections per host 256").
func TestUPnPConnectionsPerHost(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	a, b := lab.LAN[0], lab.LAN[1]
	const n, perHost = 300, 16
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range n {
		c, err := a.Dial(ctx, "tcp4", "198.51.100.1:5000")
		if err != nil {
			t.Fatalf("host A's connection %d: %v", i+1, err)
		}
		conns = append(conns, c)
	}

	// B is served while A holds its connections.
	start := time.Now()
	out, err := soapStatus(b, "198.51.100.1:5000")
	if err != nil || !strings.HasPrefix(out, "HTTP/1.1 200 ") || !strings.Contains(out, "<NewConnectionStatus>Connected<") {
		t.Fatalf("host B's GetStatusInfo while A holds %d connections: %v\n%s", n, err, out)
	}
	if out := labpeers.UPnPC(t, b, "-u", descURL, "-s"); !strings.Contains(out, "Status : Connected") {
		t.Fatalf("upnpc -s on host B printed:\n%s", out)
	}
	t.Logf("host B served %v after host A opened %d connections", time.Since(start).Round(time.Millisecond), n)

	// The gateway closed all but 16 of A's connections as it accepted
	// them: a request on one of the 16 is answered, the others read the
	// close (before the server's 10 s read timeout closes the 16 too).
	var served, closed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, werr := io.WriteString(c, "GET /rootDesc.xml HTTP/1.1\r\nHost: 198.51.100.1:5000\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case werr == nil && err == nil && resp.StatusCode == http.StatusOK:
				served++
			case errors.Is(werr, syscall.ECONNRESET), errors.Is(werr, syscall.EPIPE),
				errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
				closed++
			default:
				t.Errorf("a request on one of host A's connections: write %v, read %v", werr, err)
			}
		}()
	}
	wg.Wait()
	if served != perHost || closed != n-perHost {
		t.Fatalf("of host A's %d connections %d were served and %d closed; want %d served", n, served, closed, perHost)
	}
}

// withHostsFile makes name resolve to addr inside host's namespace only:
// `ip netns exec` (how netlab runs programs there) mounts the files of
// /etc/netns/NS over /etc. The directory is removed at the end of the test.
func withHostsFile(t *testing.T, host *netlab.Host, name, addr string) {
	t.Helper()
	dir := filepath.Join("/etc/netns", host.NS)
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("%s exists already", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost\n%s\t%s\n", addr, name)
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	// The name resolves there and only there.
	out, err := host.Run(t.Context(), "getent", "hosts", name)
	if err != nil || !strings.HasPrefix(out, addr+" ") {
		t.Fatalf("getent hosts %s in %s: %q, %v", name, host.NS, out, err)
	}
}

// TestUPnPHostName: with "upnp hostname router.lan", upnpc reaches the
// gateway by that name (-u http://router.lan:5000/rootDesc.xml: the
// description, then GetStatusInfo and AddPortMapping with Host:
// router.lan:5000), while a Host header naming another host is still
// refused (DNS rebinding).
func TestUPnPHostName(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, ExtraLines: []string{"upnp hostname router.lan"}})
	lan := lab.LAN[0]
	withHostsFile(t, lan, "router.lan", "198.51.100.1")
	const byName = "http://router.lan:5000/rootDesc.xml"
	if out := labpeers.UPnPC(t, lan, "-u", byName, "-s"); !strings.Contains(out, "Status : Connected") {
		t.Fatalf("upnpc -u %s -s printed:\n%s", byName, out)
	}
	out := labpeers.UPnPC(t, lan, "-u", byName, "-a", "198.51.100.10", "8080", "8080", "TCP", "3600")
	if !strings.Contains(out, "is redirected to internal 198.51.100.10:8080") {
		t.Fatalf("upnpc -u %s -a printed:\n%s", byName, out)
	}
	if out, err := soapStatus(lan, "router.lan:5000"); err != nil || !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Fatalf("GetStatusInfo with Host: router.lan:5000: %v\n%s", err, out)
	}
	for _, host := range []string{"evil.example:5000", "router.lan.evil.example", "lan"} {
		if out, err := soapStatus(lan, host); err != nil || !strings.HasPrefix(out, "HTTP/1.1 403 ") {
			t.Errorf("GetStatusInfo with Host: %s: %v\n%.200s; want 403", host, err, out)
		}
	}
}
