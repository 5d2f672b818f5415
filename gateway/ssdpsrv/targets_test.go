package ssdpsrv

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/upnp"
)

const (
	testUUID     = "3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab"
	testUDN      = "uuid:" + testUUID
	testLocation = "http://198.51.100.1:5000/rootDesc.xml"
	testServer   = "Linux/6.1 UPnP/1.1 portleased/0.1"
)

// testDevice is an IGD:2 as portleased advertises it.
func testDevice() Device {
	return Device{
		UUID:         testUUID,
		DeviceTypes:  []string{upnp.DeviceIGD2, upnp.DeviceWAN2, upnp.DeviceWANConnection2},
		ServiceTypes: []string{upnp.ServiceWANCommon1, upnp.ServiceWANIP2},
		Server:       testServer,
		BootID:       7,
		ConfigID:     3,
		MaxAge:       DefaultMaxAge,
	}
}

// allTargets is what testDevice advertises, in order.
var allTargets = []target{
	{upnp.SearchRootDevice, testUDN + "::upnp:rootdevice"},
	{testUDN, testUDN},
	{upnp.DeviceIGD2, testUDN + "::" + upnp.DeviceIGD2},
	{upnp.DeviceWAN2, testUDN + "::" + upnp.DeviceWAN2},
	{upnp.DeviceWANConnection2, testUDN + "::" + upnp.DeviceWANConnection2},
	{upnp.ServiceWANCommon1, testUDN + "::" + upnp.ServiceWANCommon1},
	{upnp.ServiceWANIP2, testUDN + "::" + upnp.ServiceWANIP2},
}

// Embedded devices with UUIDs of their own, as in an IGD description:
// WANDevice holds WANCommonInterfaceConfig, WANConnectionDevice holds
// WANIPConnection.
const (
	wanUUID = "5b0b8d1e-0c5a-5e0e-8f4e-1a2b3c4d5e6f"
	wcdUUID = "6c1c9e2f-1d6b-5f1f-9a5f-2b3c4d5e6f70"
	wanUDN  = "uuid:" + wanUUID
	wcdUDN  = "uuid:" + wcdUUID
)

func embeddedDevice() Device {
	d := testDevice()
	d.UUIDs = map[string]string{
		upnp.DeviceWAN2: wanUUID, upnp.ServiceWANCommon1: wanUUID,
		upnp.DeviceWANConnection2: wcdUUID, upnp.ServiceWANIP2: wcdUUID,
	}
	return d
}

// embeddedTargets is what embeddedDevice advertises, in order: 3+2d+k
// (UDA 1.1 §1.2.2) with d = 2 embedded devices and k = 2 services.
var embeddedTargets = []target{
	{upnp.SearchRootDevice, testUDN + "::upnp:rootdevice"},
	{testUDN, testUDN},
	{upnp.DeviceIGD2, testUDN + "::" + upnp.DeviceIGD2},
	{wanUDN, wanUDN},
	{upnp.DeviceWAN2, wanUDN + "::" + upnp.DeviceWAN2},
	{wcdUDN, wcdUDN},
	{upnp.DeviceWANConnection2, wcdUDN + "::" + upnp.DeviceWANConnection2},
	{upnp.ServiceWANCommon1, wanUDN + "::" + upnp.ServiceWANCommon1},
	{upnp.ServiceWANIP2, wcdUDN + "::" + upnp.ServiceWANIP2},
}

func TestTargets(t *testing.T) {
	d := testDevice()
	if got := d.targets(); !reflect.DeepEqual(got, allTargets) {
		t.Errorf("targets() = %v; want %v", got, allTargets)
	}
	// A type listed twice is advertised once.
	d.ServiceTypes = append(d.ServiceTypes, upnp.ServiceWANIP2, upnp.DeviceWAN2)
	if got := d.targets(); !reflect.DeepEqual(got, allTargets) {
		t.Errorf("targets() with duplicates = %v; want %v", got, allTargets)
	}
	d = embeddedDevice()
	if got := d.targets(); !reflect.DeepEqual(got, embeddedTargets) {
		t.Errorf("targets() with embedded UUIDs = %v; want %v", got, embeddedTargets)
	}
}

