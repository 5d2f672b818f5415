package upnp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// golden returns the content of a file under testdata. For an .ssdp file
// it drops the "# source" lines and the "---" line that open it: the rest
// is the datagram, byte for byte.
func golden(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	if strings.HasSuffix(name, ".ssdp") {
		_, msg, ok := bytes.Cut(b, []byte("---\n"))
		if !ok || !bytes.HasPrefix(b, []byte("# source: ")) {
			tb.Fatalf("%s: no '# source:' header ending in ---", name)
		}
		return msg
	}
	return b
}

// goldenFiles returns the names, relative to testdata, of the files of dir
// whose names start with prefix.
func goldenFiles(tb testing.TB, dir, prefix string) []string {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join("testdata", dir))
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, dir+"/"+e.Name())
		}
	}
	if len(names) == 0 {
		tb.Fatalf("no testdata/%s/%s*", dir, prefix)
	}
	return names
}

const labUUID = "uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab"

func TestParseSearchResponseGoldens(t *testing.T) {
	const igd1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	for _, tt := range []struct {
		file string
		want SearchResponse
	}{
		{"response-miniupnpd-2.3.1.ssdp", SearchResponse{
			ST: DeviceIGD2, USN: labUUID + "::" + DeviceIGD2, Location: "http://198.51.100.1:5000/rootDesc.xml",
			Server: "Debian/12 UPnP/1.1 MiniUPnPd/2.3.1", MaxAge: 120, BootID: 1732233600, ConfigID: 1337,
		}},
		{"response-pfsense-2.5.0.ssdp", SearchResponse{
			ST: igd1, USN: "uuid:bee7052b-49e8-3597-b545-55a1e38ac11::" + igd1, Location: "http://192.168.1.1:2189/rootDesc.xml",
			Server: "FreeBSD/12.2-STABLE UPnP/1.1 MiniUPnPd/2.2.1", MaxAge: 120, BootID: 1627958564, ConfigID: 1337,
		}},
		{"response-google-wifi.ssdp", SearchResponse{
			ST: DeviceIGD2, USN: "uuid:a9708184-a6c0-413a-bbac-11bcf7e30ece::" + DeviceIGD2, Location: "http://192.168.86.1:5000/rootDesc.xml",
			Server: "Linux/5.4.0-1034-gcp UPnP/1.1 MiniUPnPd/1.9", MaxAge: 120, BootID: 1, ConfigID: 1337,
		}},
		{"response-sagemcom-fast3890.ssdp", SearchResponse{
			ST: igd1, USN: "uuid:75802409-bccb-40e7-8e6c-fa095ecce13e::" + igd1,
			Location: "http://192.168.0.1:49153/69692b70/gatedesc0b.xml", MaxAge: 1800, BootID: -1, ConfigID: -1,
		}},
		{"response-huawei-libupnp.ssdp", SearchResponse{
			ST: igd1, USN: "uuid:00e0fc37-2525-2828-2500-0C31DCD93368::" + igd1, Location: "http://192.168.1.1:49652/49652gatedesc.xml",
			Server: "Linux/4.4.240, UPnP/1.0, Portable SDK for UPnP devices/1.12.1", MaxAge: 1800, BootID: -1, ConfigID: -1,
		}},
		{"response-linksys-nospace.ssdp", SearchResponse{
			ST: SearchRootDevice, USN: "uuid:upnp-InternetGatewayDevice-1_0-0090a2777777::upnp:rootdevice",
			Location: "http://192.168.5.1:5678/rootDesc.xml", Server: "NT/5.0 UPnP/1.0", MaxAge: 120, BootID: -1, ConfigID: -1,
		}},
		{"response-livebox-intel-sdk.ssdp", SearchResponse{
			ST: SearchRootDevice, USN: "uuid:75802409-bccb-40e7-8e6c-fa095ecce13e::upnp:rootdevice",
			Location: "http://192.168.0.1:49152/gatedesc.xml", Server: "Linux/2.4.17, UPnP/1.0, Intel SDK for UPnP devices /1.2",
			MaxAge: 1800, BootID: -1, ConfigID: -1,
		}},
		{"response-tplink-archer-c8.ssdp", SearchResponse{
			ST: igd1, USN: "uuid:060b7353-fca6-4070-85f4-1fbfb9add62c::" + igd1, Location: "http://192.168.0.1:1900/igd.xml",
			Server: "ipos/7.0 UPnP/1.0 Archer_C8/1.0", MaxAge: 100, BootID: -1, ConfigID: -1,
		}},
		{"response-broadcom-ext-space.ssdp", SearchResponse{
			ST: SearchRootDevice, USN: "uuid:c66f9a05-c453-ceac-a86c-865190fa5739::upnp:rootdevice",
			Location: "http://192.168.0.1:1990/WFADevice.xml", Server: "POSIX UPnP/1.0 UPnP Stack/6.37.14.62",
			MaxAge: 600, BootID: -1, ConfigID: -1,
		}},
		{"response-content-length.ssdp", SearchResponse{
			ST: "urn:schemas-upnp-org:device:MediaServer:1", USN: "uuid:1dcf238e-3a20-4035-a3b1-7f23dd19b944::urn:schemas-upnp-org:device:MediaServer:1",
			Location: "http://192.168.2.6:5001/description/fetch", Server: "Windows_7-amd64-6.1, UPnP/1.0, PMS/1.80.0-SNAPSHOT",
			MaxAge: 1200, BootID: -1, ConfigID: -1,
		}},
		{"response-lowercase.ssdp", SearchResponse{
			ST: igd1, USN: "uuid:060b7353-fca6-4070-85f4-1fbfb9add62c::" + igd1, Location: "http://192.168.0.1:1900/igd.xml",
			Server: "ipos/7.0 UPnP/1.0 Archer_C8/1.0", MaxAge: 100, BootID: 7, ConfigID: -1,
		}},
		{"response-http10.ssdp", SearchResponse{
			ST: igd1, USN: "uuid:75802409-bccb-40e7-8e6c-fa095ecce13e::" + igd1, Location: "http://192.168.0.1:49152/gatedesc.xml",
			Server: "Linux/2.4.17, UPnP/1.0, Intel SDK for UPnP devices /1.2", MaxAge: 1800, BootID: -1, ConfigID: -1,
		}},
		{"response-no-final-crlf.ssdp", SearchResponse{
			ST: igd1, USN: "uuid:6ec73f58-1dd2-11b2-9465-e6838914e4d9::" + igd1, Location: "http://192.168.1.1:1900/igd.xml",
			Server: "Mercury Router MR804 Router, UPnP/1.0", MaxAge: 100, BootID: -1, ConfigID: -1,
		}},
		{"response-no-ext-lf.ssdp", SearchResponse{
			ST: ServiceWANPPP1, USN: "uuid:00000000-0000-1000-8000-000000000001::" + ServiceWANPPP1, Location: "http://10.0.0.138:80/IGD.xml",
			Server: "Linux/2.6 UPnP/1.0 example-router/1.0", MaxAge: 1800, BootID: -1, ConfigID: -1,
		}},
		{"response-extra-spaces.ssdp", SearchResponse{
			ST: igd1, USN: "uuid:00000000-0000-1000-8000-000000000002::" + igd1, Location: "http://192.168.1.254:80/upnp/IGD.xml",
			Server: "Linux/2.6 UPnP/1.0 example-router/2.0", MaxAge: 1800, BootID: -1, ConfigID: 12,
		}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			b := golden(t, "ssdp/"+tt.file)
			got, err := ParseSearchResponse(b)
			if err != nil || got != tt.want {
				t.Fatalf("ParseSearchResponse(%q) = %+v, %v; want %+v", b, got, err, tt.want)
			}
			checkSearchResponseRoundTrip(t, got)
		})
	}
}

