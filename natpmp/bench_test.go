package natpmp

import "testing"

func BenchmarkParseRequest(b *testing.B) {
	pkt := unhex(b, "00 02 0000 0050 0050 00001c20")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	pkt := unhex(b, "00 82 0000 00000e10 0050 0050 00001c20")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseResponse(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendMappingResponse(b *testing.B) {
	m := MappingResponse{Opcode: OpMapTCP, Epoch: 3600, InternalPort: 80, ExternalPort: 80, Lifetime: 7200}
	buf := make([]byte, 0, MappingResponseLen)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = m.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendErrorResponse(b *testing.B) {
	req := unhex(b, "00 02 0000 0050 0050 00001c20")
	buf := make([]byte, 0, MappingResponseLen)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendErrorResponse(buf[:0], OpMapTCP, OutOfResources, 3600, req)
	}
}
