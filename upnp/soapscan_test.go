package upnp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// bodies64KiB returns control requests of about MaxActionRequestSize bytes
// in the shapes that cost a token-by-token parser most: one long value,
// many arguments, an argument holding empty elements, elements with
// attributes, deep nesting, entities, and a Latin-1 body.
func bodies64KiB() map[string][]byte {
	head := `<?xml version="1.0"?>` + "\r\n" + `<s:Envelope xmlns:s="` + soapEnvNS + `"><s:Body><u:AddPortMapping xmlns:u="` + ServiceWANIP1 + `">`
	tail := `</u:AddPortMapping></s:Body></s:Envelope>`
	fill := func(unit string, wrap func(string) string) []byte {
		n := (MaxActionRequestSize - len(head) - len(tail) - len(wrap(""))) / len(unit)
		return []byte(head + wrap(strings.Repeat(unit, n)) + tail)
	}
	arg := func(s string) string { return "<NewPortMappingDescription>" + s + "</NewPortMappingDescription>" }
	nest := func(s string) string {
		return arg(strings.Repeat("<d>", maxXMLDepth-4) + s + strings.Repeat("</d>", maxXMLDepth-4))
	}
	manyArgs := head
	for i := 0; i < maxActionArgs; i++ {
		manyArgs += "<NewArg>" + strings.Repeat("v", (MaxActionRequestSize-len(head)-len(tail))/maxActionArgs-17) + "</NewArg>"
	}
	latin1 := strings.Replace(strings.Replace(string(fill("\xe9", arg)), strings.Repeat("\xe9", 32), "", 1), `version="1.0"`, `version="1.0" encoding="ISO-8859-1"`, 1)
	return map[string][]byte{
		"one value":      fill("x", arg),
		"many arguments": []byte(manyArgs + tail),
		"empty elements": fill("<a/>", arg),
		"attributes":     fill(`<a b="1" c='2'/>`, arg),
		"nested":         fill("x", nest),
		"entities":       fill("&amp;", arg),
		"comments":       fill("<!---->x", arg),
		"latin-1":        []byte(latin1),
		"latin-1 refs":   []byte(strings.Replace(latin1, strings.Repeat("\xe9", 20), "&amp;\xe9&#xe9;\r\n\xe9", 1)),
	}
}