// checkSearchResponseRoundTrip encodes r, decodes it again and wants r.
func checkSearchResponseRoundTrip(t *testing.T, r SearchResponse) {
	t.Helper()
	enc, err := r.AppendBinary(nil)
	if err != nil {
		t.Fatalf("%+v.AppendBinary() = %v", r, err)
	}
	back, err := ParseSearchResponse(enc)
	if err != nil || back != r {
		t.Fatalf("ParseSearchResponse(%q) = %+v, %v; want %+v", enc, back, err, r)
	}
}

func TestSearchResponseAppendBinary(t *testing.T) {
	// The answer miniupnpd 2.3.1 gives in the lab, without the OPT and
	// 01-NLS headers of an abandoned UDA draft (UDA 1.1 §1.3.3 has neither).
	r := SearchResponse{
		ST: DeviceIGD2, USN: labUUID + "::" + DeviceIGD2, Location: "http://198.51.100.1:5000/rootDesc.xml",
		Server: "Linux/6.1 UPnP/1.1 portleased/0.1", MaxAge: 1800, BootID: 3, ConfigID: 1, SearchPort: 0,
	}
	want := "HTTP/1.1 200 OK\r\n" +
		"CACHE-CONTROL: max-age=1800\r\n" +
		"EXT:\r\n" +
		"LOCATION: http://198.51.100.1:5000/rootDesc.xml\r\n" +
		"SERVER: Linux/6.1 UPnP/1.1 portleased/0.1\r\n" +
		"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
		"USN: " + labUUID + "::urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n" +
		"BOOTID.UPNP.ORG: 3\r\n" +
		"CONFIGID.UPNP.ORG: 1\r\n" +
		"\r\n"
	got, err := r.AppendBinary([]byte("x"))
	if err != nil || string(got) != "x"+want {
		t.Fatalf("AppendBinary = %q, %v; want %q", got, err, "x"+want)
	}
	checkSearchResponseRoundTrip(t, r)
}