func TestAnswers(t *testing.T) {
	one := func(st, usn string) []target { return []target{{st, usn}} }
	tests := []struct {
		name string
		st   string
		want []target
	}{
		{"all", "ssdp:all", allTargets},
		{"all upper case", "SSDP:ALL", allTargets},
		{"root device", "upnp:rootdevice", one("upnp:rootdevice", testUDN+"::upnp:rootdevice")},
		{"uuid", testUDN, one(testUDN, testUDN)},
		{"uuid upper case", "uuid:" + strings.ToUpper(testUUID), one("uuid:"+strings.ToUpper(testUUID), testUDN)},
		{"other uuid", "uuid:00000000-0000-0000-0000-000000000000", nil},
		{"uuid prefix", "uuid:" + testUUID[:8], nil},
		{"bare uuid:", "uuid:", nil},
		{"IGD:2", upnp.DeviceIGD2, one(upnp.DeviceIGD2, testUDN+"::"+upnp.DeviceIGD2)},
		{"IGD:1 (lower version)", upnp.DeviceIGD1, one(upnp.DeviceIGD1, testUDN+"::"+upnp.DeviceIGD1)},
		{"IGD:3 (higher version)", "urn:schemas-upnp-org:device:InternetGatewayDevice:3", nil},
		{"IGD:0", "urn:schemas-upnp-org:device:InternetGatewayDevice:0", nil},
		{"IGD:01", "urn:schemas-upnp-org:device:InternetGatewayDevice:01", one("urn:schemas-upnp-org:device:InternetGatewayDevice:01", testUDN+"::urn:schemas-upnp-org:device:InternetGatewayDevice:01")},
		{"IGD without version", "urn:schemas-upnp-org:device:InternetGatewayDevice", nil},
		{"IGD:x", "urn:schemas-upnp-org:device:InternetGatewayDevice:x", nil},
		{"IGD huge version", "urn:schemas-upnp-org:device:InternetGatewayDevice:99999999999", nil},
		{"WANDevice:1", upnp.DeviceWAN1, one(upnp.DeviceWAN1, testUDN+"::"+upnp.DeviceWAN1)},
		{"WANConnectionDevice:1", upnp.DeviceWANConnection1, one(upnp.DeviceWANConnection1, testUDN+"::"+upnp.DeviceWANConnection1)},
		{"WANIPConnection:2", upnp.ServiceWANIP2, one(upnp.ServiceWANIP2, testUDN+"::"+upnp.ServiceWANIP2)},
		{"WANIPConnection:1 (lower version)", upnp.ServiceWANIP1, one(upnp.ServiceWANIP1, testUDN+"::"+upnp.ServiceWANIP1)},
		{"WANCommonInterfaceConfig:1", upnp.ServiceWANCommon1, one(upnp.ServiceWANCommon1, testUDN+"::"+upnp.ServiceWANCommon1)},
		{"WANCommonInterfaceConfig:2 (higher)", "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:2", nil},
		{"WANPPPConnection:1 (not served)", upnp.ServiceWANPPP1, nil},
		{"device type as service", "urn:schemas-upnp-org:service:InternetGatewayDevice:1", nil},
		{"other domain", "urn:example-com:device:InternetGatewayDevice:1", nil},
		{"type in other case", strings.ToLower(upnp.DeviceIGD2), nil},
		{"unknown", "urn:schemas-upnp-org:device:MediaServer:1", nil},
		{"junk", "hello", nil},
		{"empty", "", nil},
	}
	d := testDevice()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.answers(tt.st); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("answers(%q) = %v; want %v", tt.st, got, tt.want)
			}
		})
	}
}

