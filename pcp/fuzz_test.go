package pcp

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// addSeeds seeds f with the golden packets and the refused ones.
func addSeeds(f *testing.F) {
	f.Helper()
	for _, g := range requestGoldens() {
		f.Add(unhex(f, g.hex))
	}
	for _, g := range responseGoldens() {
		f.Add(unhex(f, g.hex))
	}
	for _, r := range refusals() {
		f.Add(unhex(f, r.hex))
	}
}

// withoutIgnored returns o as it decodes after encoding: the ignored
// options are not encoded.
func withoutIgnored(o Options) Options {
	o.Ignored = 0
	return o
}

// FuzzParseRequest checks that ParseRequest's refusals follow §8.3 (which
// are dropped, which get UNSUPP_VERSION), that their answer is a response
// a client parses, and that an accepted request encodes to at most its own
// length and decodes back to itself: unmarshal, marshal, unmarshal.
func FuzzParseRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRequest(data)
		if err != nil {
			checkRefusal(t, data, err)
			return
		}
		enc, err := r.AppendBinary(nil)
		if err != nil || len(enc) > len(data) {
			t.Fatalf("AppendBinary(%+v) = %x, %v; want at most %d bytes", r, enc, err, len(data))
		}
		r2, err := ParseRequest(enc)
		r.Options = withoutIgnored(r.Options)
		if err != nil || !reflect.DeepEqual(r2, r) {
			t.Fatalf("ParseRequest(%x) = %+v, %v; want %+v", enc, r2, err, r)
		}
	})
}

// checkRefusal checks ParseRequest's error for data against §8.3 and its
// answer against a client's decoder.
func checkRefusal(t *testing.T, data []byte, err error) {
	t.Helper()
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("ParseRequest(%x) = %v; want a *RequestError", data, err)
	}
	silent := len(data) < 2 || data[offOpcode]&ResponseBit != 0 || data[offVersion] == Version && len(data) < HeaderLen
	if re.Reply == silent {
		t.Fatalf("ParseRequest(%x) = %+v; want Reply %v", data, re, !silent)
	}
	if !re.Reply {
		return
	}
	if (re.Code == UnsuppVersion) != (data[offVersion] != Version) {
		t.Fatalf("ParseRequest(%x) = %+v; want UNSUPP_VERSION exactly for a version other than 2", data, re)
	}
	out := AppendErrorResponse(nil, data, re.Code, re.Code.ErrorLifetime(), 3600)
	if len(out) < HeaderLen || len(out) > MaxMessageLen || len(out)%4 != 0 {
		t.Fatalf("AppendErrorResponse(%x) = %x; want 24 to 1100 bytes, a multiple of 4", data, out)
	}
	if _, known := dataLen(re.Op); !known {
		return
	}
	var resp Response
	if err := resp.UnmarshalBinary(out); err != nil || resp.Result != re.Code || resp.Opcode != re.Op {
		t.Fatalf("UnmarshalBinary(AppendErrorResponse(%x)) = %+v, %v; want %v for %v", data, resp, err, re.Code, re.Op)
	}
}

// FuzzResponse checks unmarshal, marshal, unmarshal on Response.
func FuzzResponse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Response
		if err := r.UnmarshalBinary(data); err != nil {
			if !reflect.DeepEqual(r, Response{}) {
				t.Fatalf("UnmarshalBinary(%x) = %v, changed the Response to %+v", data, err, r)
			}
			return
		}
		enc, err := r.AppendBinary(nil)
		if err != nil {
			t.Fatalf("AppendBinary(%+v) = %v", r, err)
		}
		var r2 Response
		r.Options = withoutIgnored(r.Options)
		if err := r2.UnmarshalBinary(enc); err != nil || !reflect.DeepEqual(r2, r) {
			t.Fatalf("UnmarshalBinary(%x) = %+v, %v; want %+v", enc, r2, err, r)
		}
		enc2, err := r2.AppendBinary(nil)
		if err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("AppendBinary(%+v) = %x, %v; want %x", r2, enc2, err, enc)
		}
	})
}

// FuzzAppendErrorResponse checks that the answer to any packet is the same
// built in place, keeps the request's bytes after the header, and follows
// §7's length rules.
func FuzzAppendErrorResponse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		out := AppendErrorResponse(nil, data, MalformedRequest, LongErrorLifetime, 3600)
		want := max(HeaderLen, min(len(data), MaxMessageLen)&^3)
		if len(data) < HeaderLen {
			want = HeaderLen
		}
		if len(out) != want {
			t.Fatalf("AppendErrorResponse(%d bytes) = %d bytes; want %d", len(data), len(out), want)
		}
		if len(out) > HeaderLen && !bytes.Equal(out[HeaderLen:], data[HeaderLen:len(out)]) {
			t.Fatalf("AppendErrorResponse(%x) = %x; want the request after the header", data, out)
		}
		buf := bytes.Clone(data)
		if in := AppendErrorResponse(buf[:0], buf, MalformedRequest, LongErrorLifetime, 3600); !bytes.Equal(in, out) {
			t.Fatalf("in place (%x) = %x; want %x", data, in, out)
		}
	})
}
