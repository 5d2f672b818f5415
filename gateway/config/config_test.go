package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/portlease/portlease/gateway"
)

const file = "portleased.conf"

// base returns Default() with the interface and listen directives most tests
// use, at lines 1 and 2.
func base(iface string, iline int, listen ...Listen) *Config {
	c := Default()
	c.ExternalInterface = iface
	c.InterfaceLine = iline
	c.Listen = listen
	return c
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func rule(allow bool, elo, ehi uint16, pfx string, ilo, ihi uint16) gateway.Rule {
	return gateway.Rule{
		Allow:         allow,
		ExternalPorts: gateway.PortRange{Low: elo, High: ehi},
		Internal:      netip.MustParsePrefix(pfx),
		InternalPorts: gateway.PortRange{Low: ilo, High: ihi},
	}
}

func parseString(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse(file, strings.NewReader(src))
	if err != nil {
		t.Fatalf("Parse(%q) error:\n%v", src, err)
	}
	return c
}

func TestParseNatpmpd(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want *Config
	}{
		{
			// natpmpd.conf(5), EXAMPLES.
			name: "man page example",
			src:  "interface carp0\nlisten on 10.0.0.1\n",
			want: base("carp0", 1, Listen{Addr: addr("10.0.0.1"), Line: 2}),
		},
		{
			// The natpmpd.conf shipped with natpmpd's source.
			name: "natpmpd sample",
			src:  "interface sis0\nlisten on 192.0.2.254\n",
			want: base("sis0", 1, Listen{Addr: addr("192.0.2.254"), Line: 2}),
		},
		{
			// The set-up described in seed 003 (natpmpd's web page): sis0
			// outside, sis1 inside, one listen on per internal network.
			name: "seed 003 with interfaces",
			src:  "interface sis0\nlisten on sis1\nlisten on 192.168.2.1\n",
			want: base("sis0", 1,
				Listen{Interface: "sis1", Line: 2},
				Listen{Addr: addr("192.168.2.1"), Line: 3}),
		},
		{
			name: "comments blank lines and blanks",
			src: "# natpmpd.conf\n\n  interface\tem0   # the uplink\n" +
				"#listen on 10.9.9.9\n\t\nlisten on 10.0.0.1# no blank before the hash\n   \n",
			want: base("em0", 3, Listen{Addr: addr("10.0.0.1"), Line: 6}),
		},
		{
			name: "quoted words",
			src:  "interface \"em0\"\nlisten on '10.0.0.1'\n\"listen\" on vlan100\n",
			want: base("em0", 1,
				Listen{Addr: addr("10.0.0.1"), Line: 2},
				Listen{Interface: "vlan100", Line: 3}),
		},
		{
			name: "line continuation",
			src:  "interface \\\n  em0\nlisten \\\non \\\n10.0.0.1\nlisten on \"10.0.\\\n0.2\"\nlisten on 10.0.\\\n0.3\n",
			want: base("em0", 1,
				Listen{Addr: addr("10.0.0.1"), Line: 3},
				Listen{Addr: addr("10.0.0.2"), Line: 6},
				Listen{Addr: addr("10.0.0.3"), Line: 8}),
		},
		{
			// natpmpd's lexer joins lines before it skips a comment.
			name: "continued comment",
			src:  "# a comment \\\nlisten on 10.9.9.9\ninterface em0\nlisten on 10.0.0.1\n",
			want: base("em0", 3, Listen{Addr: addr("10.0.0.1"), Line: 4}),
		},
		{
			name: "last interface wins as in natpmpd",
			src:  "interface em0\ninterface em1\nlisten on 10.0.0.1\n",
			want: base("em1", 2, Listen{Addr: addr("10.0.0.1"), Line: 3}),
		},
		{
			name: "listen on star",
			src:  "interface em0\nlisten on *\n",
			want: base("em0", 1, Listen{Addr: netip.IPv4Unspecified(), Line: 2}),
		},
		{
			name: "ipv6 listen addresses",
			src:  "interface em0\nlisten on 2001:db8:100::1\nlisten on fe80::1%br-lan\n",
			want: base("em0", 1,
				Listen{Addr: addr("2001:db8:100::1"), Line: 2},
				Listen{Addr: addr("fe80::1%br-lan"), Line: 3}),
		},
		{
			name: "no final newline",
			src:  "interface em0\nlisten on eth1.100",
			want: base("em0", 1, Listen{Interface: "eth1.100", Line: 2}),
		},
		{
			name: "CRLF line endings",
			src:  "# windows\r\ninterface em0\r\nlisten on 10.0.0.1 # lan\r\nlisten on \\\r\n 10.0.0.2\r\n\r\n",
			want: base("em0", 2,
				Listen{Addr: addr("10.0.0.1"), Line: 3},
				Listen{Addr: addr("10.0.0.2"), Line: 4}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseString(t, tt.src)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) =\n%#v\nwant\n%#v", tt.src, got, tt.want)
			}
		})
	}
}