func TestAnswersEmbedded(t *testing.T) {
	one := func(st, usn string) []target { return []target{{st, usn}} }
	tests := []struct {
		name string
		st   string
		want []target
	}{
		{"all", "ssdp:all", embeddedTargets},
		{"root device", "upnp:rootdevice", one("upnp:rootdevice", testUDN+"::upnp:rootdevice")},
		{"root uuid", testUDN, one(testUDN, testUDN)},
		{"WANDevice uuid", wanUDN, one(wanUDN, wanUDN)},
		{"WANConnectionDevice uuid", "UUID:" + strings.ToUpper(wcdUUID), one("UUID:"+strings.ToUpper(wcdUUID), wcdUDN)},
		{"IGD:1", upnp.DeviceIGD1, one(upnp.DeviceIGD1, testUDN+"::"+upnp.DeviceIGD1)},
		{"WANDevice:1", upnp.DeviceWAN1, one(upnp.DeviceWAN1, wanUDN+"::"+upnp.DeviceWAN1)},
		{"WANConnectionDevice:2", upnp.DeviceWANConnection2, one(upnp.DeviceWANConnection2, wcdUDN+"::"+upnp.DeviceWANConnection2)},
		{"WANIPConnection:1", upnp.ServiceWANIP1, one(upnp.ServiceWANIP1, wcdUDN+"::"+upnp.ServiceWANIP1)},
		{"WANCommonInterfaceConfig:1", upnp.ServiceWANCommon1, one(upnp.ServiceWANCommon1, wanUDN+"::"+upnp.ServiceWANCommon1)},
		{"other uuid", "uuid:00000000-0000-0000-0000-000000000000", nil},
	}
	d := embeddedDevice()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.answers(tt.st); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("answers(%q) = %v; want %v", tt.st, got, tt.want)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		have, asked string
		want        bool
	}{
		{upnp.DeviceIGD2, upnp.DeviceIGD2, true},
		{upnp.DeviceIGD2, upnp.DeviceIGD1, true},
		{upnp.DeviceIGD1, upnp.DeviceIGD2, false},
		{"urn:example-com:service:Thing", "urn:example-com:service:Thing", true},
		{"urn:example-com:service:Thing", "urn:example-com:service:Thing:1", false},
		{"urn:a:service:X:3", "urn:a:service:X:-1", false},
		{"urn:a:service:X:3", "urn:a:service:X:+1", false},
		{"urn:a:service:X:3", "urn:a:service:X:", false},
		{"urn:a:service:X:3", "urn:a:service:Y:1", false},
		{"notaurn:X:3", "notaurn:X:1", false},
	}
	for _, tt := range tests {
		if got := covers(tt.have, tt.asked); got != tt.want {
			t.Errorf("covers(%q, %q) = %v; want %v", tt.have, tt.asked, got, tt.want)
		}
	}
}