func TestParseNotifyGoldens(t *testing.T) {
	for _, tt := range []struct {
		file string
		want Notify
	}{
		{"notify-miniupnpd-alive.ssdp", Notify{
			Host: "239.255.255.250:1900", NT: ServiceWANIP2,
			USN: "uuid:3e4d2a7c-5c8b-4b7e-9f2e-0123456789ad::" + ServiceWANIP2, NTS: NTSAlive,
			Location: "http://198.51.100.1:5000/rootDesc.xml", Server: "Debian/12 UPnP/1.1 MiniUPnPd/2.3.1",
			MaxAge: 130, BootID: 1732233600, ConfigID: 1337, NextBootID: -1,
		}},
		{"notify-miniupnpd-byebye.ssdp", Notify{
			Host: "239.255.255.250:1900", NT: SearchRootDevice, USN: labUUID + "::upnp:rootdevice", NTS: NTSByeBye,
			MaxAge: -1, BootID: 1732233600, ConfigID: 1337, NextBootID: -1,
		}},
		{"notify-update-uda11.ssdp", Notify{
			Host: "239.255.255.250:1900", NT: labUUID, USN: labUUID, NTS: NTSUpdate,
			Location: "http://198.51.100.1:5000/rootDesc.xml", MaxAge: -1, BootID: 41, ConfigID: 2, NextBootID: 42, SearchPort: 49152,
		}},
		{"notify-libupnp-alive.ssdp", Notify{
			Host: "239.255.255.250:1900", NT: SearchRootDevice, NTS: NTSAlive,
			USN: "uuid:00e0fc37-2525-2828-2500-0C31DCD93368::upnp:rootdevice", Location: "http://192.168.1.1:49652/49652gatedesc.xml",
			Server: "Linux/4.4.240, UPnP/1.0, Portable SDK for UPnP devices/1.12.1", MaxAge: 1800, BootID: -1, ConfigID: -1, NextBootID: -1,
		}},
		{"notify-lowercase-lf.ssdp", Notify{
			Host: "239.255.255.250:1900", NT: "urn:schemas-upnp-org:device:InternetGatewayDevice:1", NTS: NTSAlive,
			USN:      "uuid:060b7353-fca6-4070-85f4-1fbfb9add62c::urn:schemas-upnp-org:device:InternetGatewayDevice:1",
			Location: "http://192.168.0.1:1900/igd.xml", MaxAge: 1800, BootID: -1, ConfigID: -1, NextBootID: -1,
		}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			b := golden(t, "ssdp/"+tt.file)
			got, err := ParseNotify(b)
			if err != nil || got != tt.want {
				t.Fatalf("ParseNotify(%q) = %+v, %v; want %+v", b, got, err, tt.want)
			}
			enc, err := got.AppendBinary(nil)
			if err != nil {
				t.Fatalf("%+v.AppendBinary() = %v", got, err)
			}
			if back, err := ParseNotify(enc); err != nil || back != got {
				t.Fatalf("ParseNotify(%q) = %+v, %v; want %+v", enc, back, err, got)
			}
		})
	}
}

