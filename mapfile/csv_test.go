package mapfile

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// readmeCSV is the example of upnp-daemon's README ("Config File Format").
// The copy in this project's seeds lost the address of the first line; it is
// restored from the same example in upnp-daemon's src/lib.rs documentation,
// which reads 192.168.0.10.
const readmeCSV = `address;port;protocol;duration;comment
192.168.0.10;12345;UDP;60;Test 1
;12346;TCP;60;Test 2
`

// ent builds the Entry expected on line of a file; addr is written as in a
// file ("" for this host).
func ent(t *testing.T, line int, addr string, port uint16, proto Protocol, secs int64, comment string) Entry {
	t.Helper()
	a, p, err := ParseAddress(addr)
	if err != nil {
		t.Fatalf("ParseAddress(%q): %v", addr, err)
	}
	return Entry{Addr: a, Prefix: p, Port: port, Protocol: proto, Duration: time.Duration(secs) * time.Second, Comment: comment, Line: line}
}

func errorStrings(bad []*LineError) []string {
	s := make([]string, len(bad))
	for i, e := range bad {
		s[i] = e.Error()
	}
	return s
}

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		delim rune
		want  func(t *testing.T) []Entry
		bad   []string
	}{
		{
			name: "upnp-daemon README",
			in:   readmeCSV,
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "192.168.0.10", 12345, UDP, 60, "Test 1"),
					ent(t, 3, "", 12346, TCP, 60, "Test 2"),
				}
			},
		},
		{
			name: "bad ports",
			in: "address;port;protocol;duration;comment\n" +
				";80;TCP;60;ok\n" +
				";70000;TCP;60;too big\n" +
				";;TCP;60;empty\n" +
				";0;TCP;60;zero\n" +
				";8o;TCP;60;letter\n" +
				";-1;TCP;60;negative\n" +
				";+81;TCP;60;plus, as Rust reads it\n" +
				";0082;TCP;60;leading zeros\n" +
				"; 83 ;TCP;60;spaces\n",
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "", 80, TCP, 60, "ok"),
					ent(t, 8, "", 81, TCP, 60, "plus, as Rust reads it"),
					ent(t, 9, "", 82, TCP, 60, "leading zeros"),
					ent(t, 10, "", 83, TCP, 60, "spaces"),
				}
			},
			bad: []string{
				`ports.csv:3: port: "70000" is not a port (1-65535)`,
				`ports.csv:4: port: "" is empty`,
				`ports.csv:5: port: "0" is not a port (1-65535)`,
				`ports.csv:6: port: "8o" is not a port (1-65535)`,
				`ports.csv:7: port: "-1" is not a port (1-65535)`,
			},
		},
		{
			name: "protocols",
			in: "address;port;protocol;duration;comment\n" +
				";1;TCP;60;\n" +
				";2;SCTP;60;\n" +
				";3;udp;60;\n" +
				";4;Udp;60;\n" +
				";5;;60;\n" +
				";6;TCP/UDP;60;\n",
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "", 1, TCP, 60, ""),
					ent(t, 4, "", 3, UDP, 60, ""),
					ent(t, 5, "", 4, UDP, 60, ""),
				}
			},
			bad: []string{
				`ports.csv:3: protocol: "SCTP" is not TCP or UDP`,
				`ports.csv:6: protocol: "" is empty`,
				`ports.csv:7: protocol: "TCP/UDP" is not TCP or UDP`,
			},
		},
		{
			name: "durations",
			in: "address;port;protocol;duration;comment\n" +
				";1;TCP;0;permanent\n" +
				";2;TCP;4294967295;longest\n" +
				";3;TCP;4294967296;too long\n" +
				";4;TCP;1h;unit\n" +
				";5;TCP;-60;negative\n" +
				";6;TCP;;empty\n" +
				";7;TCP;60.5;fraction\n",
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "", 1, TCP, 0, "permanent"),
					ent(t, 3, "", 2, TCP, 4294967295, "longest"),
				}
			},
			bad: []string{
				`ports.csv:4: duration: "4294967296" is not a number of seconds (0-4294967295)`,
				`ports.csv:5: duration: "1h" is not a number of seconds (0-4294967295)`,
				`ports.csv:6: duration: "-60" is not a number of seconds (0-4294967295)`,
				`ports.csv:7: duration: "" is empty`,
				`ports.csv:8: duration: "60.5" is not a number of seconds (0-4294967295)`,
			},
		},
		{
			name: "addresses",
			in: "address;port;protocol;duration;comment\n" +
				"192.168.0.10;1;TCP;60;host\n" +
				"192.168.0.0/24;2;TCP;60;range\n" +
				"192.168.0;3;TCP;60;short range\n" +
				"192.168.0.10/24;4;TCP;60;host bits dropped\n" +
				"192.168.0.10/32;5;TCP;60;host as /32\n" +
				"192.168.0.300;6;TCP;60;bad octet\n" +
				"fe80::1;7;TCP;60;IPv6\n" +
				"router.lan;8;TCP;60;name\n" +
				"192.168/24;9;TCP;60;short with other length\n" +
				" 10.0.0.2 ;10;TCP;60;spaces\n",
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "192.168.0.10", 1, TCP, 60, "host"),
					ent(t, 3, "192.168.0.0/24", 2, TCP, 60, "range"),
					ent(t, 4, "192.168.0.0/24", 3, TCP, 60, "short range"),
					ent(t, 5, "192.168.0.0/24", 4, TCP, 60, "host bits dropped"),
					ent(t, 6, "192.168.0.10", 5, TCP, 60, "host as /32"),
					ent(t, 11, "10.0.0.2", 10, TCP, 60, "spaces"),
				}
			},
			bad: []string{
				`ports.csv:7: address: "192.168.0.300" is not an IPv4 address or range (e.g. 192.168.0.10, 192.168.0.0/24, 192.168.0)`,
				`ports.csv:8: address: "fe80::1" is not a global IPv6 address or range (e.g. 2001:db8::10, 2001:db8::/64)`,
				`ports.csv:9: address: "router.lan" is not an IPv4 address or range (e.g. 192.168.0.10, 192.168.0.0/24, 192.168.0)`,
				`ports.csv:10: address: "192.168/24" gives 2 octets, so its prefix length must be /16`,
			},
		},
		{
			name: "blank lines",
			in:   "\n\naddress;port;protocol;duration;comment\n\n;1;TCP;60;a\n   \n\t\n\n;2;UDP;60;b\n\n",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 5, "", 1, TCP, 60, "a"), ent(t, 9, "", 2, UDP, 60, "b")}
			},
		},
		{
			name: "CRLF",
			in:   "address;port;protocol;duration;comment\r\n;1;TCP;60;a\r\n\r\n;2;UDP;60;b\r\n",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 2, "", 1, TCP, 60, "a"), ent(t, 4, "", 2, UDP, 60, "b")}
			},
		},
		{
			name: "lone CR, as the csv crate reads it",
			in:   "address;port;protocol;duration;comment\r;1;TCP;60;a\r;2;UDP;60;b",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 2, "", 1, TCP, 60, "a"), ent(t, 3, "", 2, UDP, 60, "b")}
			},
		},
		{
			name: "byte order mark",
			in:   "\xEF\xBB\xBF" + readmeCSV,
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "192.168.0.10", 12345, UDP, 60, "Test 1"),
					ent(t, 3, "", 12346, TCP, 60, "Test 2"),
				}
			},
		},
		{
			name: "quoted fields",
			in: "\"address\";\"port\";protocol;duration;comment\n" +
				"\"192.168.0.10\";\"80\";TCP;60;\"web; and \"\"more\"\"\"\n" +
				";81;TCP;60;\"two\nlines\"\n" +
				";82;TCP;60;say \"hi\"\n" +
				";70000;TCP;60;after the multi-line one\n",
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "192.168.0.10", 80, TCP, 60, `web; and "more"`),
					ent(t, 3, "", 81, TCP, 60, "two\nlines"),
					ent(t, 5, "", 82, TCP, 60, `say "hi"`),
				}
			},
			bad: []string{`ports.csv:6: port: "70000" is not a port (1-65535)`},
		},
		{
			name: "reordered, extra and renamed columns",
			in: " Comment ;PROTOCOL;note;Port;duration;address\n" +
				"web;tcp;ignored;8080;3600;192.168.1.10\n",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 2, "192.168.1.10", 8080, TCP, 3600, "web")}
			},
		},
		{
			name: "no address column",
			in:   "port;protocol;duration;comment\n22;TCP;60;ssh\n",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 2, "", 22, TCP, 60, "ssh")}
			},
		},
		{
			name:  "comma delimiter",
			delim: ',',
			in:    "address,port,protocol,duration,comment\n192.168.0.10,12345,UDP,60,\"Test 1, with a comma\"\n,12346,TCP,60,Test;2\n",
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "192.168.0.10", 12345, UDP, 60, "Test 1, with a comma"),
					ent(t, 3, "", 12346, TCP, 60, "Test;2"),
				}
			},
		},
		{
			name:  "tab delimiter",
			delim: '\t',
			in:    "address\tport\tprotocol\tduration\tcomment\n\t\t\n\t53\tUDP\t60\tdns\n",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 3, "", 53, UDP, 60, "dns")}
			},
		},
		{
			name: "wrong number of fields",
			in: "address;port;protocol;duration;comment\n" +
				";1;TCP;60\n" +
				";2;TCP;60;a;b\n" +
				";3;TCP;60;\n",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 4, "", 3, TCP, 60, "")}
			},
			bad: []string{
				"ports.csv:2: has 4 fields, the header has 5",
				"ports.csv:3: has 6 fields, the header has 5",
			},
		},
		{
			name: "comment lines",
			in: "# mappings of the house\n" +
				"address;port;protocol;duration;comment\n" +
				"#192.168.0.10;1;TCP;60;old\n" +
				"  # indented\n" +
				";2;TCP;60;#2 is data here\n",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 5, "", 2, TCP, 60, "#2 is data here")}
			},
		},
		{
			name: "comment column first: # is data",
			in:   "comment;port;protocol;duration\n#1;1;TCP;60\n",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 2, "", 1, TCP, 60, "#1")}
			},
		},
		{
			name: "#address header: an unknown column, as upnp-daemon reads it",
			in:   "#address;port;protocol;duration;comment\n192.168.0.10;1;TCP;60;x\n",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 2, "", 1, TCP, 60, "x")}
			},
		},
		{
			name: "unterminated quote runs to the end, as in the csv crate",
			in:   "address;port;protocol;duration;comment\n;1;TCP;60;\"open\n;2;TCP;60;x\n",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 2, "", 1, TCP, 60, "open\n;2;TCP;60;x\n")}
			},
		},
		{
			name: "comment not UTF-8",
			in:   "address;port;protocol;duration;comment\n;1;TCP;60;caf\xe9\n",
			want: func(*testing.T) []Entry { return nil },
			bad:  []string{`ports.csv:2: comment: "caf\xe9" is not valid UTF-8`},
		},
		{
			name: "empty file",
			in:   "",
			want: func(*testing.T) []Entry { return nil },
		},
		{
			name: "only blank and comment lines",
			in:   "\n# nothing yet\n\n",
			want: func(*testing.T) []Entry { return nil },
		},
		{
			name: "header only",
			in:   "address;port;protocol;duration;comment\n",
			want: func(*testing.T) []Entry { return nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad, err := Read(strings.NewReader(tt.in), Options{Delimiter: tt.delim, Name: "ports.csv"})
			if err != nil {
				t.Fatalf("Read(%q) error: %v", tt.in, err)
			}
			if want := tt.want(t); !slices.Equal(got, want) {
				t.Errorf("Read(%q) =\n%v\nwant\n%v", tt.in, got, want)
			}
			if got := errorStrings(bad); !slices.Equal(got, tt.bad) {
				t.Errorf("Read(%q) bad lines =\n%q\nwant\n%q", tt.in, got, tt.bad)
			}
		})
	}
}