// TestAppendResponse checks search responses byte for byte against the
// format of UDA 1.1 §1.3.3, with the header order of upnp.SearchResponse,
// and reads them back.
func TestAppendResponse(t *testing.T) {
	tests := []struct {
		name   string
		dev    func(*Device)
		target target
		id     ids
		want   string
	}{
		{
			name:   "IGD:1 asked of an IGD:2",
			target: target{upnp.DeviceIGD1, testUDN + "::" + upnp.DeviceIGD1},
			id:     ids{boot: 7, config: 3},
			want: "HTTP/1.1 200 OK\r\n" +
				"CACHE-CONTROL: max-age=1800\r\n" +
				"EXT:\r\n" +
				"LOCATION: http://198.51.100.1:5000/rootDesc.xml\r\n" +
				"SERVER: Linux/6.1 UPnP/1.1 portleased/0.1\r\n" +
				"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
				"USN: uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
				"BOOTID.UPNP.ORG: 7\r\n" +
				"CONFIGID.UPNP.ORG: 3\r\n" +
				"\r\n",
		},
		{
			name:   "uuid with search port and short max-age",
			dev:    func(d *Device) { d.SearchPort = 49200; d.MaxAge = 120 * time.Second },
			target: target{testUDN, testUDN},
			id:     ids{boot: 8, config: 0},
			want: "HTTP/1.1 200 OK\r\n" +
				"CACHE-CONTROL: max-age=120\r\n" +
				"EXT:\r\n" +
				"LOCATION: http://198.51.100.1:5000/rootDesc.xml\r\n" +
				"SERVER: Linux/6.1 UPnP/1.1 portleased/0.1\r\n" +
				"ST: uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab\r\n" +
				"USN: uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab\r\n" +
				"BOOTID.UPNP.ORG: 8\r\n" +
				"CONFIGID.UPNP.ORG: 0\r\n" +
				"SEARCHPORT.UPNP.ORG: 49200\r\n" +
				"\r\n",
		},
		{
			name:   "search port 1900 is not sent",
			dev:    func(d *Device) { d.SearchPort = 1900 },
			target: target{upnp.SearchRootDevice, testUDN + "::upnp:rootdevice"},
			id:     ids{boot: 7, config: 3},
			want: "HTTP/1.1 200 OK\r\n" +
				"CACHE-CONTROL: max-age=1800\r\n" +
				"EXT:\r\n" +
				"LOCATION: http://198.51.100.1:5000/rootDesc.xml\r\n" +
				"SERVER: Linux/6.1 UPnP/1.1 portleased/0.1\r\n" +
				"ST: upnp:rootdevice\r\n" +
				"USN: uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab::upnp:rootdevice\r\n" +
				"BOOTID.UPNP.ORG: 7\r\n" +
				"CONFIGID.UPNP.ORG: 3\r\n" +
				"\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testDevice()
			if tt.dev != nil {
				tt.dev(&d)
			}
			b, err := d.appendResponse([]byte("x"), tt.target, testLocation, tt.id)
			if err != nil {
				t.Fatalf("appendResponse: %v", err)
			}
			if got := string(b[1:]); got != tt.want {
				t.Errorf("appendResponse = %q; want %q", got, tt.want)
			}
			r, err := upnp.ParseSearchResponse(b[1:])
			if err != nil {
				t.Fatalf("ParseSearchResponse: %v", err)
			}
			want := upnp.SearchResponse{
				ST: tt.target.nt, USN: tt.target.usn, Location: testLocation, Server: testServer,
				MaxAge: int(d.MaxAge / time.Second), BootID: tt.id.boot, ConfigID: tt.id.config,
				SearchPort: d.searchPort(),
			}
			if r != want {
				t.Errorf("ParseSearchResponse = %+v; want %+v", r, want)
			}
		})
	}
}

// TestAppendNotify checks advertisements byte for byte against UDA 1.1
// §1.2.2 (alive), §1.2.3 (byebye) and §1.2.4 (update), and reads them back.
func TestAppendNotify(t *testing.T) {
	igd := target{upnp.DeviceIGD2, testUDN + "::" + upnp.DeviceIGD2}
	tests := []struct {
		name string
		nts  string
		next int
		want string
	}{
		{
			name: "alive",
			nts:  upnp.NTSAlive,
			next: -1,
			want: "NOTIFY * HTTP/1.1\r\n" +
				"HOST: 239.255.255.250:1900\r\n" +
				"CACHE-CONTROL: max-age=1800\r\n" +
				"LOCATION: http://198.51.100.1:5000/rootDesc.xml\r\n" +
				"SERVER: Linux/6.1 UPnP/1.1 portleased/0.1\r\n" +
				"NT: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
				"NTS: ssdp:alive\r\n" +
				"USN: uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab::urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
				"BOOTID.UPNP.ORG: 7\r\n" +
				"CONFIGID.UPNP.ORG: 3\r\n" +
				"\r\n",
		},
		{
			name: "byebye",
			nts:  upnp.NTSByeBye,
			next: -1,
			want: "NOTIFY * HTTP/1.1\r\n" +
				"HOST: 239.255.255.250:1900\r\n" +
				"NT: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
				"NTS: ssdp:byebye\r\n" +
				"USN: uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab::urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
				"BOOTID.UPNP.ORG: 7\r\n" +
				"CONFIGID.UPNP.ORG: 3\r\n" +
				"\r\n",
		},
		{
			name: "update",
			nts:  upnp.NTSUpdate,
			next: 8,
			want: "NOTIFY * HTTP/1.1\r\n" +
				"HOST: 239.255.255.250:1900\r\n" +
				"LOCATION: http://198.51.100.1:5000/rootDesc.xml\r\n" +
				"NT: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
				"NTS: ssdp:update\r\n" +
				"USN: uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab::urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
				"BOOTID.UPNP.ORG: 7\r\n" +
				"CONFIGID.UPNP.ORG: 3\r\n" +
				"NEXTBOOTID.UPNP.ORG: 8\r\n" +
				"\r\n",
		},
	}
	d := testDevice()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := d.appendNotify(nil, "", igd, tt.nts, testLocation, ids{boot: 7, config: 3}, tt.next)
			if err != nil {
				t.Fatalf("appendNotify: %v", err)
			}
			if string(b) != tt.want {
				t.Errorf("appendNotify = %q; want %q", b, tt.want)
			}
			n, err := upnp.ParseNotify(b)
			if err != nil {
				t.Fatalf("ParseNotify: %v", err)
			}
			if n.NT != igd.nt || n.USN != igd.usn || n.NTS != tt.nts || n.BootID != 7 || n.ConfigID != 3 || n.NextBootID != tt.next {
				t.Errorf("ParseNotify = %+v", n)
			}
		})
	}
}