func TestNotifyAppendBinary(t *testing.T) {
	n := Notify{
		NT: SearchRootDevice, NTS: NTSByeBye, USN: labUUID + "::upnp:rootdevice",
		MaxAge: -1, BootID: 7, ConfigID: 1, NextBootID: -1,
	}
	// UDA 1.1 §1.2.3: HOST, NT, NTS, USN, BOOTID.UPNP.ORG, CONFIGID.UPNP.ORG.
	want := "NOTIFY * HTTP/1.1\r\n" +
		"HOST: 239.255.255.250:1900\r\n" +
		"NT: upnp:rootdevice\r\n" +
		"NTS: ssdp:byebye\r\n" +
		"USN: " + labUUID + "::upnp:rootdevice\r\n" +
		"BOOTID.UPNP.ORG: 7\r\n" +
		"CONFIGID.UPNP.ORG: 1\r\n" +
		"\r\n"
	got, err := n.AppendBinary(nil)
	if err != nil || string(got) != want {
		t.Fatalf("AppendBinary = %q, %v; want %q", got, err, want)
	}
}

func TestParseSearchRequestGoldens(t *testing.T) {
	const igd1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	for _, tt := range []struct {
		file string
		want SearchRequest
	}{
		{"msearch-miniupnpc.ssdp", SearchRequest{Host: "239.255.255.250:1900", ST: igd1, MX: 2}},
		{"msearch-async-upnp-client.ssdp", SearchRequest{Host: "239.255.255.250:1900", ST: SearchAll, MX: 4}},
		{"msearch-uda11-unicast.ssdp", SearchRequest{Host: "198.51.100.1:1900", ST: SearchRootDevice,
			UserAgent: "Linux/6.1 UPnP/1.1 portlease/0.1"}},
		{"msearch-uda20-tcpport.ssdp", SearchRequest{Host: "239.255.255.250:1900", ST: ServiceWANIP2, MX: 3,
			UserAgent: "Linux/6.1 UPnP/2.0 portlease/0.1", TCPPort: 49200}},
		{"msearch-mx120-unquoted.ssdp", SearchRequest{Host: "239.255.255.250:1900", ST: igd1, MX: MaxMX}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			b := golden(t, "ssdp/"+tt.file)
			got, err := ParseSearchRequest(b)
			if err != nil || got != tt.want {
				t.Fatalf("ParseSearchRequest(%q) = %+v, %v; want %+v", b, got, err, tt.want)
			}
			enc, err := got.AppendBinary(nil)
			if err != nil {
				t.Fatalf("%+v.AppendBinary() = %v", got, err)
			}
			if back, err := ParseSearchRequest(enc); err != nil || back != got {
				t.Fatalf("ParseSearchRequest(%q) = %+v, %v; want %+v", enc, back, err, got)
			}
		})
	}
}

