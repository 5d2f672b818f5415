//go:build linux

package igdclient

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// TestLabCapture records the goldens labelled "miniupnpd 2.3.1, captured in
// the lab" into testdata/: the descriptions (IGD:2, and IGD:1 with
// force_igd_desc_v1), a search response, NOTIFY, and SOAP answers and
// faults. It runs only with IGDCLIENT_CAPTURE=1 (and as root); the requests
// are written out by hand here, independent of package upnp.
func TestLabCapture(t *testing.T) {
	if os.Getenv("IGDCLIENT_CAPTURE") == "" {
		t.Skip("IGDCLIENT_CAPTURE not set")
	}
	for _, v1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v1=%v", v1), func(t *testing.T) { captureMiniUPnPd(t, v1) })
	}
}

func captureMiniUPnPd(t *testing.T, v1 bool) {
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	cfg := labpeers.MiniUPnPdConfig{}
	prefix := "miniupnpd-2.3.1-igd2-"
	if v1 {
		cfg.ExtraLines = []string{"force_igd_desc_v1=yes"}
		prefix = "miniupnpd-2.3.1-igd1-"
	}
	mu := labpeers.StartMiniUPnPd(t, lab, cfg)
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join("testdata", prefix+name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	client := func(h *netlab.Host) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return h.Dial(ctx, network, addr)
			},
		}}
	}
	lan0, lan1 := client(lab.LAN[0]), client(lab.LAN[1])
	resp, err := lan0.Get(mu.DescriptionURL())
	if err != nil {
		t.Fatal(err)
	}
	desc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	write("rootDesc.xml", string(desc))

	st := "urn:schemas-upnp-org:service:WANIPConnection:2"
	if v1 {
		st = "urn:schemas-upnp-org:service:WANIPConnection:1"
	}
	soap := func(c *http.Client, action, args string) string {
		t.Helper()
		body := `<?xml version="1.0"?>` + "\r\n" +
			`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>` +
			`<u:` + action + ` xmlns:u="` + st + `">` + args + `</u:` + action + `></s:Body></s:Envelope>` + "\r\n"
		req, _ := http.NewRequest(http.MethodPost, "http://198.51.100.1:5000/ctl/IPConn", strings.NewReader(body))
		req.Header.Set("Content-Type", `text/xml; charset="utf-8"`)
		req.Header.Set("SOAPAction", `"`+st+`#`+action+`"`)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("HTTP %d\n%s", resp.StatusCode, b)
	}
	add := func(client string, port int) string {
		return fmt.Sprintf("<NewRemoteHost></NewRemoteHost><NewExternalPort>%d</NewExternalPort><NewProtocol>TCP</NewProtocol>"+
			"<NewInternalPort>%d</NewInternalPort><NewInternalClient>%s</NewInternalClient><NewEnabled>1</NewEnabled>"+
			"<NewPortMappingDescription>capture</NewPortMappingDescription><NewLeaseDuration>3600</NewLeaseDuration>", port, port, client)
	}
	specific := "<NewRemoteHost></NewRemoteHost><NewExternalPort>8080</NewExternalPort><NewProtocol>TCP</NewProtocol>"
	write("GetStatusInfo.txt", soap(lan0, "GetStatusInfo", ""))
	write("GetExternalIPAddress.txt", soap(lan0, "GetExternalIPAddress", ""))
	write("AddPortMapping.txt", soap(lan1, "AddPortMapping", add("198.51.100.11", 8080)))
	write("AddPortMapping-718.txt", soap(lan0, "AddPortMapping", add("198.51.100.10", 8080)))
	write("GetSpecificPortMappingEntry.txt", soap(lan0, "GetSpecificPortMappingEntry", specific))
	write("GetGenericPortMappingEntry-0.txt", soap(lan0, "GetGenericPortMappingEntry", "<NewPortMappingIndex>0</NewPortMappingIndex>"))
	write("GetGenericPortMappingEntry-713.txt", soap(lan0, "GetGenericPortMappingEntry", "<NewPortMappingIndex>1</NewPortMappingIndex>"))
	write("DeletePortMapping-missing.txt", soap(lan0, "DeletePortMapping",
		"<NewRemoteHost></NewRemoteHost><NewExternalPort>9999</NewExternalPort><NewProtocol>TCP</NewProtocol>"))
	if !v1 {
		write("AddAnyPortMapping.txt", soap(lan0, "AddAnyPortMapping", add("198.51.100.10", 8080)))
	}

	// A unicast M-SEARCH from LAN host 0, and the NOTIFYs of a restart.
	var search string
	err = lab.LAN[0].Do(func() error {
		pc, err := net.ListenPacket("udp4", "198.51.100.10:0")
		if err != nil {
			return err
		}
		defer pc.Close()
		msg := "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: " + st + "\r\n\r\n"
		if _, err := pc.WriteTo([]byte(msg), &net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 1900}); err != nil {
			return err
		}
		pc.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 4096)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		search = fmt.Sprintf("from %v\n%s", from, buf[:n])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	write("search-response.txt", search)

	var pc net.PacketConn
	err = lab.LAN[0].Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", "0.0.0.0:1900")
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		return joinSSDP(pc, ifi)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	mu.Restart(t)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var notes []string
	buf := make([]byte, 4096)
	for len(notes) < 40 {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			break
		}
		notes = append(notes, fmt.Sprintf("from %v\n%s", from, buf[:n]))
	}
	write("notify.txt", strings.Join(notes, "----\n"))
}

// joinSSDP joins 239.255.255.250 on ifi.
func joinSSDP(pc net.PacketConn, ifi *net.Interface) error {
	return ipv4.NewPacketConn(pc).JoinGroup(ifi, &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250)})
}