func TestReplyWindow(t *testing.T) {
	tests := []struct {
		mx        int
		multicast bool
		want      time.Duration
	}{
		{0, false, 0},
		{3, false, 0}, // unicast: at once, whatever MX says
		{0, true, 0},
		{1, true, 800 * time.Millisecond},
		{2, true, 1600 * time.Millisecond},
		{5, true, 4 * time.Second},
		{120, true, 4 * time.Second}, // capped at MX 5
	}
	for _, tt := range tests {
		if got := replyWindow(tt.mx, tt.multicast); got != tt.want {
			t.Errorf("replyWindow(%d, %v) = %v; want %v", tt.mx, tt.multicast, got, tt.want)
		}
	}
}

func TestNextDelay(t *testing.T) {
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	tests := []struct {
		window time.Duration
		left   int
		rnd    func(int64) int64
		want   time.Duration
	}{
		{0, 3, highest, 0},
		{time.Second, 0, highest, 0},
		{time.Second, 1, lowest, 0},
		{time.Second, 1, highest, time.Second - 1},
		{time.Second, 4, highest, 250*time.Millisecond - 1},
		{-time.Second, 4, highest, 0},
		{3, 7, highest, 0},
	}
	for _, tt := range tests {
		if got := nextDelay(tt.window, tt.left, tt.rnd); got != tt.want {
			t.Errorf("nextDelay(%v, %d) = %v; want %v", tt.window, tt.left, got, tt.want)
		}
	}
	// However the draws fall, all answers of a search are sent within
	// its window.
	for _, rnd := range []func(int64) int64{lowest, highest} {
		window, spent := 4*time.Second, time.Duration(0)
		for left := len(allTargets); left > 0; left-- {
			d := nextDelay(window-spent, left, rnd)
			spent += d
		}
		if spent >= window {
			t.Errorf("answers spread over %v; want less than %v", spent, window)
		}
	}
}

func TestQueueBounds(t *testing.T) {
	q := newQueue(16) // 2 per source
	now := time.Unix(1000, 0)
	src := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}), 40000)
	}
	add := func(i int, due time.Duration) bool {
		return q.add(&pending{search: search{to: src(i)}, due: now.Add(due)})
	}
	for range 3 {
		add(0, time.Second)
	}
	if got := q.len(); got != 2 {
		t.Fatalf("one source queued %d searches; want 2", got)
	}
	for i := 1; i < 100; i++ {
		add(i, time.Duration(i)*time.Millisecond)
	}
	if got := q.len(); got != 16 {
		t.Fatalf("queue holds %d searches; want 16", got)
	}
	if add(200, 0) {
		t.Fatalf("add to a full queue succeeded")
	}
	if next, _ := q.next(); !next.Equal(now.Add(time.Millisecond)) {
		t.Errorf("next() = %v; want %v", next, now.Add(time.Millisecond))
	}
	// Due searches come out earliest first; done ones free their place.
	var last time.Time
	n := 0
	for p := q.due(now.Add(time.Hour)); p != nil; p = q.due(now.Add(time.Hour)) {
		if p.due.Before(last) {
			t.Errorf("due %v after %v", p.due, last)
		}
		last = p.due
		q.done(p)
		n++
	}
	if n != 16 || q.len() != 0 || len(q.bySource) != 0 {
		t.Errorf("drained %d, left %d (%d sources); want 16, 0, 0", n, q.len(), len(q.bySource))
	}
	if !add(0, 0) {
		t.Errorf("add to a drained queue failed")
	}
	// A requeued search keeps its place in its source's share.
	p := q.due(now)
	q.requeue(p)
	if got := q.len(); got != 1 {
		t.Errorf("after requeue len() = %d; want 1", got)
	}
}