func TestSearchRequestAppendBinary(t *testing.T) {
	for _, tt := range []struct {
		name string
		r    SearchRequest
		want string
	}{
		{
			name: "multicast, empty Host (UDA 1.1 §1.3.2)",
			r:    SearchRequest{ST: DeviceIGD1, MX: 2, UserAgent: "Linux/6.1 UPnP/1.1 portlease/0.1"},
			want: "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\n" +
				"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nUSER-AGENT: Linux/6.1 UPnP/1.1 portlease/0.1\r\n\r\n",
		},
		{
			name: "unicast without MX, with TCPPORT (UDA 2.0 §1.3.2)",
			r:    SearchRequest{Host: "198.51.100.1:1900", ST: SearchAll, TCPPort: 49200},
			want: "M-SEARCH * HTTP/1.1\r\nHOST: 198.51.100.1:1900\r\nMAN: \"ssdp:discover\"\r\nST: ssdp:all\r\nTCPPORT.UPNP.ORG: 49200\r\n\r\n",
		},
		{
			name: "IPv6 link-local multicast",
			r:    SearchRequest{Host: "[FF02::C]:1900", ST: SearchRootDevice, MX: 1},
			want: "M-SEARCH * HTTP/1.1\r\nHOST: [FF02::C]:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: upnp:rootdevice\r\n\r\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.AppendBinary(nil)
			if err != nil || string(got) != tt.want {
				t.Fatalf("%+v.AppendBinary() = %q, %v; want %q", tt.r, got, err, tt.want)
			}
		})
	}
}

func TestSSDPAppendBinaryInvalid(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    interface{ AppendBinary([]byte) ([]byte, error) }
	}{
		{"search without ST", SearchRequest{MX: 2}},
		{"multicast search without MX", SearchRequest{ST: SearchAll}},
		{"search MX 6", SearchRequest{ST: SearchAll, MX: 6}},
		{"search ST with CRLF", SearchRequest{ST: "ssdp:all\r\nX: y", MX: 1}},
		{"search TCPPORT 70000", SearchRequest{ST: SearchAll, MX: 1, TCPPort: 70000}},
		{"response without LOCATION", SearchResponse{ST: "a", USN: "b", MaxAge: 1, BootID: -1, ConfigID: -1}},
		{"response SERVER with LF", SearchResponse{ST: "a", USN: "b", Location: "c", Server: "d\ne", MaxAge: 1}},
		{"response value with trailing space", SearchResponse{ST: "a ", USN: "b", Location: "c", MaxAge: 1}},
		{"response SEARCHPORT -1", SearchResponse{ST: "a", USN: "b", Location: "c", SearchPort: -1}},
		{"notify NTS unknown", Notify{NT: "a", NTS: "ssdp:gone", USN: "b", Location: "c"}},
		{"notify alive without LOCATION", Notify{NT: "a", NTS: NTSAlive, USN: "b", MaxAge: 1800}},
		{"notify without USN", Notify{NT: "a", NTS: NTSByeBye}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.m.AppendBinary([]byte("keep"))
			if !errors.Is(err, ErrInvalid) || string(b) != "keep" {
				t.Fatalf("%+v.AppendBinary(keep) = %q, %v; want keep, ErrInvalid", tt.m, b, err)
			}
		})
	}
}

