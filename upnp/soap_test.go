package upnp

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestActionAppendEnvelope(t *testing.T) {
	a := AddPortMapping(ServiceWANIP1, PortMapping{
		ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080, InternalClient: "198.51.100.10",
		Enabled: true, Description: "libminiupnpc", LeaseDuration: 3600,
	})
	if got, want := a.SOAPAction(), `"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"`; got != want {
		t.Errorf("SOAPAction() = %s; want %s", got, want)
	}
	// What miniupnpc 2.2.4 sends for upnpc -a 198.51.100.10 8080 8080 TCP
	// 3600, without the source comment and the final CRLF.
	full := golden(t, "soap/req-addportmapping-miniupnpc.xml")
	want := append([]byte("<?xml version=\"1.0\"?>\r\n"), full[bytes.Index(full, []byte("<s:Envelope")):]...)
	want = bytes.TrimSuffix(want, []byte("\r\n"))
	if got := a.AppendEnvelope(nil); !bytes.Equal(got, want) {
		t.Fatalf("AppendEnvelope() =\n%s\nwant\n%s", got, want)
	}
}

func TestActionAppendEnvelopeEscapes(t *testing.T) {
	a := Action{ServiceType: `urn:x"y`, Name: "Set", Args: []Arg{{"NewDescription", "<a> & \"b\"\r\n"}, {"NewEmpty", ""}}}
	want := `<?xml version="1.0"?>` + "\r\n" +
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">` +
		`<s:Body><u:Set xmlns:u="urn:x&quot;y"><NewDescription>&lt;a&gt; &amp; "b"&#xD;` + "\n" + `</NewDescription>` +
		`<NewEmpty></NewEmpty></u:Set></s:Body></s:Envelope>`
	if got := string(a.AppendEnvelope(nil)); got != want {
		t.Fatalf("AppendEnvelope() =\n%s\nwant\n%s", got, want)
	}
	back, err := ParseActionRequest(strings.NewReader(want), a.SOAPAction())
	if err != nil || !reflect.DeepEqual(back, a) {
		t.Fatalf("ParseActionRequest = %+v, %v; want %+v", back, err, a)
	}
}

func TestParseActionRequestGoldens(t *testing.T) {
	for _, tt := range []struct {
		file, soapAction string
		want             Action
	}{
		{
			file: "req-addportmapping-miniupnpc.xml", soapAction: `"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"`,
			want: Action{ServiceType: ServiceWANIP1, Name: "AddPortMapping", Args: []Arg{
				{"NewRemoteHost", ""}, {"NewExternalPort", "8080"}, {"NewProtocol", "TCP"}, {"NewInternalPort", "8080"},
				{"NewInternalClient", "198.51.100.10"}, {"NewEnabled", "1"}, {"NewPortMappingDescription", "libminiupnpc"},
				{"NewLeaseDuration", "3600"},
			}},
		},
		{
			file: "req-addportmapping-other-prefixes.xml", soapAction: ServiceWANIP2 + "#AddPortMapping",
			want: Action{ServiceType: ServiceWANIP2, Name: "AddPortMapping", Args: []Arg{
				{"NewExternalPort", "5001"}, {"NewRemoteHost", ""}, {"NewProtocol", "udp"}, {"NewInternalPort", "5001"},
				{"NewInternalClient", "198.51.100.12"}, {"NewEnabled", "true"}, {"NewPortMappingDescription", "A&B <game>"},
				{"NewLeaseDuration", "0"}, {"NewVendorHint", "x"},
			}},
		},
		{
			file: "req-getexternalip-no-namespace.xml", soapAction: ` "` + ServiceWANIP1 + `#GetExternalIPAddress" `,
			want: Action{ServiceType: ServiceWANIP1, Name: "GetExternalIPAddress"},
		},
	} {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseActionRequest(bytes.NewReader(golden(t, "soap/"+tt.file)), tt.soapAction)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseActionRequest = %+v, %v; want %+v", got, err, tt.want)
			}
			back, err := ParseActionRequest(bytes.NewReader(got.AppendEnvelope(nil)), got.SOAPAction())
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("round trip = %+v, %v; want %+v", back, err, got)
			}
		})
	}
}