// allocated returns the bytes f allocates, the mean of runs calls.
func allocated(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	f() // warm up
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestParseActionRequestBodyAllocation: a 64 KiB body of any shape costs at
// most 192 KiB beyond itself (its values, twice their size when a Latin-1
// body is converted), so that a server that reads it into a buffer of its
// length stays within 256 KiB (issue 11; encoding/xml took up to 5.9 MB).
func TestParseActionRequestBodyAllocation(t *testing.T) {
	const bound = 192 << 10
	for name, body := range bodies64KiB() {
		if len(body) == 0 {
			continue
		}
		if len(body) > MaxActionRequestSize || len(body) < MaxActionRequestSize-1024 {
			t.Fatalf("%s: body of %d bytes, want about %d", name, len(body), MaxActionRequestSize)
		}
		if _, err := ParseActionRequestBody(body, ServiceWANIP1+"#AddPortMapping"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := allocated(10, func() { _, _ = ParseActionRequestBody(body, ServiceWANIP1+"#AddPortMapping") })
		t.Logf("%s: %d bytes allocated for %d", name, got, len(body))
		if got > bound {
			t.Errorf("%s: ParseActionRequestBody of %d bytes allocates %d bytes, want at most %d", name, len(body), got, bound)
		}
	}
}

func BenchmarkParseActionRequest64KiB(b *testing.B) {
	for name, body := range bodies64KiB() {
		if len(body) == 0 {
			continue
		}
		b.Run(strings.ReplaceAll(name, " ", "-"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := ParseActionRequestBody(body, ServiceWANIP1+"#AddPortMapping"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestParseActionRequestBodyRefuses(t *testing.T) {
	const sa = ServiceWANIP1 + "#AddPortMapping"
	env := func(inner string) string {
		return `<s:Envelope xmlns:s="` + soapEnvNS + `"><s:Body><u:AddPortMapping xmlns:u="` + ServiceWANIP1 + `">` + inner + `</u:AddPortMapping></s:Body></s:Envelope>`
	}
	for name, body := range map[string]string{
		"document type":      `<!DOCTYPE s [<!ENTITY x "y">]>` + env(""),
		"unquoted attribute": `<s:Envelope a=b><s:Body/></s:Envelope>`,
		"too many arguments": env(strings.Repeat("<A>1</A>", maxActionArgs+1)),
		"control character":  env("<A>\x01</A>"),
		"bad reference":      env("<A>&#0;</A>"),
		"invalid UTF-8":      env("<A>\xff</A>"),
		"too deep":           env("<A>" + strings.Repeat("<b>", maxXMLDepth) + strings.Repeat("</b>", maxXMLDepth) + "</A>"),
		"prefix mismatch":    env("<a:A></b:A>"),
		"end without start":  env("</A>"),
		"comment with --":    env("<A><!-- a -- b --></A>"),
		"second root":        env("") + "<x/>",
		"text after root":    env("") + "x",
		"unknown encoding":   `<?xml version="1.0" encoding="UTF-16"?>` + env(""),
	} {
		if _, err := ParseActionRequestBody([]byte(body), sa); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseActionRequestBody = %v; want ErrMalformed", name, err)
		}
	}
}

func TestParseActionRequestBodyTolerates(t *testing.T) {
	const sa = ServiceWANIP1 + "#AddPortMapping"
	env := func(inner string) []byte {
		return []byte(`<s:Envelope xmlns:s="` + soapEnvNS + `"><s:Body><u:AddPortMapping xmlns:u="` + ServiceWANIP1 + `">` + inner + `</u:AddPortMapping></s:Body></s:Envelope>`)
	}
	for _, tt := range []struct {
		name string
		body []byte
		want []Arg
	}{
		{"bare ampersand", env("<A>AT&T &x; &#xZ;</A>"), []Arg{{"A", "AT&T &x; &#xZ;"}}},
		{"references", env("<A>&lt;&#65;&#x42;&#xD;&quot;</A>"), []Arg{{"A", "<AB\r\""}}},
		{"line ends", env("<A>a\r\nb\rc</A>"), []Arg{{"A", "a\nb\nc"}}},
		{"CDATA and comments", env("<A>a<!-- c --><![CDATA[<b>&amp;]]><?pi x?>d</A>"), []Arg{{"A", "a<b>&amp;d"}}},
		{"unclosed inside", env("<A><b>x</A><B>y</B>"), []Arg{{"A", "<b>x"}, {"B", "y"}}},
		{"empty", env("<A/><B></B>"), []Arg{{"A", ""}, {"B", ""}}},
		{"latin-1", append([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?>`), env("<A>caf\xe9</A>")...), []Arg{{"A", "café"}}},
	} {
		a, err := ParseActionRequestBody(tt.body, sa)
		if err != nil || !reflect.DeepEqual(a.Args, tt.want) {
			t.Errorf("%s: ParseActionRequestBody = %q, %v; want %q", tt.name, a.Args, err, tt.want)
		}
	}
}

// referenceActionRequest is ParseActionRequestBody through parseXML, the
// encoding/xml reader ParseActionRequest used before the scanner.
func referenceActionRequest(data []byte, soapAction string) (Action, error) {
	serviceType, name, ok := SplitSOAPAction(soapAction)
	if !ok {
		return Action{}, ErrActionMismatch
	}
	el, err := envelopeBody(data)
	if err != nil {
		return Action{}, err
	}
	if el.name.Local != name || el.name.Space != "" && el.name.Space != serviceType {
		return Action{}, ErrActionMismatch
	}
	args, err := readArgs(el)
	if err != nil {
		return Action{}, err
	}
	return Action{ServiceType: serviceType, Name: name, Args: args}, nil
}

// strictXML reports whether encoding/xml's strict mode reads data, UTF-8
// and without directives (a document type declaration, which SOAP forbids
// and the scanner refuses).
func strictXML(data []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
		if _, ok := tok.(xml.Directive); ok {
			return false
		}
	}
}

// FuzzSOAP checks the control request scanner against the encoding/xml
// reader it replaced: on every document that encoding/xml reads in strict
// mode, both give the same action or the same kind of error; on any other
// it never panics and fails only with ErrMalformed or ErrActionMismatch.
func FuzzSOAP(f *testing.F) {
	for _, name := range []string{"req-addportmapping-miniupnpc.xml", "req-addportmapping-other-prefixes.xml",
		"req-getexternalip-no-namespace.xml", "req-addpinhole-filtered-miniupnpc.xml"} {
		f.Add(golden(f, "soap/"+name), ServiceWANIP1+"#AddPortMapping")
	}
	f.Add([]byte(`<e:Envelope xmlns:e="x" xmlns="urn:d"><e:Body><AddPortMapping xmlns:a="y"><N><x a="&amp;"/>t</N></AddPortMapping></e:Body></e:Envelope>`), "urn:d#AddPortMapping")
	f.Add([]byte(`<?xml version="1.0" encoding="latin1"?><Envelope><Body><A><B>&#xe9;&bad;&</B></A></Body></Envelope>`), "x#A")
	for _, body := range bodies64KiB() {
		if len(body) > 0 {
			f.Add(body[:min(len(body), 4096)], ServiceWANIP1+"#AddPortMapping")
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, soapAction string) {
		got, err := ParseActionRequestBody(data, soapAction)
		checkParseError(t, err, ErrMalformed, ErrActionMismatch, ErrTooLarge)
		if !strictXML(data) {
			return
		}
		want, wantErr := referenceActionRequest(data, soapAction)
		if wantErr == nil && len(want.Args) > maxActionArgs {
			return // refused by the scanner's bound
		}
		switch {
		case (err == nil) != (wantErr == nil),
			errors.Is(err, ErrActionMismatch) != errors.Is(wantErr, ErrActionMismatch),
			err == nil && !reflect.DeepEqual(got, want):
			t.Fatalf("ParseActionRequestBody(%q, %q)\n= %+v, %v\nencoding/xml reads %+v, %v", data, soapAction, got, err, want, wantErr)
		}
	})
}