// testLinkIndex is the interface index of the served link in tests
// without sockets.
const testLinkIndex = 3

func testConfig() Config {
	return Config{
		Device: testDevice(),
		Links: []Link{{
			Index:    testLinkIndex,
			Name:     "lan0",
			Addr:     netip.MustParseAddr("198.51.100.1"),
			Prefix:   netip.MustParsePrefix("198.51.100.0/24"),
			Location: testLocation,
		}},
	}
}

func TestNewServerErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"no UUID", func(c *Config) { c.Device.UUID = "" }},
		{"UUID with colon", func(c *Config) { c.Device.UUID = "a:b" }},
		{"no device type", func(c *Config) { c.Device.DeviceTypes = nil }},
		{"empty type", func(c *Config) { c.Device.ServiceTypes = []string{""} }},
		{"ssdp:all as type", func(c *Config) { c.Device.ServiceTypes = []string{"ssdp:all"} }},
		{"type with line break", func(c *Config) { c.Device.ServiceTypes = []string{"urn:a:service:b:1\r\nX: y"} }},
		{"no server", func(c *Config) { c.Device.Server = "" }},
		{"UUID of the root type", func(c *Config) { c.Device.UUIDs = map[string]string{upnp.DeviceIGD2: wanUUID} }},
		{"UUID of a type not served", func(c *Config) { c.Device.UUIDs = map[string]string{upnp.ServiceWANPPP1: wanUUID} }},
		{"empty embedded UUID", func(c *Config) { c.Device.UUIDs = map[string]string{upnp.DeviceWAN2: "uuid:"} }},
		{"negative BOOTID", func(c *Config) { c.Device.BootID = -1 }},
		{"huge CONFIGID", func(c *Config) { c.Device.ConfigID = 1 << 31 }},
		{"short max-age", func(c *Config) { c.Device.MaxAge = time.Millisecond }},
		{"search port", func(c *Config) { c.Device.SearchPort = 70000 }},
		{"no link", func(c *Config) { c.Links = nil }},
		{"link without interface", func(c *Config) { c.Links[0].Index, c.Links[0].Name = 0, "" }},
		{"link with a link-local IPv6 address", func(c *Config) { c.Links[0].Addr, c.Links[0].Prefix = netip.MustParseAddr("fe80::1"), netip.Prefix{} }},
		{"link with a mapped IPv4 address", func(c *Config) { c.Links[0].Addr = netip.MustParseAddr("::ffff:198.51.100.1") }},
		{"link without address", func(c *Config) { c.Links[0].Addr = netip.Addr{} }},
		{"link address outside prefix", func(c *Config) { c.Links[0].Prefix = netip.MustParsePrefix("203.0.113.0/24") }},
		{"no location", func(c *Config) { c.Links[0].Location = "" }},
		{"location with line break", func(c *Config) { c.Links[0].Location = "http://x/\r\n" }},
		{"negative interval", func(c *Config) { c.NotifyInterval = -time.Second }},
		{"negative MaxPending", func(c *Config) { c.MaxPending = -1 }},
		{"TTL", func(c *Config) { c.MulticastTTL = 256 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.change(&cfg)
			s, err := newServer(cfg)
			if err == nil {
				t.Fatalf("newServer = %v, nil; want an error", s)
			}
			if !strings.HasPrefix(err.Error(), "ssdpsrv: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	s, err := newServer(testConfig())
	if err != nil {
		t.Fatalf("newServer(testConfig()) = %v", err)
	}
	if s.interval != DefaultMaxAge/2 || s.maxPending != DefaultMaxPending {
		t.Errorf("defaults: interval %v, max pending %d", s.interval, s.maxPending)
	}
	// "uuid:" prefixes are dropped; the caller's map is not kept.
	cfg := testConfig()
	cfg.Device.UUID = testUDN
	cfg.Device.UUIDs = map[string]string{upnp.DeviceWAN2: wanUDN}
	s, err = newServer(cfg)
	if err != nil {
		t.Fatalf("newServer with uuid: prefixes = %v", err)
	}
	cfg.Device.UUIDs[upnp.DeviceWAN2] = "changed"
	if s.dev.UUID != testUUID || s.dev.UUIDs[upnp.DeviceWAN2] != wanUUID {
		t.Errorf("newServer kept UUID %q, UUIDs %v", s.dev.UUID, s.dev.UUIDs)
	}
}

// msearch builds an M-SEARCH datagram.
func msearch(t testing.TB, host, st string, mx int) []byte {
	t.Helper()
	b, err := upnp.SearchRequest{Host: host, ST: st, MX: mx, UserAgent: "test/1 UPnP/1.1 ssdpsrv-test/1"}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAccept(t *testing.T) {
	s, err := newServer(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	group := upnp.SSDPMulticastAddr().Addr()
	lanGW := netip.MustParseAddr("198.51.100.1")
	wanGW := netip.MustParseAddr("203.0.113.1")
	client := netip.MustParseAddrPort("198.51.100.10:40000")
	multi := msearch(t, "", upnp.DeviceIGD2, 2)
	uni := msearch(t, "198.51.100.1:1900", upnp.SearchAll, 0)
	dev := testDevice()
	notify, _ := dev.appendNotify(nil, "", allTargets[0], upnp.NTSAlive, testLocation, ids{}, -1)
	tests := []struct {
		name    string
		pkt     []byte
		ifindex int
		dst     netip.Addr
		src     netip.AddrPort
		want    search // link and via left out
		err     error
	}{
		{"multicast", multi, testLinkIndex, group, client,
			search{st: upnp.DeviceIGD2, to: client, from: lanGW, multicast: true, window: 1600 * time.Millisecond}, nil},
		{"unicast to the LAN address", uni, testLinkIndex, lanGW, client,
			search{st: upnp.SearchAll, to: client, from: lanGW}, nil},
		{"unicast to the WAN address from the LAN", uni, testLinkIndex, wanGW, client,
			search{st: upnp.SearchAll, to: client, from: wanGW}, nil},
		{"unicast with MX answered at once", msearch(t, "198.51.100.1:1900", upnp.SearchAll, 3), testLinkIndex, lanGW, client,
			search{st: upnp.SearchAll, to: client, from: lanGW}, nil},
		{"mapped source", multi, testLinkIndex, group, netip.MustParseAddrPort("[::ffff:198.51.100.10]:40000"),
			search{st: upnp.DeviceIGD2, to: client, from: lanGW, multicast: true, window: 1600 * time.Millisecond}, nil},
		{"WAN interface, unicast", uni, testLinkIndex + 1, wanGW, netip.MustParseAddrPort("203.0.113.2:40000"), search{}, errNotLink},
		{"WAN interface, to the LAN address", uni, testLinkIndex + 1, lanGW, netip.MustParseAddrPort("203.0.113.2:40000"), search{}, errNotLink},
		{"WAN interface, multicast", multi, testLinkIndex + 1, group, netip.MustParseAddrPort("203.0.113.2:40000"), search{}, errNotLink},
		{"no interface", multi, 0, group, client, search{}, errNotLink},
		{"source outside the prefix", multi, testLinkIndex, group, netip.MustParseAddrPort("203.0.113.2:40000"), search{}, errSource},
		{"source port 0", multi, testLinkIndex, group, netip.MustParseAddrPort("198.51.100.10:0"), search{}, errSource},
		{"multicast source", multi, testLinkIndex, group, netip.MustParseAddrPort("239.255.255.250:1900"), search{}, errSource},
		{"IPv6 source", multi, testLinkIndex, group, netip.MustParseAddrPort("[2001:db8:100::10]:40000"), search{}, errSource},
		{"other group", multi, testLinkIndex, netip.MustParseAddr("224.0.0.1"), client, search{}, errDestination},
		{"no destination", multi, testLinkIndex, netip.Addr{}, client, search{}, errDestination},
		{"multicast without MX", msearch(t, "198.51.100.1:1900", upnp.DeviceIGD2, 0), testLinkIndex, group, client, search{}, errNoMX},
		{"unknown target", msearch(t, "", "urn:schemas-upnp-org:device:MediaServer:1", 1), testLinkIndex, group, client, search{}, errNoTarget},
		{"NOTIFY", notify, testLinkIndex, group, client, search{}, errNotSearchReq},
		{"junk", []byte("\x00\x01hello"), testLinkIndex, lanGW, client, search{}, errNotSearchReq},
		{"empty", nil, testLinkIndex, lanGW, client, search{}, errNotSearchReq},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.accept(tt.pkt, tt.ifindex, tt.dst, tt.src)
			if !errors.Is(err, tt.err) {
				t.Fatalf("accept(%q) error = %v; want %v", tt.pkt, err, tt.err)
			}
			if err != nil {
				return
			}
			if got.link != s.links[0] {
				t.Errorf("accept(%q) link = %v; want the served one", tt.pkt, got.link)
			}
			got.link = nil
			if got != tt.want {
				t.Errorf("accept(%q) = %+v; want %+v", tt.pkt, got, tt.want)
			}
		})
	}
}

// searchSeeds returns the M-SEARCH goldens of the upnp package, without
// their "# source" header.
func searchSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "upnp", "testdata", "ssdp", "*.ssdp"))
	if err != nil {
		tb.Fatal(err)
	}
	var seeds [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		if _, msg, ok := bytes.Cut(b, []byte("---\n")); ok {
			seeds = append(seeds, msg)
		}
	}
	return seeds
}

