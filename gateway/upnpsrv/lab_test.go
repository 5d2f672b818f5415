package upnpsrv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// The lab test runs miniupnpc's upnpc on a LAN host of a netlab lab
// against the server, whose listener is in the gateway's namespace: every
// packet stays in the lab. upnpc is given the description's URL (-u), so
// there is no SSDP; the server's event connections, which upnpc does not
// ask for, would be dialled in the gateway's namespace too (Config.Dial).

func TestLabUPnPC(t *testing.T) {
	for _, v := range []int{2, 1} {
		t.Run(fmt.Sprintf("IGD:%d", v), func(t *testing.T) {
			lab := netlab.New(t, netlab.Config{LANHosts: 2})
			ln, err := lab.Gateway.Listen("tcp4", lab.GatewayLANAddr4.String()+":5000")
			if err != nil {
				t.Fatal(err)
			}
			table := newTable(t, gateway.Config{})
			table.SetExternalAddress(lab.GatewayWANAddr4)
			cfg := testConfig(t)
			cfg.Table, cfg.Version = table, v
			cfg.Clients = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
			cfg.Dial = lab.Gateway.Dial
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.Serve(ln) }()
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := s.Shutdown(ctx); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				if err := <-done; !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("Serve: %v", err)
				}
			})
			url := fmt.Sprintf("http://%v:5000%s", lab.GatewayLANAddr4, s.DescriptionPath())
			lan, other := lab.LAN[0], lab.LAN[1]
			upnpc := func(host *netlab.Host, args ...string) string {
				t.Helper()
				return labpeers.UPnPC(t, host, append([]string{"-u", url}, args...)...)
			}
			mustFail := func(host *netlab.Host, code string, args ...string) {
				t.Helper()
				out, err := labpeers.RunUPnPC(t.Context(), host, append([]string{"-u", url}, args...)...)
				if err == nil && !strings.Contains(out, code) {
					t.Fatalf("upnpc %v succeeded; want %s:\n%s", args, code, out)
				}
				if !strings.Contains(out, code) {
					t.Fatalf("upnpc %v: want %s:\n%s", args, code, out)
				}
			}

			out := upnpc(lan, "-a", "198.51.100.10", "8080", "8080", "TCP", "3600")
			if !strings.Contains(out, "external "+lab.GatewayWANAddr4.String()+":8080 TCP is redirected to internal 198.51.100.10:8080") {
				t.Fatalf("upnpc -a:\n%s", out)
			}
			if !strings.Contains(out, "Found valid IGD : http://198.51.100.1:5000/ctl/IPConn") {
				t.Errorf("upnpc did not find the WANIPConnection service's control URL:\n%s", out)
			}
			upnpc(lan, "-e", "lab udp", "-a", "198.51.100.10", "5353", "25353", "UDP", "600")
			out = upnpc(lan, "-l")
			for _, re := range []string{
				`ExternalIPAddress = 203\.0\.113\.1`,
				`Connection Type : IP_Routed`,
				`Status : Connected`,
				`MaxBitRateDown : 1000000000 bps`,
				`TCP\s+8080->198\.51\.100\.10:8080\s+'libminiupnpc'`,
				`UDP\s+25353->198\.51\.100\.10:5353\s+'lab udp'`,
			} {
				if !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("upnpc -l lacks %s:\n%s", re, out)
				}
			}
			if v == 2 {
				// Another host cannot take the port (718) nor map for the
				// first one (606); AddAnyPortMapping gives it another port.
				mustFail(other, "718", "-a", "198.51.100.11", "8080", "8080", "TCP", "3600")
				mustFail(other, "606", "-a", "198.51.100.10", "8081", "8081", "TCP", "3600")
				out = upnpc(other, "-n", "198.51.100.11", "8080", "8080", "TCP", "3600")
				if !regexp.MustCompile(`is redirected to internal 198\.51\.100\.11:8080`).MatchString(out) ||
					strings.Contains(out, "203.0.113.1:8080 TCP") {
					t.Errorf("upnpc -n:\n%s", out)
				}
				// upnpc -L asks with NewManage 1: every host's mappings.
				out = upnpc(lan, "-L")
				for _, re := range []string{`TCP\s+8080->198\.51\.100\.10:8080`, `TCP\s+\d+->198\.51\.100\.11:8080`, `UDP\s+25353->198\.51\.100\.10:5353`} {
					if !regexp.MustCompile(re).MatchString(out) {
						t.Errorf("upnpc -L (GetListOfPortMappings) lacks %s:\n%s", re, out)
					}
				}
			} else {
				mustFail(other, "718", "-a", "198.51.100.11", "8080", "8080", "TCP", "3600")
				mustFail(other, "606", "-a", "198.51.100.10", "8081", "8081", "TCP", "3600")
			}
			// Secure mode: another host cannot delete the mapping; its owner
			// can.
			mustFail(other, "606", "-d", "8080", "TCP")
			upnpc(lan, "-d", "8080", "TCP")
			if v == 2 {
				upnpc(lan, "-N", "1024", "65535", "UDP")
			} else {
				upnpc(lan, "-d", "25353", "UDP")
			}
			out = upnpc(lan, "-l")
			if strings.Contains(out, "->198.51.100.10:") {
				t.Errorf("after deleting, upnpc -l lists:\n%s", out)
			}
			if testing.Verbose() {
				t.Logf("upnpc -l:\n%s", out)
			}

			// Events: the LAN host subscribes with a callback of its own and
			// gets the initial event message there.
			events, err := lan.Listen("tcp4", "198.51.100.10:4001")
			if err != nil {
				t.Fatal(err)
			}
			defer events.Close()
			got := make(chan string, 1)
			go func() {
				c, err := events.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				body, _ := io.ReadAll(req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				got <- req.Method + " " + req.Header.Get("SEQ") + " " + string(body)
			}()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c, err := lan.Dial(ctx, "tcp4", "198.51.100.1:5000")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "SUBSCRIBE /evt/IPConn HTTP/1.1\r\nHOST: 198.51.100.1:5000\r\nCALLBACK: <http://198.51.100.10:4001/ev>\r\nNT: upnp:event\r\nTIMEOUT: Second-300\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("SID"), "uuid:") {
				t.Fatalf("SUBSCRIBE: %v, %v", resp, err)
			}
			select {
			case msg := <-got:
				if !strings.HasPrefix(msg, "NOTIFY 0 ") || !strings.Contains(msg, "<ExternalIPAddress>203.0.113.1</ExternalIPAddress>") {
					t.Errorf("initial event %q", msg)
				}
			case <-ctx.Done():
				t.Fatal("no initial event at the LAN host")
			}
		})
	}
}

// TestLabDefaultLinkStats reads a lab link's counters over netlink inside
// the gateway's namespace, after traffic through it.
func TestLabDefaultLinkStats(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	// Traffic: connections the gateway refuses, a SYN in and a RST out each.
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		if c, err := lab.LAN[0].Dial(ctx, "tcp4", lab.GatewayLANAddr4.String()+":9"); err == nil {
			c.Close()
		}
		cancel()
	}
	var st LinkStats
	err := lab.Gateway.Do(func() error {
		var err error
		st, err = DefaultLinkStats(lab.GatewayLANLink)()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Up || st.PacketsReceived < 3 || st.BytesReceived == 0 || st.PacketsSent < 3 {
		t.Errorf("DefaultLinkStats(%s) = %+v; want up, with the connections counted", lab.GatewayLANLink, st)
	}
	err = lab.Gateway.Do(func() error {
		_, err := DefaultLinkStats("nosuchlink0")()
		return err
	})
	if err == nil || !strings.HasPrefix(err.Error(), "upnpsrv: link nosuchlink0") {
		t.Errorf("DefaultLinkStats(nosuchlink0) = %v", err)
	}
}
