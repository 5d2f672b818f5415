package upnp

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// addGoldens seeds f with the golden files of dir whose names start with
// prefix, through add.
func addGoldens(f *testing.F, dir, prefix string, add func(b []byte)) {
	f.Helper()
	for _, name := range goldenFiles(f, dir, prefix) {
		add(golden(f, name))
	}
}

// checkParseError fails unless err is nil or wraps one of the sentinels a
// parser may return.
func checkParseError(t *testing.T, err error, sentinels ...error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	var f *Fault
	if errors.As(err, &f) {
		return
	}
	t.Fatalf("error %v (%T) wraps none of %v", err, err, sentinels)
}

func FuzzParseSearchResponse(f *testing.F) {
	addGoldens(f, "ssdp", "response-", func(b []byte) { f.Add(b) })
	f.Add([]byte("HTTP/1.1 200 OK\nST:a\nUSN:b\nLOCATION:c\n cont\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseSearchResponse(data)
		checkParseError(t, err, ErrNotSSDP, ErrMalformed, ErrTooLarge)
		if err != nil {
			return
		}
		enc, err := r.AppendBinary(nil)
		if err != nil {
			t.Fatalf("%+v.AppendBinary() = %v", r, err)
		}
		back, err := ParseSearchResponse(enc)
		if err != nil || back != r {
			t.Fatalf("ParseSearchResponse(%q) = %+v, %v; want %+v", enc, back, err, r)
		}
	})
}

func FuzzParseSearchRequest(f *testing.F) {
	addGoldens(f, "ssdp", "msearch-", func(b []byte) { f.Add(b) })
	f.Add([]byte("M-SEARCH * HTTP/1.1\r\nMAN: ssdp:discover\r\nST: x\r\nMX: 0\r\nTCPPORT.UPNP.ORG: 1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseSearchRequest(data)
		checkParseError(t, err, ErrNotSSDP, ErrMalformed, ErrTooLarge)
		if err != nil {
			return
		}
		want := r
		if want.Host == "" {
			want.Host = SSDPMulticastAddr().String()
		}
		enc, err := r.AppendBinary(nil)
		if want.MX == 0 && isMulticastHost(want.Host) {
			// A multicast search without MX is read, for the server to
			// discard (UDA 1.1 §1.3.2), but not written.
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%+v.AppendBinary() = %v; want ErrInvalid", r, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%+v.AppendBinary() = %v", r, err)
		}
		back, err := ParseSearchRequest(enc)
		if err != nil || back != want {
			t.Fatalf("ParseSearchRequest(%q) = %+v, %v; want %+v", enc, back, err, want)
		}
	})
}

func FuzzParseNotify(f *testing.F) {
	addGoldens(f, "ssdp", "notify-", func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseNotify(data)
		checkParseError(t, err, ErrNotSSDP, ErrMalformed, ErrTooLarge)
		if err != nil {
			return
		}
		want := n
		if want.Host == "" {
			want.Host = SSDPMulticastAddr().String()
		}
		enc, err := n.AppendBinary(nil)
		if err != nil {
			t.Fatalf("%+v.AppendBinary() = %v", n, err)
		}
		back, err := ParseNotify(enc)
		if err != nil || back != want {
			t.Fatalf("ParseNotify(%q) = %+v, %v; want %+v", enc, back, err, want)
		}
	})
}

