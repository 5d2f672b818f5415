package pcp

import (
	"net/netip"
	"testing"
)

func BenchmarkParseRequest(b *testing.B) {
	pkt := unhex(b, hexMapRequest)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequestFilter(b *testing.B) {
	pkt := unhex(b, hexMapRequest+hexFilter)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendResponse(b *testing.B) {
	r := Response{Opcode: OpMap, Lifetime: 7200, Epoch: 3600, Map: MapData{
		Nonce: nonce, Protocol: ProtocolTCP, InternalPort: 80, ExternalPort: 80, ExternalAddr: netip.MustParseAddr("203.0.113.1")}}
	buf := make([]byte, 0, MaxMessageLen)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = r.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAndAnswer is a server's codec work per MAP: decode the
// request, encode the response.
func BenchmarkParseAndAnswer(b *testing.B) {
	pkt := unhex(b, hexMapRequest)
	buf := make([]byte, 0, MaxMessageLen)
	b.ReportAllocs()
	for b.Loop() {
		req, err := ParseRequest(pkt)
		if err != nil {
			b.Fatal(err)
		}
		resp := Response{Opcode: req.Opcode, Lifetime: req.Lifetime, Epoch: 3600, Map: req.Map, Options: req.Options}
		if buf, err = resp.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendErrorResponse(b *testing.B) {
	req := unhex(b, hexMapRequest+"7e 00 0000")
	buf := make([]byte, 0, MaxMessageLen)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendErrorResponse(buf[:0], req, UnsuppOption, LongErrorLifetime, 3600)
	}
}