func TestParseActionRequestErrors(t *testing.T) {
	body := string(golden(t, "soap/req-addportmapping-miniupnpc.xml"))
	const sa = ServiceWANIP1 + "#AddPortMapping"
	for _, tt := range []struct {
		name, body, soapAction string
		want                   error
	}{
		{"no SOAPACTION", body, "", ErrActionMismatch},
		{"SOAPACTION without #", body, `"` + ServiceWANIP1 + `"`, ErrActionMismatch},
		{"SOAPACTION without action", body, ServiceWANIP1 + "#", ErrActionMismatch},
		{"other action", body, ServiceWANIP1 + "#DeletePortMapping", ErrActionMismatch},
		{"other service", body, ServiceWANIP2 + "#AddPortMapping", ErrActionMismatch},
		{"action in other case", body, ServiceWANIP1 + "#addportmapping", ErrActionMismatch},
		{"not XML", "AddPortMapping", sa, ErrMalformed},
		{"no Envelope", `<Body><u:AddPortMapping xmlns:u="` + ServiceWANIP1 + `"/></Body>`, sa, ErrMalformed},
		{"no Body", `<s:Envelope xmlns:s="` + soapEnvNS + `"><u:AddPortMapping/></s:Envelope>`, sa, ErrMalformed},
		{"empty Body", `<s:Envelope xmlns:s="` + soapEnvNS + `"><s:Body> </s:Body></s:Envelope>`, sa, ErrMalformed},
		{"truncated", body[:len(body)/2], sa, ErrMalformed},
		{"too large", strings.Replace(body, "libminiupnpc", strings.Repeat("x", MaxActionRequestSize), 1), sa, ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseActionRequest(strings.NewReader(tt.body), tt.soapAction); !errors.Is(err, tt.want) {
				t.Fatalf("ParseActionRequest(%.50q, %q) = %v; want %v", tt.body, tt.soapAction, err, tt.want)
			}
		})
	}
}

func TestParseResponseGoldens(t *testing.T) {
	for _, tt := range []struct {
		file, action string
		want         Response
	}{
		{"resp-addportmapping-miniupnpd.xml", "AddPortMapping", Response{Action: "AddPortMapping"}},
		{"resp-addanyportmapping-miniupnpd.xml", "AddAnyPortMapping",
			Response{Action: "AddAnyPortMapping", Args: []Arg{{"NewReservedPort", "55123"}}}},
		{"resp-getexternalip-miniupnpd.xml", "GetExternalIPAddress",
			Response{Action: "GetExternalIPAddress", Args: []Arg{{"NewExternalIPAddress", "203.0.113.1"}}}},
		{"resp-getexternalip-empty-miniupnpd.xml", "GetExternalIPAddress",
			Response{Action: "GetExternalIPAddress", Args: []Arg{{"NewExternalIPAddress", ""}}}},
		{"resp-getexternalip-pretty.xml", "GetExternalIPAddress",
			Response{Action: "GetExternalIPAddress", Args: []Arg{{"NewExternalIPAddress", "\n        123.123.123.123\n      "}}}},
		{"resp-getspecific-miniupnpd.xml", "GetSpecificPortMappingEntry", Response{Action: "GetSpecificPortMappingEntry", Args: []Arg{
			{"NewInternalPort", "8080"}, {"NewInternalClient", "198.51.100.10"}, {"NewEnabled", "1"},
			{"NewPortMappingDescription", "portlease web"}, {"NewLeaseDuration", "3597"},
		}}},
		{"resp-getgeneric-miniupnpd.xml", "GetGenericPortMappingEntry", Response{Action: "GetGenericPortMappingEntry", Args: []Arg{
			{"NewRemoteHost", ""}, {"NewExternalPort", "8080"}, {"NewProtocol", "TCP"}, {"NewInternalPort", "8080"},
			{"NewInternalClient", "198.51.100.10"}, {"NewEnabled", "1"}, {"NewPortMappingDescription", "libminiupnpc"},
			{"NewLeaseDuration", "0"},
		}}},
		{"resp-getstatusinfo-miniupnpd.xml", "GetStatusInfo", Response{Action: "GetStatusInfo", Args: []Arg{
			{"NewConnectionStatus", "Connected"}, {"NewLastConnectionError", "ERROR_NONE"}, {"NewUptime", "4218"},
		}}},
		{"resp-getstatusinfo-dslforum.xml", "GetStatusInfo", Response{Action: "GetStatusInfo", Args: []Arg{
			{"NewConnectionStatus", "Connected"}, {"NewLastConnectionError", "ERROR_NONE"}, {"NewUpTime", "9999"},
		}}},
		{"resp-other-prefixes.xml", "", Response{Action: "GetGenericPortMappingEntry", Args: []Arg{
			{"NewRemoteHost", " "}, {"NewExternalPort", " 5001 "}, {"NewProtocol", "udp"}, {"NewInternalPort", "5001"},
			{"NewInternalClient", "192.168.178.20"}, {"NewEnabled", "true"}, {"NewPortMappingDescription", "game"},
			{"NewLeaseDuration", "0"},
		}}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseResponse(bytes.NewReader(golden(t, "soap/"+tt.file)), tt.action)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseResponse = %+v, %v; want %+v", got, err, tt.want)
			}
			checkResponseRoundTrip(t, got)
		})
	}
}

