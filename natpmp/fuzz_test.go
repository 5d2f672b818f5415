package natpmp

import (
	"bytes"
	"encoding"
	"errors"
	"testing"
)

// addSeeds seeds f with the golden packets and the refused packets of the
// table tests.
func addSeeds(f *testing.F) {
	f.Helper()
	for _, g := range requestGoldens() {
		f.Add(unhex(f, g.hex))
	}
	for _, g := range responseGoldens() {
		f.Add(unhex(f, g.hex))
	}
	for _, s := range []string{
		"", "00", "01 00", "02 01 0000 00001c20", "00 63 0000 0050 0050 00001c20", "00 7f",
		"00 00 00", "00 01 0000 c8d5", "00 02 0000 0050 0050 00001c20 00",
		"00 00 0001 00000e10", "00 82 0003 00000e10", "02 81 0001 00000000 00000e10",
		"00 e3 0005 00000e10 00001c20", "ff ff ffff ffffffff ffffffff",
	} {
		f.Add(unhex(f, s))
	}
}

// binaryMessage is a message type's pointer with both codec methods.
type binaryMessage[T any] interface {
	*T
	encoding.BinaryUnmarshaler
	encoding.BinaryAppender
}

// checkRoundTrip decodes data as a T and, when that succeeds, checks that
// the value encodes to n bytes and decodes back to itself: unmarshal,
// marshal, unmarshal. exact says whether data must have been n bytes long.
func checkRoundTrip[T comparable, P binaryMessage[T]](t *testing.T, data []byte, n int, exact bool) {
	t.Helper()
	var m1 T
	if err := P(&m1).UnmarshalBinary(data); err != nil {
		return
	}
	if exact && len(data) != n || len(data) < n {
		t.Fatalf("%T.UnmarshalBinary(%x) = nil; want a length error (want %d bytes)", m1, data, n)
	}
	enc, err := P(&m1).AppendBinary(nil)
	if err != nil || len(enc) != n {
		t.Fatalf("%T.AppendBinary(%+v) = %x, %v; want %d bytes", m1, m1, enc, err, n)
	}
	var m2 T
	if err := P(&m2).UnmarshalBinary(enc); err != nil || m2 != m1 {
		t.Fatalf("%T.UnmarshalBinary(%x) = %v, %+v; want %+v", m2, enc, err, m2, m1)
	}
	enc2, err := P(&m2).AppendBinary(nil)
	if err != nil || !bytes.Equal(enc2, enc) {
		t.Fatalf("%T.AppendBinary(%+v) = %x, %v; want %x", m2, m2, enc2, err, enc)
	}
}

func FuzzExternalAddressRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip[ExternalAddressRequest](t, data, ExternalAddressRequestLen, true)
	})
}

func FuzzExternalAddressResponse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip[ExternalAddressResponse](t, data, ExternalAddressResponseLen, true)
	})
}

func FuzzMappingRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip[MappingRequest](t, data, MappingRequestLen, true)
	})
}

func FuzzMappingResponse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip[MappingResponse](t, data, MappingResponseLen, true)
	})
}

func FuzzResponseHeader(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip[ResponseHeader](t, data, ResponseHeaderLen, false)
	})
}

// encodeRequest encodes a Request ParseRequest returned.
func encodeRequest(r Request) ([]byte, error) {
	if r.Opcode == OpExternalAddress {
		return ExternalAddressRequest{}.AppendBinary(nil)
	}
	return r.Mapping.AppendBinary(nil)
}

// FuzzParseRequest checks that ParseRequest accepts only requests that
// encode back to the same bytes (reserved field zeroed), and that what it
// refuses comes with the answer the package documentation promises.
func FuzzParseRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRequest(data)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("ParseRequest(%x) = %v; want a *RequestError", data, err)
			}
			silent := len(data) < HeaderLen || Opcode(data[offOpcode]).IsResponse()
			if re.Reply == silent {
				t.Fatalf("ParseRequest(%x) = %+v; want Reply %v", data, re, !silent)
			}
			if re.Reply && (re.Code != UnsupportedVersion) != (data[offVersion] == Version) {
				t.Fatalf("ParseRequest(%x) = %+v; want result code 1 exactly for a version other than 0", data, re)
			}
			return
		}
		if r.Opcode != OpExternalAddress && r.Opcode != r.Mapping.Opcode {
			t.Fatalf("ParseRequest(%x) = %+v; want Mapping.Opcode = Opcode", data, r)
		}
		enc, err := encodeRequest(r)
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		want := bytes.Clone(data)
		if r.Opcode.isMapping() {
			clear(want[offReqReserved : offReqReserved+reservedLen])
		}
		if !bytes.Equal(enc, want) {
			t.Fatalf("encode(ParseRequest(%x)) = %x; want %x", data, enc, want)
		}
		r2, err := ParseRequest(enc)
		if err != nil || r2 != r {
			t.Fatalf("ParseRequest(%x) = %+v, %v; want %+v", enc, r2, err, r)
		}
	})
}