// FuzzAccept feeds arbitrary datagrams to the request path: accept, then,
// for what it accepts, every answer built as Serve builds it. Nothing may
// panic, an accepted search came through the served link, and every answer
// encodes and reads back with the ST asked for.
func FuzzAccept(f *testing.F) {
	for _, seed := range searchSeeds(f) {
		f.Add(seed, testLinkIndex, uint32(0xeffffffa), uint32(0xc633640a), uint16(40000))
	}
	f.Add(msearch(f, "198.51.100.1:1900", upnp.SearchAll, 0), testLinkIndex, uint32(0xc6336401), uint32(0xc633640a), uint16(1900))
	f.Add(msearch(f, "", upnp.ServiceWANIP1, 5), testLinkIndex+1, uint32(0xeffffffa), uint32(0xcb007102), uint16(1900))
	cfg := testConfig()
	cfg.Device = embeddedDevice()
	s, err := newServer(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pkt []byte, ifindex int, dst, src uint32, port uint16) {
		a4 := func(v uint32) netip.Addr {
			return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		}
		sr, err := s.accept(pkt, ifindex, a4(dst), netip.AddrPortFrom(a4(src), port))
		if err != nil {
			return
		}
		if ifindex != testLinkIndex || sr.link != s.links[0] {
			t.Fatalf("accepted through interface %d", ifindex)
		}
		answers := s.dev.answers(sr.st)
		if len(answers) == 0 {
			t.Fatalf("accepted %q without an answer", sr.st)
		}
		for _, a := range answers {
			b, err := s.dev.appendResponse(nil, a, sr.link.Location, s.id)
			if err != nil {
				t.Fatalf("appendResponse(%+v): %v", a, err)
			}
			r, err := upnp.ParseSearchResponse(b)
			if err != nil {
				t.Fatalf("ParseSearchResponse(%q): %v", b, err)
			}
			if r.ST != a.nt || r.USN != a.usn {
				t.Fatalf("response %+v; want ST %q USN %q", r, a.nt, a.usn)
			}
		}
	})
}