// checkResponseRoundTrip writes r as a device would and reads it back.
func checkResponseRoundTrip(t *testing.T, r Response) {
	t.Helper()
	enc := r.AppendEnvelope(ServiceWANIP2, nil)
	back, err := ParseResponse(bytes.NewReader(enc), r.Action)
	if err != nil || !reflect.DeepEqual(back, r) {
		t.Fatalf("ParseResponse(%s) = %+v, %v; want %+v", enc, back, err, r)
	}
}

func TestResponseAppendEnvelope(t *testing.T) {
	r := Response{Action: "GetExternalIPAddress", Args: []Arg{{"NewExternalIPAddress", "203.0.113.1"}}}
	// miniupnpd's GetExternalIPAddress answer (upnpsoap.c), without the CRLF
	// after the envelope.
	want := `<?xml version="1.0"?>` + "\r\n" +
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">` +
		`<s:Body><u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2">` +
		`<NewExternalIPAddress>203.0.113.1</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>`
	if got := string(r.AppendEnvelope(ServiceWANIP2, nil)); got != want {
		t.Fatalf("AppendEnvelope() =\n%s\nwant\n%s", got, want)
	}
	// A value holding "<" goes into CDATA, as miniupnpd writes
	// NewPortListing; one holding "]]>" is escaped instead.
	for _, tt := range []struct{ value, want string }{
		{"<p:PortMappingList/>", "<NewPortListing><![CDATA[<p:PortMappingList/>]]></NewPortListing>"},
		{"a < b ]]> c", "<NewPortListing>a &lt; b ]]&gt; c</NewPortListing>"},
		{"a & b", "<NewPortListing>a &amp; b</NewPortListing>"},
	} {
		r := Response{Action: "GetListOfPortMappings", Args: []Arg{{"NewPortListing", tt.value}}}
		got := string(r.AppendEnvelope(ServiceWANIP2, nil))
		if !strings.Contains(got, tt.want) {
			t.Errorf("AppendEnvelope(%q) = %s; want it to hold %s", tt.value, got, tt.want)
		}
		checkResponseRoundTrip(t, r)
	}
}