func TestReadCSVFatal(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		delim  rune
		want   string
		target error
	}{
		{
			name:   "missing header",
			in:     "192.168.0.10;12345;UDP;60;Test 1\n;12346;TCP;60;Test 2\n",
			want:   "ports.csv: missing header line: the first line must name the columns, e.g. address;port;protocol;duration;comment",
			target: ErrNoHeader,
		},
		{
			name:   "missing header, comma delimiter",
			in:     ",80,TCP,60,x\n",
			delim:  ',',
			want:   "ports.csv: missing header line: the first line must name the columns, e.g. address,port,protocol,duration,comment",
			target: ErrNoHeader,
		},
		{
			name:   "header with another delimiter",
			in:     "address,port,protocol,duration,comment\n,80,TCP,60,x\n",
			want:   "ports.csv: missing header line: the first line must name the columns, e.g. address;port;protocol;duration;comment (line 1 is one field: is ';' the delimiter?)",
			target: ErrNoHeader,
		},
		{
			name:   "header lacks port",
			in:     "address;protocol;duration;comment\n;TCP;60;x\n",
			want:   `ports.csv:1: header lacks the column "port"`,
			target: ErrHeader,
		},
		{
			name:   "header lacks comment, required by upnp-daemon",
			in:     "\n# ports\naddress;port;protocol;duration\n;80;TCP;60\n",
			want:   `ports.csv:3: header lacks the column "comment"`,
			target: ErrHeader,
		},
		{
			name:   "column named twice",
			in:     "address;port;protocol;duration;comment;port\n",
			want:   `ports.csv:1: header names the column "port" twice`,
			target: ErrHeader,
		},
		{
			name:   "column named twice but for case",
			in:     "address;Port;protocol;duration;comment;PORT\n",
			want:   `ports.csv:1: header names the column "port" twice: "Port" and "PORT"`,
			target: ErrHeader,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad, err := Read(strings.NewReader(tt.in), Options{Delimiter: tt.delim, Name: "ports.csv"})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Read(%q) error = %v; want %s", tt.in, err, tt.want)
			}
			if !errors.Is(err, tt.target) {
				t.Errorf("Read(%q) error %v is not %v", tt.in, err, tt.target)
			}
			var le *LineError
			if !errors.As(err, &le) {
				t.Errorf("Read(%q) error %T is not a *LineError", tt.in, err)
			}
			if got != nil || bad != nil {
				t.Errorf("Read(%q) = %v, %v with an error; want nothing", tt.in, got, bad)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		r    func() *strings.Reader
		want string
	}{
		{name: "quote delimiter", o: Options{Delimiter: '"'}, want: `mapfile: '"' cannot be a CSV delimiter`},
		{name: "newline delimiter", o: Options{Delimiter: '\n'}, want: `mapfile: '\n' cannot be a CSV delimiter`},
		{name: "unknown format", o: Options{Format: 7}, want: "mapfile: unknown format Format(7)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Read(strings.NewReader(readmeCSV), tt.o)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Read(%+v) error = %v; want %s", tt.o, err, tt.want)
			}
		})
	}
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		_, _, err := Read(iotest.ErrReader(boom), Options{Name: "-"})
		if !errors.Is(err, boom) || err.Error() != "mapfile: read <stdin>: boom" {
			t.Errorf("Read(failing reader) error = %v; want mapfile: read <stdin>: boom", err)
		}
	})
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in     string
		addr   string // "" for none
		prefix string // "" for none
		bad    bool
	}{
		{in: ""},
		{in: "   "},
		{in: "192.168.0.10", addr: "192.168.0.10"},
		{in: "0.0.0.0", addr: "0.0.0.0"},
		{in: "192.168.0.10/32", addr: "192.168.0.10"},
		{in: "192.168.0.10/255.255.255.255", addr: "192.168.0.10"},
		{in: "192.168.0.0/24", prefix: "192.168.0.0/24"},
		{in: "192.168.0.10/24", prefix: "192.168.0.0/24"},
		{in: "192.168.0.0/255.255.255.0", prefix: "192.168.0.0/24"},
		{in: "192.168.0.0/255.255.254.0", prefix: "192.168.0.0/23"},
		{in: "192.168.0", prefix: "192.168.0.0/24"},
		{in: "192.168.0/24", prefix: "192.168.0.0/24"},
		{in: "192.168", prefix: "192.168.0.0/16"},
		{in: "10", prefix: "10.0.0.0/8"},
		{in: "10/255.0.0.0", prefix: "10.0.0.0/8"},
		{in: "0.0.0.0/0", prefix: "0.0.0.0/0"},
		{in: "172.16.0.0/12", prefix: "172.16.0.0/12"},
		{in: "2001:db8::10", addr: "2001:db8::10"},
		{in: "2001:db8::10/64", prefix: "2001:db8::/64"},
		{in: "2001:db8::10/128", addr: "2001:db8::10"},
		{in: "192.168/24", bad: true},
		{in: "192.168.0/32", bad: true},
		{in: "256.0.0.1", bad: true},
		{in: "01.2.3.4", bad: true},
		{in: "1.2.3.4.5", bad: true},
		{in: "1.2.3.", bad: true},
		{in: ".1.2.3", bad: true},
		{in: "1..2.3", bad: true},
		{in: "1.2.3.4/", bad: true},
		{in: "1.2.3.4/33", bad: true},
		{in: "1.2.3.4/08", bad: true},
		{in: "1.2.3.4/-1", bad: true},
		{in: "1.2.3.4/24/24", bad: true},
		{in: "1.2.3.4/255.0.255.0", bad: true},
		{in: "1.2.3.4/255.255.255", bad: true},
		{in: "+1.2.3.4", bad: true},
		{in: "::1", bad: true},
		{in: "::ffff:1.2.3.4", bad: true},
		{in: "fe80::1", bad: true},
		{in: "2001:db8::1%eth0", bad: true},
		{in: "::/0", bad: true},
		{in: "1::/1", bad: true}, // its range is ::/1 (found by FuzzRead)
		{in: "localhost", bad: true},
		{in: "1.2.3.4:80", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			addr, prefix, err := ParseAddress(tt.in)
			if tt.bad {
				if err == nil {
					t.Errorf("ParseAddress(%q) = %v, %v; want an error", tt.in, addr, prefix)
				}
				return
			}
			var wantAddr netip.Addr
			var wantPrefix netip.Prefix
			if tt.addr != "" {
				wantAddr = netip.MustParseAddr(tt.addr)
			}
			if tt.prefix != "" {
				wantPrefix = netip.MustParsePrefix(tt.prefix)
			}
			if err != nil || addr != wantAddr || prefix != wantPrefix {
				t.Errorf("ParseAddress(%q) = %v, %v, %v; want %v, %v", tt.in, addr, prefix, err, wantAddr, wantPrefix)
			}
		})
	}
}
