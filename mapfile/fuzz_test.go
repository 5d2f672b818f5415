package mapfile

import (
	"bytes"
	"math"
	"net/netip"
	"testing"
	"time"
)

// FuzzRead checks that Read never panics, returns only entries that are
// good mappings and bad lines that name a line, and that what it returns
// survives Write and Read unchanged.
func FuzzRead(f *testing.F) {
	csvSeeds := []string{
		readmeCSV,
		"\xEF\xBB\xBF" + readmeCSV,
		"address;port;protocol;duration;comment\r\n;80;tcp;0;\"a;\"\"b\"\"\nc\"\r\n#x\r\n\r\n;70000;SCTP;-1;\r",
		"comment;port;protocol;duration;extra\n#1;1;UDP;4294967295;x\n",
		"port;protocol;duration;comment\n 22 ;TCP;60;ssh\n;;;\n",
		"address;port;protocol;duration;comment\n192.168.0;1;TCP;1;\n10.0.0.1/255.0.0.0;2;UDP;2;\nfe80::1;3;TCP;3;\n",
		"192.168.0.10;12345;UDP;60;Test 1\n",
		"address;protocol;duration;comment\n",
		"",
	}
	jsonSeeds := []string{
		readmeJSON,
		readmeJSONExtraKeys,
		`[{"port":1,"port":2,"protocol":"udp","duration":0,"comment":""},42,null,{"Port":3,"PORT":4},{"address":"10","port":5,"protocol":"TCP","duration":1,"comment":"x"}]`,
		"[\n{\"port\": \"80\"},\n{\"port\": 1e3}\n]",
		"[[null, 89, \"TCP\", 60, \"positional\"]]",
		"{}",
		"[",
		"",
	}
	for _, s := range csvSeeds {
		f.Add([]byte(s), false, byte(0))
	}
	f.Add([]byte("address,port,protocol,duration,comment\n,1,TCP,1,\"a,b\"\n"), false, byte(','))
	f.Add([]byte("address\tport\tprotocol\tduration\tcomment\n\t1\tTCP\t1\tx\n"), false, byte('\t'))
	// IPv6 pinholes and a range (an extension of upnp-daemon's format); the
	// first found by FuzzRead once the column took IPv6.
	f.Add([]byte("address,port,protocol,duration,comment\n2001:db8::10,4662,TCP,0,pinhole\n2001:db8::/64,4672,UDP,60,range\n"), false, byte(','))
	f.Add([]byte("Address;port;protoCol;durAtion;Comment\n1::;1;TCP;0;"), false, byte(0))
	f.Add([]byte("Address,port,protoCol,durAtion,Comment\n1::/1,1,UDP,0,"), false, byte(','))
	for _, s := range jsonSeeds {
		f.Add([]byte(s), true, byte(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool, delim byte) {
		o := Options{Name: "fuzz", Delimiter: rune(delim)}
		if isJSON {
			o.Format = JSON
		}
		entries, bad, err := Read(bytes.NewReader(data), o)
		if err != nil {
			if entries != nil || bad != nil {
				t.Fatalf("Read(%q) = %v, %v and error %v; want nothing with an error", data, entries, bad, err)
			}
			return
		}
		prev := 0
		for _, e := range entries {
			checkEntry(t, data, e)
			if e.Line < prev {
				t.Errorf("Read(%q): entry %v on line %d after one on line %d", data, e, e.Line, prev)
			}
			prev = e.Line
		}
		for _, b := range bad {
			if b.Line < 1 || b.File != "fuzz" || b.Msg == "" {
				t.Errorf("Read(%q): bad line %#v", data, b)
			}
		}
		var w bytes.Buffer
		if err := Write(&w, entries, o); err != nil {
			t.Fatalf("Write(Read(%q)): %v", data, err)
		}
		again, bad, err := Read(&w, o)
		if err != nil || len(bad) != 0 || !sameEntries(again, entries) {
			t.Fatalf("Read(Write(Read(%q))) = %v, %v, %v; want %v", data, again, bad, err, entries)
		}
	})
}

func checkEntry(t *testing.T, data []byte, e Entry) {
	t.Helper()
	if e.Port == 0 || (e.Protocol != TCP && e.Protocol != UDP) || e.Line < 1 {
		t.Errorf("Read(%q): entry %#v", data, e)
	}
	if e.Duration < 0 || e.Duration > math.MaxUint32*time.Second || e.Duration%time.Second != 0 {
		t.Errorf("Read(%q): duration of %#v", data, e)
	}
	switch {
	case e.Addr.IsValid() && e.Prefix.IsValid():
		t.Errorf("Read(%q): both address and range in %#v", data, e)
	case e.Addr.IsValid() && !e.Addr.Is4() && !globalIPv6(e.Addr):
		t.Errorf("Read(%q): address of %#v: neither IPv4 nor a global IPv6 address", data, e)
	case e.Prefix.IsValid() && (!e.Prefix.Addr().Is4() && !globalIPv6(e.Prefix.Addr()) ||
		e.Prefix.Bits() >= e.Prefix.Addr().BitLen() || e.Prefix != e.Prefix.Masked()):
		t.Errorf("Read(%q): range of %#v", data, e)
	}
}

// globalIPv6 reports whether a is what an address column may hold of IPv6
// (a pinhole's address): global unicast, not IPv4-mapped, without a zone.
func globalIPv6(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && a.Zone() == "" && a.IsGlobalUnicast()
}