func TestParseSSDPErrors(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nST: a\r\nUSN: b\r\nLOCATION: c\r\n\r\n"
	for _, tt := range []struct {
		name  string
		parse func([]byte) error
		in    string
		want  error
	}{
		{"empty", parseResponseErr, "", ErrNotSSDP},
		{"blank lines only", parseResponseErr, "\r\n\r\n", ErrNotSSDP},
		{"binary", parseResponseErr, "\x00\x01\x02", ErrNotSSDP},
		{"response to a NOTIFY parser", parseNotifyErr, resp, ErrNotSSDP},
		{"NOTIFY to a response parser", parseResponseErr, "NOTIFY * HTTP/1.1\r\nNT: a\r\nNTS: ssdp:byebye\r\nUSN: b\r\n\r\n", ErrNotSSDP},
		{"status 404", parseResponseErr, "HTTP/1.1 404 Not Found\r\nST: a\r\nUSN: b\r\nLOCATION: c\r\n\r\n", ErrNotSSDP},
		{"HTTP/2.0", parseResponseErr, "HTTP/2.0 200 OK\r\nST: a\r\nUSN: b\r\nLOCATION: c\r\n\r\n", ErrNotSSDP},
		{"lower-case method", parseSearchErr, "m-search * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: a\r\n\r\n", ErrNotSSDP},
		{"too large", parseResponseErr, resp + strings.Repeat("X-Pad: 0123456789\r\n", 500), ErrTooLarge},
		{"line without colon", parseResponseErr, "HTTP/1.1 200 OK\r\nST a\r\nUSN: b\r\nLOCATION: c\r\n\r\n", ErrMalformed},
		{"empty header name", parseResponseErr, "HTTP/1.1 200 OK\r\n: a\r\nUSN: b\r\nLOCATION: c\r\n\r\n", ErrMalformed},
		{"space inside header name", parseResponseErr, "HTTP/1.1 200 OK\r\nS T: a\r\nUSN: b\r\nLOCATION: c\r\n\r\n", ErrMalformed},
		{"control character in value", parseResponseErr, "HTTP/1.1 200 OK\r\nST: a\x00b\r\nUSN: b\r\nLOCATION: c\r\n\r\n", ErrMalformed},
		{"lone CR in value", parseResponseErr, "HTTP/1.1 200 OK\r\nST: a\rb\r\nUSN: b\r\nLOCATION: c\r\n\r\n", ErrMalformed},
		{"continuation first", parseResponseErr, "HTTP/1.1 200 OK\r\n ST: a\r\nUSN: b\r\nLOCATION: c\r\n\r\n", ErrMalformed},
		{"response without LOCATION", parseResponseErr, "HTTP/1.1 200 OK\r\nST: a\r\nUSN: b\r\n\r\n", ErrMalformed},
		{"response with empty ST", parseResponseErr, "HTTP/1.1 200 OK\r\nST:\r\nUSN: b\r\nLOCATION: c\r\n\r\n", ErrMalformed},
		{"LOCATION after the blank line", parseResponseErr, "HTTP/1.1 200 OK\r\nST: a\r\nUSN: b\r\n\r\nLOCATION: c\r\n", ErrMalformed},
		{"search without MAN", parseSearchErr, "M-SEARCH * HTTP/1.1\r\nST: a\r\nMX: 1\r\n\r\n", ErrMalformed},
		{"search with other MAN", parseSearchErr, "M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:alive\"\r\nST: a\r\n\r\n", ErrMalformed},
		{"search without ST", parseSearchErr, "M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n\r\n", ErrMalformed},
		{"search MX not a number", parseSearchErr, "M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: a\r\nMX: two\r\n\r\n", ErrMalformed},
		{"search MX negative", parseSearchErr, "M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: a\r\nMX: -1\r\n\r\n", ErrMalformed},
		{"search MX overflowing", parseSearchErr, "M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: a\r\nMX: 99999999999\r\n\r\n", ErrMalformed},
		{"search TCPPORT 0", parseSearchErr, "M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: a\r\nTCPPORT.UPNP.ORG: 0\r\n\r\n", ErrMalformed},
		{"notify unknown NTS", parseNotifyErr, "NOTIFY * HTTP/1.1\r\nNT: a\r\nNTS: upnp:propchange\r\nUSN: b\r\n\r\n", ErrMalformed},
		{"notify alive without LOCATION", parseNotifyErr, "NOTIFY * HTTP/1.1\r\nNT: a\r\nNTS: ssdp:alive\r\nUSN: b\r\n\r\n", ErrMalformed},
		{"notify without USN", parseNotifyErr, "NOTIFY * HTTP/1.1\r\nNT: a\r\nNTS: ssdp:byebye\r\n\r\n", ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.parse([]byte(tt.in)); !errors.Is(err, tt.want) {
				t.Fatalf("parse(%q) = %v; want %v", tt.in, err, tt.want)
			}
		})
	}
}