func TestParseExtensions(t *testing.T) {
	const head = "interface em0\nlisten on 10.0.0.1\n"
	tests := []struct {
		name string
		src  string // after head, from line 3
		edit func(c *Config)
	}{
		{
			name: "port range",
			src:  "port range 20000-29999\n",
			edit: func(c *Config) { c.PortRange = gateway.PortRange{Low: 20000, High: 29999} },
		},
		{
			name: "port range of one port",
			src:  "port range 4500\n",
			edit: func(c *Config) { c.PortRange = gateway.PortRange{Low: 4500, High: 4500} },
		},
		{
			name: "port range limits",
			src:  "port range 1-65535\n",
			edit: func(c *Config) { c.PortRange = gateway.PortRange{Low: 1, High: 65535} },
		},
		{
			name: "lifetime max",
			src:  "lifetime max 3600\n",
			edit: func(c *Config) { c.MaxLifetime = time.Hour },
		},
		{
			name: "lifetime max limits",
			src:  "lifetime max 4294967295\n",
			edit: func(c *Config) { c.MaxLifetime = 4294967295 * time.Second },
		},
		{
			name: "state file",
			src:  "state file /srv/portleased//leases\n",
			edit: func(c *Config) { c.StateFile, c.StateFileLine = "/srv/portleased/leases", 3 },
		},
		{
			name: "user",
			src:  "user _portleased\n",
			edit: func(c *Config) { c.User, c.UserLine = "_portleased", 3 },
		},
		{
			name: "state file none",
			src:  "state file none\n",
			edit: func(c *Config) { c.StateFile, c.StateFileLine = "", 3 },
		},
		{
			// miniupnpd.conf's sample rules.
			name: "miniupnpd rules",
			src: "allow 1024-65535 192.168.0.0/24 1024-65535\n" +
				"allow 1024-65535 192.168.1.0/24 1024-65535\n" +
				"allow 1024-65535 192.168.0.0/23 22\n" +
				"allow 12345 192.168.7.113/32 54321\n" +
				"deny 0-65535 0.0.0.0/0 0-65535\n",
			edit: func(c *Config) {
				c.Rules = []gateway.Rule{
					rule(true, 1024, 65535, "192.168.0.0/24", 1024, 65535),
					rule(true, 1024, 65535, "192.168.1.0/24", 1024, 65535),
					rule(true, 1024, 65535, "192.168.0.0/23", 22, 22),
					rule(true, 12345, 12345, "192.168.7.113/32", 54321, 54321),
					rule(false, 0, 65535, "0.0.0.0/0", 0, 65535),
				}
			},
		},
		{
			name: "dotted netmasks",
			src: "allow 1024-65535 192.168.1.0/255.255.255.0 1024-65535\n" +
				"deny 1-1023 10.0.0.0/255.0.0.0 1-1023\n" +
				"allow 80 10.1.2.3/255.255.255.255 8080\n" +
				"deny 0-65535 0.0.0.0/0.0.0.0 0-65535\n",
			edit: func(c *Config) {
				c.Rules = []gateway.Rule{
					rule(true, 1024, 65535, "192.168.1.0/24", 1024, 65535),
					rule(false, 1, 1023, "10.0.0.0/8", 1, 1023),
					rule(true, 80, 80, "10.1.2.3/32", 8080, 8080),
					rule(false, 0, 65535, "0.0.0.0/0", 0, 65535),
				}
			},
		},
		{
			name: "host without mask and host bits kept",
			src:  "allow 5000 198.51.100.10 5000\nallow 6000 198.51.100.10/24 6000\n",
			edit: func(c *Config) {
				c.Rules = []gateway.Rule{
					rule(true, 5000, 5000, "198.51.100.10/32", 5000, 5000),
					rule(true, 6000, 6000, "198.51.100.10/24", 6000, 6000),
				}
			},
		},
		{
			name: "ipv6 rules",
			src:  "allow 1024-65535 2001:db8:100::/64 1024-65535\ndeny 1-65535 2001:db8:100::10 1-65535\ndeny 0-65535 ::/0 0-65535\n",
			edit: func(c *Config) {
				c.Rules = []gateway.Rule{
					rule(true, 1024, 65535, "2001:db8:100::/64", 1024, 65535),
					rule(false, 1, 65535, "2001:db8:100::10/128", 1, 65535),
					rule(false, 0, 65535, "::/0", 0, 65535),
				}
			},
		},
		{
			name: "everything with comments",
			src:  "port range 10000-20000 # ours\nlifetime max 7200\t# two hours\nallow 10000-20000 198.51.100.0/24 1-65535 # the LAN\n",
			edit: func(c *Config) {
				c.PortRange = gateway.PortRange{Low: 10000, High: 20000}
				c.MaxLifetime = 2 * time.Hour
				c.Rules = []gateway.Rule{rule(true, 10000, 20000, "198.51.100.0/24", 1, 65535)}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseString(t, head+tt.src)
			want := base("em0", 1, Listen{Addr: addr("10.0.0.1"), Line: 2})
			tt.edit(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(%q) =\n%#v\nwant\n%#v", head+tt.src, got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const head = "interface em0\nlisten on 10.0.0.1\n"
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"unknown directive", head + "lisen on 10.0.0.2\n", `portleased.conf:3: unknown directive "lisen"`},
		{"keywords are case-sensitive", head + "Interface em1\n", `portleased.conf:3: unknown directive "Interface"`},
		{"macros are not natpmpd.conf", "ext_if = \"em0\"\n" + head, `portleased.conf:1: unknown directive "ext_if"`},
		{"no interface", "listen on 10.0.0.1\n", `portleased.conf: no interface given`},
		{"no listen", "interface em0\n", `portleased.conf: no "listen on" given`},
		{"empty file", "", "portleased.conf: no interface given\nportleased.conf: no \"listen on\" given"},
		{"interface without name", "interface\nlisten on 10.0.0.1\n", `portleased.conf:1: interface: missing interface name`},
		{"interface with inet", "interface em0 inet\nlisten on 10.0.0.1\n", `portleased.conf:1: interface: unexpected "inet"`},
		{"interface name too long", "interface abcdefghijklmnop\nlisten on 10.0.0.1\n",
			`portleased.conf:1: interface: "abcdefghijklmnop" is too long for an interface name (at most 15 bytes)`},
		{"interface name with slash", "interface em/0\nlisten on 10.0.0.1\n", `portleased.conf:1: interface: "em/0" is not an interface name`},
		{"interface empty quoted", "interface \"\"\nlisten on 10.0.0.1\n", `portleased.conf:1: interface: "" is not an interface name`},
		{"bare listen on", "interface sis0\nlisten on\n", `portleased.conf:2: listen on: missing address or interface`},
		{"bare listen on with comment", "interface sis0\nlisten on # sis1's address\n", `portleased.conf:2: listen on: missing address or interface`},
		{"listen without on", "interface sis0\nlisten 10.0.0.1\n", `portleased.conf:2: listen: expected "on", got "10.0.0.1"`},
		{"listen alone", "interface sis0\nlisten\n", `portleased.conf:2: listen: expected "on"`},
		{"listen on bad ipv4", "interface sis0\nlisten on 10.0.0.256\n", `portleased.conf:2: listen on: "10.0.0.256" is not an IP address`},
		{"listen on bad ipv6", "interface sis0\nlisten on 2001:db8::g\n", `portleased.conf:2: listen on: "2001:db8::g" is not an IP address`},
		{"listen on prefix", "interface sis0\nlisten on 10.0.0.1/24\n",
			`portleased.conf:2: listen on: "10.0.0.1/24" is not an IP address or an interface name`},
		{"listen on empty quoted", "interface sis0\nlisten on \"\"\n", `portleased.conf:2: listen on: "" is not an IP address or an interface name`},
		{"listen on name too long", "interface sis0\nlisten on abcdefghijklmnop\n",
			`portleased.conf:2: listen on: "abcdefghijklmnop" is too long for an interface name (at most 15 bytes)`},
		{"listen on two words", "interface sis0\nlisten on 10.0.0.1 10.0.0.2\n", `portleased.conf:2: listen on: unexpected "10.0.0.2"`},
		{"listen on bad zone", "interface sis0\nlisten on 'fe80::1%a b'\n", `portleased.conf:2: listen on: "fe80::1%a b": bad zone "a b"`},
		{"user without name", head + "user\n", `portleased.conf:3: user: missing user name`},
		{"user twice", head + "user a\nuser b\n", `portleased.conf:4: user: already given at line 3`},
		{"user two words", head + "user a b\n", `portleased.conf:3: user: unexpected "b"`},
		{"user a uid", head + "user 1000\n", `portleased.conf:3: user: "1000" is a number; name the user`},
		{"user with slash", head + "user a/b\n", `portleased.conf:3: user: "a/b" is not a user name (letters, digits, '.', '_', '-')`},
		{"user with dash first", head + "user -a\n", `portleased.conf:3: user: "-a" starts with '-'`},
		{"port without range", head + "port 1024-65535\n", `portleased.conf:3: port: expected "range", got "1024-65535"`},
		{"port range missing", head + "port range\n", `portleased.conf:3: port range: missing LOW-HIGH`},
		{"port range too high", head + "port range 1024-70000\n", `portleased.conf:3: port range: 70000 is not a port (1-65535)`},
		{"port range zero", head + "port range 0-1023\n", `portleased.conf:3: port range: 0 is not a port (1-65535)`},
		{"port range word", head + "port range low-high\n", `portleased.conf:3: port range: "low" is not a port (1-65535)`},
		{"port range reversed", head + "port range 2000-1000\n", `portleased.conf:3: port range: 2000-1000: low port above high port`},
		{"port range half", head + "port range 1024-\n", `portleased.conf:3: port range: "1024-" is not a port range (N or N-M)`},
		{"port range signed", head + "port range +1024-2000\n", `portleased.conf:3: port range: "+1024" is not a port (1-65535)`},
		{"port range twice", head + "port range 2000-3000\nport range 4000-5000\n", `portleased.conf:4: port range: already given at line 3`},
		{"port range extra", head + "port range 2000 3000\n", `portleased.conf:3: port range: unexpected "3000"`},
		{"lifetime without max", head + "lifetime min 120\n", `portleased.conf:3: lifetime: expected "max", got "min"`},
		{"lifetime max missing", head + "lifetime max\n", `portleased.conf:3: lifetime max: missing seconds`},
		{"lifetime max zero", head + "lifetime max 0\n", `portleased.conf:3: lifetime max: 0 is not a number of seconds (1-4294967295)`},
		{"lifetime max too big", head + "lifetime max 4294967296\n", `portleased.conf:3: lifetime max: 4294967296 is not a number of seconds (1-4294967295)`},
		{"lifetime max unit", head + "lifetime max 2h\n", `portleased.conf:3: lifetime max: "2h" is not a number of seconds (1-4294967295)`},
		{"lifetime max twice", head + "lifetime max 60\n\nlifetime max 70\n", `portleased.conf:5: lifetime max: already given at line 3`},
		{"pcp without lifetime min", head + "pcp lifetime 60\n", `portleased.conf:3: pcp: expected "lifetime min SECONDS"`},
		{"pcp lifetime min zero", head + "pcp lifetime min 0\n", `portleased.conf:3: pcp lifetime min: 0 is not a number of seconds (1-4294967295)`},
		{"pcp lifetime min missing", head + "pcp lifetime min\n", `portleased.conf:3: pcp lifetime min: missing seconds`},
		{"pcp lifetime min twice", head + "pcp lifetime min 60\npcp lifetime min 70\n", `portleased.conf:4: pcp lifetime min: already given at line 3`},
		{"pcp lifetime min over max", head + "lifetime max 100\npcp lifetime min 200\n", `portleased.conf:4: pcp lifetime min 200 is longer than lifetime max 100`},
		{"state without file", head + "state /var/lib/x\n", `portleased.conf:3: state: expected "file", got "/var/lib/x"`},
		{"state file missing", head + "state file\n", `portleased.conf:3: state file: missing path (or none)`},
		{"state file relative", head + "state file leases\n", `portleased.conf:3: state file: "leases" is not an absolute path`},
		{"state file extra", head + "state file /a b\n", `portleased.conf:3: state file: unexpected "b"`},
		{"state file twice", head + "state file none\nstate file /a\n", `portleased.conf:4: state file: already given at line 3`},
		{"rule missing fields", head + "allow 1024-65535 192.168.1.0/24\n",
			`portleased.conf:3: allow: missing fields (want "allow EXT-PORTS ADDRESS[/MASK] INT-PORTS")`},
		{"rule bad external port", head + "deny 70000 192.168.1.0/24 1024\n", `portleased.conf:3: deny: external ports: 70000 is not a port (0-65535)`},
		{"rule bad internal port", head + "allow 1024 192.168.1.0/24 1024-99999\n", `portleased.conf:3: allow: internal ports: 99999 is not a port (0-65535)`},
		{"rule reversed ports", head + "allow 2000-1000 192.168.1.0/24 1024\n", `portleased.conf:3: allow: external ports: 2000-1000: low port above high port`},
		{"rule bad address", head + "allow 1024 192.168.1/24 1024\n", `portleased.conf:3: allow: internal address: "192.168.1" is not an IP address`},
		{"rule bad length", head + "allow 1024 192.168.1.0/33 1024\n", `portleased.conf:3: allow: internal address: "33" is not a prefix length (0-32) or a netmask`},
		{"rule bad ipv6 length", head + "allow 1024 2001:db8::/129 1024\n", `portleased.conf:3: allow: internal address: "129" is not a prefix length (0-128)`},
		{"rule holey netmask", head + "allow 1024 10.0.0.0/255.0.255.0 1024\n", `portleased.conf:3: allow: internal address: "255.0.255.0" is not a contiguous netmask`},
		{"rule ipv6 netmask", head + "allow 1024 2001:db8::/ffff:: 1024\n", `portleased.conf:3: allow: internal address: "ffff::" is not a prefix length (0-128)`},
		{"rule mapped address", head + "allow 1024 ::ffff:10.0.0.0/104 1024\n",
			`portleased.conf:3: allow: internal address: "::ffff:10.0.0.0" is an IPv4-mapped address: write it as IPv4`},
		{"rule zone", head + "allow 1024 fe80::1%em0 1024\n", `portleased.conf:3: allow: internal address: "fe80::1%em0": a zone is not allowed here`},
		{"rule description regex", head + "allow 1024-65535 192.168.1.0/24 1024-65535 \"^game\"\n",
			`portleased.conf:3: allow: unexpected "^game" (miniupnpd's description filter is not supported)`},
		{"unterminated quote", "interface \"em0\nlisten on 10.0.0.1\n",
			"portleased.conf:1: unterminated quoted string\nportleased.conf: no interface given\nportleased.conf: no \"listen on\" given"},
		{"error line after continuation", "interface em0\nlisten \\\n  on \\\n  10.0.0.300\n", `portleased.conf:4: listen on: "10.0.0.300" is not an IP address`},
		{"CRLF error line", "interface em0\r\nlisten on 10.0.0.1\r\nport range 9-8\r\n", `portleased.conf:3: port range: 9-8: low port above high port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(file, strings.NewReader(tt.src))
			if err == nil {
				t.Fatalf("Parse(%q) = %v, nil; want error %q", tt.src, c, tt.want)
			}
			if c != nil {
				t.Errorf("Parse(%q) returned a Config with its error", tt.src)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse(%q) error =\n%s\nwant\n%s", tt.src, got, tt.want)
			}
		})
	}
}

func TestParseAllErrors(t *testing.T) {
	src := `# several mistakes, every one reported
interface em0 inet
lisen on 10.0.0.1
listen on
port range 70000
lifetime max 0
allow 1024-65535 192.168.1.0/24
deny 1-2 3.4.5.6/40 7-8
listen on 10.0.0.1
"unterminated
`
	want := []string{
		`portleased.conf:2: interface: unexpected "inet"`,
		`portleased.conf:3: unknown directive "lisen"`,
		`portleased.conf:4: listen on: missing address or interface`,
		`portleased.conf:5: port range: 70000 is not a port (1-65535)`,
		`portleased.conf:6: lifetime max: 0 is not a number of seconds (1-4294967295)`,
		`portleased.conf:7: allow: missing fields (want "allow EXT-PORTS ADDRESS[/MASK] INT-PORTS")`,
		`portleased.conf:8: deny: internal address: "40" is not a prefix length (0-32) or a netmask`,
		`portleased.conf:10: unterminated quoted string`,
	}
	_, err := Parse(file, strings.NewReader(src))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Parse error %v (%T) is not an ErrorList", err, err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse errors =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err.Error() != strings.Join(want, "\n") {
		t.Errorf("ErrorList.Error() = %q; want the errors joined by newlines", err.Error())
	}
	var one *Error
	if !errors.As(err, &one) || one.Line != 2 || one.File != file {
		t.Errorf("errors.As(err, *Error) = %+v; want the first error, line 2", one)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{File: "a.conf", Line: 7, Msg: "bad"}, "a.conf:7: bad"},
		{&Error{File: "a.conf", Msg: "no interface given"}, "a.conf: no interface given"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Parse(file, iotest.ErrReader(boom))
	if err == nil || err.Error() != "portleased.conf: read: boom" {
		t.Errorf("Parse(failing reader) error = %v; want %q", err, "portleased.conf: read: boom")
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(good, []byte("interface em0\nlisten on 10.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("interface em0\nlisten on 10.0.0.1\nbogus\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("good", func(t *testing.T) {
		c, err := ParseFile(good)
		if err != nil || c.ExternalInterface != "em0" {
			t.Errorf("ParseFile(%s) = %v, %v; want interface em0", good, c, err)
		}
	})
	t.Run("bad", func(t *testing.T) {
		_, err := ParseFile(bad)
		want := bad + `:3: unknown directive "bogus"`
		if err == nil || err.Error() != want {
			t.Errorf("ParseFile(%s) error = %v; want %q", bad, err, want)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := ParseFile(filepath.Join(dir, "none.conf"))
		if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
			t.Errorf("ParseFile(missing) error = %v; want config: ... fs.ErrNotExist", err)
		}
	})
}

func TestDefault(t *testing.T) {
	c := Default()
	want := &Config{PortRange: gateway.PortRange{Low: 1024, High: 65535}, MaxLifetime: 86400 * time.Second,
		UPnP:        UPnP{Enabled: true, FriendlyName: "portleased", HTTPPort: 5000, NotifyInterval: 900 * time.Second, SecureMode: true, Version: 2},
		PCP:         PCP{MinLifetime: 120 * time.Second},
		Limits:      Limits{MaxPerHost: 1024, MaxMappings: 65536},
		RequestRate: RequestRate{PerSecond: 50, Burst: 200},
		StateFile:   "/var/lib/portleased/leases", User: "portleased", Firewall: FirewallAuto,
		Observe: Observe{ControlSocket: "/run/portleased/control", StatusPage: true}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() = %#v; want %#v", c, want)
	}
	if Default() == c {
		t.Error("Default() returned the same Config twice")
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{
			name: "natpmpd.conf gets the defaults written out",
			src:  "interface carp0\nlisten on 10.0.0.1\n",
			want: "interface carp0\nlisten on 10.0.0.1\nport range 1024-65535\nlifetime max 86400\n" + defaultUPnPText + defaultPCPText + defaultLimitsText + defaultRateText + defaultUserStateText,
		},
		{
			name: "everything",
			src: "interface 'em0'\nlisten on *\nlisten on br-lan\nlisten on fe80::1%br-lan\nport range 5000\nlifetime max 60\n" +
				"allow 1-2 10.0.0.0/255.255.0.0 3-3\ndeny 0-65535 2001:db8::1 0-65535\n",
			want: "interface em0\nlisten on 0.0.0.0\nlisten on br-lan\nlisten on fe80::1%br-lan\nport range 5000\nlifetime max 60\n" +
				"allow 1-2 10.0.0.0/16 3\ndeny 0-65535 2001:db8::1/128 0-65535\n" + defaultUPnPText + "pcp lifetime min 60\n" + defaultLimitsText + defaultRateText + defaultUserStateText,
		},
		{
			name: "upnp settings",
			src: "interface em0\nlisten on em1\nupnp off\nupnp friendly name \"Home gateway\"\nupnp http port 2189\n" +
				"upnp notify interval 60\nupnp secure mode off\nupnp version 1\n",
			want: "interface em0\nlisten on em1\nport range 1024-65535\nlifetime max 86400\nupnp off\nupnp friendly name \"Home gateway\"\n" +
				"upnp http port 2189\nupnp notify interval 60\nupnp secure mode off\nupnp version 1\n" + defaultPCPText + defaultLimitsText + defaultRateText + defaultUserStateText,
		},
		{
			name: "upnp hostname and connections",
			src:  "interface em0\nlisten on em1\nupnp hostname Router.lan. gw\nupnp max connections per host 4\n",
			want: "interface em0\nlisten on em1\nport range 1024-65535\nlifetime max 86400\n" + defaultUPnPText +
				"upnp hostname router.lan gw\nupnp max connections per host 4\n" + defaultPCPText + defaultLimitsText + defaultRateText + defaultUserStateText,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseString(t, tt.src)
			got := c.String()
			if got != tt.want {
				t.Errorf("String() =\n%s\nwant\n%s", got, tt.want)
			}
			again := parseString(t, got)
			if !sameSettings(c, again) {
				t.Errorf("Parse(String()) =\n%#v\nwant\n%#v", again, c)
			}
		})
	}
}

// sameSettings reports whether a and b say the same, line numbers aside.
func sameSettings(a, b *Config) bool {
	return reflect.DeepEqual(withoutLines(a), withoutLines(b))
}

func withoutLines(c *Config) *Config {
	d := *c
	d.InterfaceLine = 0
	d.StateFileLine = 0
	d.UserLine = 0
	d.FirewallLine = 0
	d.Observe.MetricsLine = 0
	d.Observe.ControlSocketLine = 0
	d.Observe.StatusLine = 0
	d.Listen = nil
	for _, l := range c.Listen {
		l.Line = 0
		d.Listen = append(d.Listen, l)
	}
	return &d
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"interface carp0\nlisten on 10.0.0.1\n",
		"interface sis0\nlisten on sis1\n",
		"# c\r\ninterface 'em0' # x\r\nlisten on *\r\n",
		"interface em0\nlisten \\\non \"10.0.0.1\"\nport range 1024-2048\nlifetime max 7200\n",
		"interface em0\nlisten on fe80::1%eth0\nallow 1024-65535 192.168.1.0/255.255.255.0 1024-65535\ndeny 0-65535 ::/0 0-65535\n",
		"interface em0\nlisten on\nport range 70000\nlisten on 'x\n",
		"lisen on 1.2.3.4\n\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse(file, strings.NewReader(src))
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Parse(%q) error %v is not a non-empty ErrorList", src, err)
			}
			return
		}
		if c.ExternalInterface == "" || len(c.Listen) == 0 {
			t.Fatalf("Parse(%q) accepted a config without interface or listen: %#v", src, c)
		}
		out := c.String()
		again, err := Parse(file, strings.NewReader(out))
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", src, out, err)
		}
		if !sameSettings(c, again) {
			t.Fatalf("Parse(%q) = %#v\nbut Parse(String()) = %#v", src, c, again)
		}
		if out2 := again.String(); out2 != out {
			t.Fatalf("String() not stable: %q then %q", out, out2)
		}
	})
}

const defaultPCPText = "pcp lifetime min 120\n"

const defaultLimitsText = "max mappings per host 1024\nmax mappings 65536\n"
const defaultRateText = "request rate per host 50 burst 200\n"

const defaultUPnPText = "upnp on\nupnp friendly name \"portleased\"\nupnp http port 5000\nupnp notify interval 900\nupnp secure mode on\nupnp version 2\n"

const defaultUserStateText = "user portleased\nfirewall auto\ncontrol socket /run/portleased/control\nstatus page on\nstatus page admin off\nstate file /var/lib/portleased/leases\n"

func TestUPnPErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{"upnp", "x.conf:3: upnp: expected on, off, friendly name, http port, notify interval, secure mode, version, hostname or max connections per host"},
		{"upnp maybe", `x.conf:3: upnp: unknown setting "maybe" (want on, off, friendly name, http port, notify interval, secure mode, version, hostname or max connections per host)`},
		{"upnp hostname", "x.conf:3: upnp hostname: missing value"},
		{"upnp hostname 198.51.100.1", `x.conf:3: upnp hostname: "198.51.100.1" is not a DNS name (letters, digits, - and . ; not an address)`},
		{"upnp hostname router.lan:5000", `x.conf:3: upnp hostname: "router.lan:5000" is not a DNS name (letters, digits, - and . ; not an address)`},
		{"upnp hostname -a.lan", `x.conf:3: upnp hostname: "-a.lan" is not a DNS name (letters, digits, - and . ; not an address)`},
		{"upnp hostname a\nupnp hostname b", "x.conf:4: upnp hostname: already given at line 3"},
		{"upnp max connections 4", `x.conf:3: upnp max: expected "connections per host"`},
		{"upnp max connections per host 0", "x.conf:3: upnp max connections per host: 0 is not a number from 1 to 256"},
		{"upnp max connections per host 257", "x.conf:3: upnp max connections per host: 257 is not a number from 1 to 256"},
		{"upnp max connections per host", "x.conf:3: upnp max connections per host: missing value"},
		{"upnp http 5000", `x.conf:3: upnp http: expected "port"`},
		{"upnp http port 0", "x.conf:3: upnp http port: 0 is not a port (1-65535)"},
		{"upnp http port", "x.conf:3: upnp http port: missing value"},
		{"upnp notify interval 5", "x.conf:3: upnp notify interval: 5 is not a number of seconds (30-86400)"},
		{"upnp secure mode maybe", `x.conf:3: upnp secure mode: "maybe": want on or off`},
		{"upnp version 3", `x.conf:3: upnp version: "3": want 1 or 2`},
		{"upnp friendly name a<b", `x.conf:3: upnp friendly name: "a<b": want 1 to 64 characters without < > &`},
		{"upnp off now", `x.conf:3: upnp off: unexpected "now"`},
		{"upnp off\nupnp on", "x.conf:4: upnp on|off: already given at line 3"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			_, err := Parse("x.conf", strings.NewReader("interface em0\nlisten on em1\n"+tt.line+"\n"))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Parse(%q) = %v; want %s", tt.line, err, tt.want)
			}
		})
	}
}

func TestFirewall(t *testing.T) {
	for _, f := range []Firewall{FirewallAuto, FirewallNftables, FirewallIptables, FirewallIptablesLegacy, FirewallIptablesNft} {
		c := parseString(t, "interface em0\nlisten on em1\nfirewall "+string(f)+"\n")
		if c.Firewall != f || c.FirewallLine != 3 {
			t.Errorf("firewall %s: got %q at line %d", f, c.Firewall, c.FirewallLine)
		}
	}
	for src, want := range map[string]string{
		"firewall\n":                     "x.conf:3: firewall: missing backend (auto|nftables|iptables|iptables-legacy|iptables-nft)",
		"firewall pf\n":                  `x.conf:3: firewall: unknown backend "pf" (want auto|nftables|iptables|iptables-legacy|iptables-nft)`,
		"firewall nftables iptables\n":   `x.conf:3: firewall: unexpected "iptables"`,
		"firewall auto\nfirewall auto\n": "x.conf:4: firewall: already given at line 3",
	} {
		_, err := Parse("x.conf", strings.NewReader("interface em0\nlisten on em1\n"+src))
		if err == nil || err.Error() != want {
			t.Errorf("%q: error %v; want %s", src, err, want)
		}
	}
}