func TestParseResponseFaults(t *testing.T) {
	for _, tt := range []struct {
		file string
		want Fault
		text string
	}{
		{"fault-718-miniupnpd.xml", Fault{718, "ConflictInMappingEntry"}, "upnp: error 718 ConflictInMappingEntry"},
		{"fault-402-miniupnpd.xml", Fault{402, "Invalid Args"}, "upnp: error 402 Invalid Args"},
		{"fault-714-miniupnpd.xml", Fault{714, "NoSuchEntryInArray"}, "upnp: error 714 NoSuchEntryInArray"},
		{"fault-713-miniupnpd.xml", Fault{713, "SpecifiedArrayIndexInvalid"}, "upnp: error 713 SpecifiedArrayIndexInvalid"},
		{"fault-606-miniupnpd.xml", Fault{606, "Action not authorized"}, "upnp: error 606 Action not authorized"},
		{"fault-725-faultCode-case.xml", Fault{725, "OnlyPermanentLeasesSupported"}, "upnp: error 725 OnlyPermanentLeasesSupported"},
		{"fault-718-other-prefixes.xml", Fault{718, "Conflict in mapping entry"}, "upnp: error 718 ConflictInMappingEntry: Conflict in mapping entry"},
		{"fault-402-no-detail.xml", Fault{402, "Invalid Args"}, "upnp: error 402 Invalid Args"},
		{"fault-plain-soap.xml", Fault{0, "Internal error"}, "upnp: SOAP fault: Internal error"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			r, err := ParseResponse(bytes.NewReader(golden(t, "soap/"+tt.file)), "AddPortMapping")
			var f *Fault
			if !errors.As(err, &f) || *f != tt.want || r.Action != "" || r.Args != nil {
				t.Fatalf("ParseResponse = %+v, %v; want *Fault %+v", r, err, tt.want)
			}
			if err.Error() != tt.text {
				t.Errorf("Error() = %q; want %q", err.Error(), tt.text)
			}
			if code, ok := FaultCode(err); !ok || int(code) != tt.want.Code || f.ErrorCode() != code {
				t.Errorf("FaultCode = %d, %v; want %d", code, ok, tt.want.Code)
			}
			// The device side writes the same fault back.
			enc := AppendFaultEnvelope(nil, f.Code, f.Description)
			_, err2 := ParseResponse(bytes.NewReader(enc), "")
			var f2 *Fault
			if !errors.As(err2, &f2) || *f2 != *f {
				t.Fatalf("ParseResponse(%s) = %v; want %+v", enc, err2, f)
			}
		})
	}
}

func TestAppendFaultEnvelope(t *testing.T) {
	// miniupnpd's SoapError() body, with the XML declaration UDA 1.1
	// §3.2.2 shows.
	want := `<?xml version="1.0"?>` + "\r\n" +
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">` +
		`<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>` +
		`<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode>` +
		`<errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`
	if got := string(AppendFaultEnvelope(nil, int(ConflictInMappingEntry), "")); got != want {
		t.Fatalf("AppendFaultEnvelope(718, \"\") =\n%s\nwant\n%s", got, want)
	}
	got := string(AppendFaultEnvelope(nil, 899, "a<b"))
	if !strings.Contains(got, "<errorCode>899</errorCode><errorDescription>a&lt;b</errorDescription>") {
		t.Fatalf("AppendFaultEnvelope(899, a<b) = %s", got)
	}
}

func TestParseResponseErrors(t *testing.T) {
	ok := string(golden(t, "soap/resp-getexternalip-miniupnpd.xml"))
	for _, tt := range []struct {
		name, body, action string
		want               error
	}{
		{"other action", ok, "AddPortMapping", ErrActionMismatch},
		{"request, not response", string(golden(t, "soap/req-addportmapping-miniupnpc.xml")), "", ErrActionMismatch},
		{"bare Response", `<Envelope><Body><Response/></Body></Envelope>`, "", ErrActionMismatch},
		{"HTML error page", "<html><body>404</body></html>", "GetExternalIPAddress", ErrMalformed},
		{"empty", "", "GetExternalIPAddress", ErrMalformed},
		{"truncated", ok[:len(ok)-40], "GetExternalIPAddress", ErrMalformed},
		{"too large", strings.Replace(ok, "203.0.113.1", strings.Repeat(" ", MaxResponseSize), 1), "GetExternalIPAddress", ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseResponse(strings.NewReader(tt.body), tt.action); !errors.Is(err, tt.want) {
				t.Fatalf("ParseResponse(%.50q, %q) = %v; want %v", tt.body, tt.action, err, tt.want)
			}
		})
	}
}