// encodeResponse encodes a Response ParseResponse returned, at full size.
func encodeResponse(r Response) ([]byte, error) {
	switch {
	case r.Header.Opcode == OpExternalAddress:
		return r.ExternalAddress.AppendBinary(nil)
	case r.Header.Opcode.isMapping():
		return r.Mapping.AppendBinary(nil)
	}
	return r.Header.AppendBinary(nil)
}

// FuzzParseResponse checks unmarshal, marshal, unmarshal on ParseResponse
// and that the header agrees with the body.
func FuzzParseResponse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseResponse(data)
		if err != nil {
			if r != (Response{}) {
				t.Fatalf("ParseResponse(%x) = %+v, %v; want the zero Response with an error", data, r, err)
			}
			if len(data) >= HeaderLen && data[offVersion] == pcpVersion && !errors.Is(err, ErrPCPServer) {
				t.Fatalf("ParseResponse(%x) = %v; want %v", data, err, ErrPCPServer)
			}
			return
		}
		h := r.Header
		switch {
		case h.Opcode == OpExternalAddress:
			ea := r.ExternalAddress
			if ea.ResultCode != h.ResultCode || ea.Epoch != h.Epoch || r.Mapping != (MappingResponse{}) {
				t.Fatalf("ParseResponse(%x) = %+v; body disagrees with header", data, r)
			}
			if ea.Address.IsValid() != (h.ResultCode == Success) {
				t.Fatalf("ParseResponse(%x) = %+v; want an address exactly on success", data, r)
			}
		case h.Opcode.isMapping():
			m := r.Mapping
			if m.Opcode != h.Opcode || m.ResultCode != h.ResultCode || m.Epoch != h.Epoch ||
				r.ExternalAddress != (ExternalAddressResponse{}) {
				t.Fatalf("ParseResponse(%x) = %+v; body disagrees with header", data, r)
			}
		default:
			if h.ResultCode == Success || r.Mapping != (MappingResponse{}) || r.ExternalAddress != (ExternalAddressResponse{}) {
				t.Fatalf("ParseResponse(%x) = %+v; want a failure without body", data, r)
			}
		}
		if (r.Err() == nil) != (h.ResultCode == Success) {
			t.Fatalf("ParseResponse(%x).Err() = %v for result code %v", data, r.Err(), h.ResultCode)
		}
		enc, err := encodeResponse(r)
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		r2, err := ParseResponse(enc)
		if err != nil || r2 != r {
			t.Fatalf("ParseResponse(%x) = %+v, %v; want %+v", enc, r2, err, r)
		}
	})
}

// FuzzAppendErrorResponse checks that every answer the gateway gives to a
// refused packet is one a client parses, naming the refused opcode, the
// result code and the epoch, and that answering in the request's own buffer
// gives the same bytes.
func FuzzAppendErrorResponse(f *testing.F) {
	for _, s := range []string{"01 00", "00 63", "00 00 00", "00 01 0000 c8d5", "00 02", "00 7f 0102030405060708090a"} {
		f.Add(unhex(f, s), uint32(3600))
	}
	f.Fuzz(func(t *testing.T, data []byte, epoch uint32) {
		_, err := ParseRequest(data)
		var re *RequestError
		if !errors.As(err, &re) || !re.Reply {
			return
		}
		out := AppendErrorResponse(nil, re.Op, re.Code, epoch, data)
		resp, err := ParseResponse(out)
		want := ResponseHeader{Opcode: re.Op, ResultCode: re.Code, Epoch: epoch}
		if err != nil || resp.Header != want {
			t.Fatalf("ParseResponse(AppendErrorResponse(%x)) = %+v, %v; want header %+v", data, resp, err, want)
		}
		if re.Op.isMapping() && re.Code != UnsupportedVersion && len(data) >= offReqInternalPort+portLen &&
			resp.Mapping.InternalPort != uint16(data[offReqInternalPort])<<8|uint16(data[offReqInternalPort+1]) {
			t.Fatalf("AppendErrorResponse(%x) = %x; want the request's internal port", data, out)
		}
		buf := make([]byte, len(data), len(data)+MappingResponseLen)
		copy(buf, data)
		if in := AppendErrorResponse(buf[:0], re.Op, re.Code, epoch, buf); !bytes.Equal(in, out) {
			t.Fatalf("AppendErrorResponse in place (%x) = %x; want %x", data, in, out)
		}
	})
}
