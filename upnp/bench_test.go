package upnp

import (
	"bytes"
	"testing"
)

func BenchmarkParseSearchResponse(b *testing.B) {
	msg := golden(b, "ssdp/response-miniupnpd-2.3.1.ssdp")
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := ParseSearchResponse(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEnvelopeAddPortMapping(b *testing.B) {
	a := AddPortMapping(ServiceWANIP2, PortMapping{ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080,
		InternalClient: "198.51.100.10", Enabled: true, Description: "portlease web", LeaseDuration: 3600})
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = a.AppendEnvelope(buf[:0])
	}
}

func BenchmarkParseResponseAddPortMapping(b *testing.B) {
	body := golden(b, "soap/resp-addportmapping-miniupnpd.xml")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseResponse(bytes.NewReader(body), "AddPortMapping"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseActionRequestAddPortMapping(b *testing.B) {
	body := golden(b, "soap/req-addportmapping-miniupnpc.xml")
	const sa = `"` + ServiceWANIP1 + `#AddPortMapping"`
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		a, err := ParseActionRequest(bytes.NewReader(body), sa)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := PortMappingArgs(a); err != nil {
			b.Fatal(err)
		}
	}
}