func TestResponseGet(t *testing.T) {
	r := Response{Args: []Arg{{"NewUpTime", "1"}, {"NewUptime", "2"}, {"NewX", ""}}}
	for _, tt := range []struct {
		name, want string
		ok         bool
	}{
		{"NewUptime", "2", true}, // exact first
		{"NEWUPTIME", "1", true}, // then any case
		{"NewX", "", true},
		{"NewY", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if v, ok := r.Get(tt.name); v != tt.want || ok != tt.ok {
				t.Fatalf("Get(%q) = %q, %v; want %q, %v", tt.name, v, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestFaultError(t *testing.T) {
	for _, tt := range []struct {
		f    Fault
		want string
	}{
		{Fault{718, ""}, "upnp: error 718 ConflictInMappingEntry"},
		{Fault{718, "conflictinmappingentry"}, "upnp: error 718 conflictinmappingentry"},
		{Fault{402, "Invalid Args (NewExternalPort: missing)"}, "upnp: error 402 Invalid Args (NewExternalPort: missing)"},
		{Fault{501, "nftables: no such table"}, "upnp: error 501 Action Failed: nftables: no such table"},
		{Fault{899, "Vendor"}, "upnp: error 899: Vendor"},
		{Fault{899, ""}, "upnp: error 899"},
		{Fault{0, ""}, "upnp: SOAP fault"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.f.Error(); got != tt.want {
				t.Fatalf("%+v.Error() = %q; want %q", tt.f, got, tt.want)
			}
		})
	}
	if _, ok := FaultCode(errors.New("x")); ok {
		t.Error("FaultCode(non-fault) ok")
	}
}

func TestErrorCodeString(t *testing.T) {
	for _, tt := range []struct {
		c    ErrorCode
		want string
	}{
		{InvalidAction, "Invalid Action"},
		{InvalidArgs, "Invalid Args"},
		{ActionFailed, "Action Failed"},
		{ArgumentValueInvalid, "Argument Value Invalid"},
		{ArgumentValueOutOfRange, "Argument Value Out of Range"},
		{OptionalActionNotImplemented, "Optional Action Not Implemented"},
		{OutOfMemory, "Out of Memory"},
		{HumanInterventionRequired, "Human Intervention Required"},
		{StringArgumentTooLong, "String Argument Too Long"},
		{ActionNotAuthorized, "Action not authorized"},
		{SpecifiedArrayIndexInvalid, "SpecifiedArrayIndexInvalid"},
		{NoSuchEntryInArray, "NoSuchEntryInArray"},
		{WildCardNotPermittedInSrcIP, "WildCardNotPermittedInSrcIP"},
		{WildCardNotPermittedInExtPort, "WildCardNotPermittedInExtPort"},
		{ConflictInMappingEntry, "ConflictInMappingEntry"},
		{SamePortValuesRequired, "SamePortValuesRequired"},
		{OnlyPermanentLeasesSupported, "OnlyPermanentLeasesSupported"},
		{RemoteHostOnlySupportsWildcard, "RemoteHostOnlySupportsWildcard"},
		{ExternalPortOnlySupportsWildcard, "ExternalPortOnlySupportsWildcard"},
		{NoPortMapsAvailable, "NoPortMapsAvailable"},
		{ConflictWithOtherMechanisms, "ConflictWithOtherMechanisms"},
		{PortMappingNotFound, "PortMappingNotFound"},
		{ReadOnly, "ReadOnly"},
		{WildCardNotPermittedInIntPort, "WildCardNotPermittedInIntPort"},
		{InconsistentParameters, "InconsistentParameters"},
		{ErrorCode(899), "error-code-899"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.c.String(); got != tt.want {
				t.Fatalf("ErrorCode(%d).String() = %q; want %q", int(tt.c), got, tt.want)
			}
		})
	}
}