func FuzzParseDescription(f *testing.F) {
	addGoldens(f, "desc", "desc-", func(b []byte) { f.Add(b) })
	f.Add([]byte(`<root configId=" 7 "><URLBase> u </URLBase><device><deviceList><device><UDN>&#xD;</UDN></device></deviceList></device></root>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDescription(bytes.NewReader(data))
		checkParseError(t, err, ErrMalformed, ErrTooLarge)
		if err != nil {
			return
		}
		_ = d.ConnectionServices(nil)
		enc, err := d.AppendXML(nil)
		if errors.Is(err, ErrInvalid) || len(enc) > MaxDescriptionSize {
			return
		}
		if err != nil {
			t.Fatalf("AppendXML = %v", err)
		}
		back, err := ParseDescription(bytes.NewReader(enc))
		if err != nil || !reflect.DeepEqual(back, d) {
			t.Fatalf("ParseDescription(%q) = %+v, %v; want %+v", enc, back, err, d)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	for _, name := range goldenFiles(f, "soap", "resp-") {
		f.Add(golden(f, name), "")
	}
	for _, name := range goldenFiles(f, "soap", "fault-") {
		f.Add(golden(f, name), "AddPortMapping")
	}
	f.Add(golden(f, "soap/resp-getexternalip-miniupnpd.xml"), "GetExternalIPAddress")
	f.Fuzz(func(t *testing.T, data []byte, action string) {
		r, err := ParseResponse(bytes.NewReader(data), action)
		checkParseError(t, err, ErrMalformed, ErrActionMismatch, ErrTooLarge)
		var fault *Fault
		if errors.As(err, &fault) {
			enc := AppendFaultEnvelope(nil, fault.Code, fault.Description)
			_, err := ParseResponse(bytes.NewReader(enc), "")
			var back *Fault
			if !errors.As(err, &back) || back.Code != fault.Code ||
				fault.Description != "" && back.Description != fault.Description {
				t.Fatalf("ParseResponse(%q) = %v; want %+v", enc, err, fault)
			}
			return
		}
		if err != nil {
			return
		}
		enc := r.AppendEnvelope(ServiceWANIP2, nil)
		if len(enc) > MaxResponseSize {
			return
		}
		back, err := ParseResponse(bytes.NewReader(enc), r.Action)
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("ParseResponse(%q) = %+v, %v; want %+v", enc, back, err, r)
		}
		// The decoders never panic, whatever the arguments.
		_, _ = GenericEntry(back)
		_, _ = SpecificEntry(back, 1, "TCP")
		_, _ = ExternalIPAddress(back)
		_, _ = ReservedPort(back)
		_, _ = StatusInfo(back)
	})
}

func FuzzParseActionRequest(f *testing.F) {
	f.Add(golden(f, "soap/req-addportmapping-miniupnpc.xml"), `"`+ServiceWANIP1+`#AddPortMapping"`)
	f.Add(golden(f, "soap/req-addportmapping-other-prefixes.xml"), ServiceWANIP2+"#AddPortMapping")
	f.Add(golden(f, "soap/req-getexternalip-no-namespace.xml"), ServiceWANIP1+"#GetExternalIPAddress")
	f.Add(AddAnyPortMapping(ServiceWANIP2, PortMapping{Protocol: "UDP", InternalPort: 9}).AppendEnvelope(nil), ServiceWANIP2+"#AddAnyPortMapping")
	f.Fuzz(func(t *testing.T, data []byte, soapAction string) {
		a, err := ParseActionRequest(bytes.NewReader(data), soapAction)
		checkParseError(t, err, ErrMalformed, ErrActionMismatch, ErrTooLarge)
		if err != nil {
			return
		}
		if _, err := PortMappingArgs(a); err != nil {
			var fault *Fault
			if !errors.As(err, &fault) {
				t.Fatalf("PortMappingArgs = %v; want a *Fault", err)
			}
		}
		enc := a.AppendEnvelope(nil)
		if len(enc) > MaxActionRequestSize {
			return
		}
		back, err := ParseActionRequest(bytes.NewReader(enc), a.SOAPAction())
		if err != nil || !reflect.DeepEqual(back, a) {
			t.Fatalf("ParseActionRequest(%q, %q) = %+v, %v; want %+v", enc, a.SOAPAction(), back, err, a)
		}
	})
}

func FuzzParsePortListing(f *testing.F) {
	addGoldens(f, "listing", "listing-", func(b []byte) { f.Add(string(b)) })
	f.Add(getListing(f, "resp-getlist-miniupnpd-cdata.xml"))
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParsePortListing(s)
		checkParseError(t, err, ErrMalformed, ErrTooLarge)
		if err != nil {
			return
		}
		enc := AppendPortListing(nil, ms)
		if len(enc) > MaxResponseSize {
			return
		}
		back, err := ParsePortListing(string(enc))
		if err != nil || !reflect.DeepEqual(back, ms) {
			t.Fatalf("ParsePortListing(%q) = %+v, %v; want %+v", enc, back, err, ms)
		}
	})
}

// TestFuzzSeedsParse makes sure every golden seed is accepted, so that the
// fuzzers start from valid messages.
func TestFuzzSeedsParse(t *testing.T) {
	for _, name := range goldenFiles(t, "ssdp", "") {
		t.Run(name, func(t *testing.T) {
			b := golden(t, name)
			var err error
			switch base := name[strings.LastIndexByte(name, '/')+1:]; {
			case strings.HasPrefix(base, "response-"):
				_, err = ParseSearchResponse(b)
			case strings.HasPrefix(base, "notify-"):
				_, err = ParseNotify(b)
			case strings.HasPrefix(base, "msearch-"):
				_, err = ParseSearchRequest(b)
			default:
				t.Fatalf("unknown kind of golden %s", name)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// FuzzPinholeArgs feeds arbitrary WANIPv6FirewallControl:1 requests to the
// device side's decoders: they refuse with a *Fault or decode values in
// range, and never panic.
func FuzzPinholeArgs(f *testing.F) {
	for _, name := range goldenFiles(f, "soap", "req-") {
		if strings.Contains(name, "pinhole") || strings.Contains(name, "firewall") {
			f.Add(golden(f, name), "")
		}
	}
	f.Add(AddPinhole(Pinhole{RemoteHost: netip.MustParseAddr("2001:db8::1"), Protocol: PinholeAnyProtocol}).AppendEnvelope(nil), ActionAddPinhole)
	f.Add(UpdatePinhole(7, 86400).AppendEnvelope(nil), ActionUpdatePinhole)
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		a, err := ParseActionRequest(bytes.NewReader(data), "")
		if err != nil {
			return
		}
		if name != "" {
			a.Name = name
		}
		isFault := func(err error) {
			t.Helper()
			var fault *Fault
			if err != nil && !errors.As(err, &fault) {
				t.Fatalf("%v is not a *Fault", err)
			}
		}
		p, err := PinholeArgs(a)
		isFault(err)
		if err == nil {
			if p.RemoteHost.IsValid() && (!p.RemoteHost.Is6() || p.RemoteHost.Is4In6() || p.RemoteHost.Zone() != "") {
				t.Fatalf("RemoteHost %v", p.RemoteHost)
			}
			if a.Name == ActionAddPinhole && (p.LeaseTime < 1 || p.LeaseTime > MaxPinholeLeaseTime) {
				t.Fatalf("LeaseTime %d", p.LeaseTime)
			}
		}
		_, err = UniqueIDArg(a)
		isFault(err)
		lt, err := NewLeaseTimeArg(a)
		isFault(err)
		if err == nil && (lt < 1 || lt > MaxPinholeLeaseTime) {
			t.Fatalf("NewLeaseTime %d", lt)
		}
	})
}
