package igdclient

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/portlease/portlease/upnp"
)

// TestServeNotify replays the NOTIFYs miniupnpd 2.3.1 sent around a restart
// (captured in the lab) to a socket on 127.0.0.1, after NOTIFYs of a
// non-IGD device and an M-SEARCH, and checks that exactly the IGD ones
// reach fn.
func TestServeNotify(t *testing.T) {
	captured := readSSDPGolden(t, "miniupnpd-2.3.1-igd2-notify.txt")
	var want []upnp.Notify
	for _, d := range captured {
		n, err := upnp.ParseNotify(d)
		if err != nil {
			t.Fatalf("captured NOTIFY %q: %v", d, err)
		}
		switch {
		case strings.Contains(n.NT, "InternetGatewayDevice"), strings.Contains(n.NT, "WANDevice"),
			strings.Contains(n.NT, "WANConnectionDevice"), strings.Contains(n.NT, "WANIPConnection"),
			strings.Contains(n.NT, "WANPPPConnection"), strings.Contains(n.NT, "WANCommonInterfaceConfig"):
			want = append(want, n)
		}
	}
	if len(want) == 0 {
		t.Fatal("no IGD NOTIFY in the capture")
	}
	noise := [][]byte{
		// A media renderer's alive (not an IGD).
		[]byte("NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\n" +
			"LOCATION: http://192.168.1.50:8008/ssdp/device-desc.xml\r\nNT: urn:schemas-upnp-org:device:MediaRenderer:1\r\n" +
			"NTS: ssdp:alive\r\nSERVER: Linux/3.8.13 UPnP/1.0 Portable SDK for UPnP devices/1.6.18\r\n" +
			"USN: uuid:b1b1b1b1-0000-1000-8000-000000000001::urn:schemas-upnp-org:device:MediaRenderer:1\r\n\r\n"),
		// Another control point's search.
		[]byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\nST: ssdp:all\r\n\r\n"),
		// The root device type of the IGD: not an IGD type by itself.
		captured[0],
	}
	if n, _ := upnp.ParseNotify(captured[0]); n.NT != upnp.SearchRootDevice {
		t.Fatalf("capture starts with %q; the test expects upnp:rootdevice", n.NT)
	}

	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan upnp.Notify, len(want)+len(noise))
	done := make(chan error, 1)
	c := New(Config{Logger: testLogger(t)})
	go func() {
		done <- c.ServeNotify(ctx, pc, func(from netip.AddrPort, n upnp.Notify) {
			if from.Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("NOTIFY from %v", from)
			}
			got <- n
		})
	}()

	out, err := net.Dial("udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for _, d := range append(noise, captured...) {
		if _, err := out.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	for i, w := range want {
		select {
		case n := <-got:
			if n != w {
				t.Errorf("NOTIFY %d = %+v; want %+v", i, n, w)
			}
		case err := <-done:
			t.Fatalf("ServeNotify returned %v after %d NOTIFYs", err, i)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeNotify = %v after cancel; want nil", err)
	}
	if len(got) != 0 {
		t.Errorf("%d more NOTIFYs than expected", len(got))
	}
}

func TestIGDType(t *testing.T) {
	tests := []struct {
		nt   string
		want bool
	}{
		{upnp.DeviceIGD1, true},
		{upnp.DeviceIGD2, true},
		{upnp.ServiceWANIP2, true},
		{upnp.ServiceWANPPP1, true},
		{upnp.ServiceWANCommon1, true},
		{"urn:schemas-upnp-org:device:WANConnectionDevice:2", true},
		{upnp.SearchRootDevice, false},
		{"uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab", false},
		{"urn:schemas-upnp-org:service:Layer3Forwarding:1", false},
		{"urn:schemas-upnp-org:device:MediaRenderer:1", false},
	}
	for _, tt := range tests {
		if got := igdType(tt.nt); got != tt.want {
			t.Errorf("igdType(%q) = %v; want %v", tt.nt, got, tt.want)
		}
	}
}