func parseResponseErr(b []byte) error { _, err := ParseSearchResponse(b); return err }
func parseNotifyErr(b []byte) error   { _, err := ParseNotify(b); return err }
func parseSearchErr(b []byte) error   { _, err := ParseSearchRequest(b); return err }

func TestParseSearchResponseLenient(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nST: a\r\nUSN: b\r\nLOCATION: c\r\n"
	for _, tt := range []struct {
		name, headers string
		want          SearchResponse
	}{
		{"first of two fields counts", "ST: second\r\nLocation: other\r\n",
			SearchResponse{ST: "a", USN: "b", Location: "c", MaxAge: -1, BootID: -1, ConfigID: -1}},
		{"quoted max-age after another directive", "CACHE-CONTROL: no-cache=\"Ext\", max-age=\"5000\"\r\n",
			SearchResponse{ST: "a", USN: "b", Location: "c", MaxAge: 5000, BootID: -1, ConfigID: -1}},
		{"unreadable numbers read as absent", "CACHE-CONTROL: max-age=soon\r\nBOOTID.UPNP.ORG: -3\r\nCONFIGID.UPNP.ORG: 4294967296\r\nSEARCHPORT.UPNP.ORG: 70000\r\n",
			SearchResponse{ST: "a", USN: "b", Location: "c", MaxAge: -1, BootID: -1, ConfigID: -1}},
		{"SEARCHPORT", "SEARCHPORT.UPNP.ORG: 49152\r\n",
			SearchResponse{ST: "a", USN: "b", Location: "c", MaxAge: -1, BootID: -1, ConfigID: -1, SearchPort: 49152}},
		{"folded value", "SERVER: OS/1\r\n\t UPnP/1.1\r\n  x/2\r\n",
			SearchResponse{ST: "a", USN: "b", Location: "c", Server: "OS/1 UPnP/1.1 x/2", MaxAge: -1, BootID: -1, ConfigID: -1}},
		{"leading blank line", "",
			SearchResponse{ST: "a", USN: "b", Location: "c", MaxAge: -1, BootID: -1, ConfigID: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := head + tt.headers + "\r\n"
			if tt.name == "leading blank line" {
				in = "\r\n" + in
			}
			got, err := ParseSearchResponse([]byte(in))
			if err != nil || got != tt.want {
				t.Fatalf("ParseSearchResponse(%q) = %+v, %v; want %+v", in, got, err, tt.want)
			}
		})
	}
}

func TestSplitUSN(t *testing.T) {
	for _, tt := range []struct{ usn, udn, typ string }{
		{labUUID + "::upnp:rootdevice", labUUID, "upnp:rootdevice"},
		{labUUID + "::" + ServiceWANIP2, labUUID, ServiceWANIP2},
		{labUUID, labUUID, ""},
	} {
		t.Run(tt.usn, func(t *testing.T) {
			if udn, typ := SplitUSN(tt.usn); udn != tt.udn || typ != tt.typ {
				t.Fatalf("SplitUSN(%q) = %q, %q; want %q, %q", tt.usn, udn, typ, tt.udn, tt.typ)
			}
		})
	}
}

func TestSSDPMulticastAddrs(t *testing.T) {
	if got := SSDPMulticastAddr().String(); got != "239.255.255.250:1900" {
		t.Errorf("SSDPMulticastAddr() = %s", got)
	}
	if got := SSDPMulticastAddr6().String(); got != "[ff02::c]:1900" {
		t.Errorf("SSDPMulticastAddr6() = %s", got)
	}
}
