package mapfile

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// readmeJSON is the JSON example of upnp-daemon's README (src/lib.rs
// documentation, "JSON"), with the address of its first entry as printed
// there.
const readmeJSON = `[
  {
    "address": "192.168.0.10",
    "port": 12345,
    "protocol": "UDP",
    "duration": 60,
    "comment": "Test 1"
  },
  {
    "address": null,
    "port": 12346,
    "protocol": "TCP",
    "duration": 60,
    "comment": "Test 2"
  }
]
`

// readmeJSONExtraKeys is the README's second JSON example: no address, and
// keys upnp-daemon ignores.
const readmeJSONExtraKeys = `[
  {
    "rationale": "This port is needed for an awesome application!",
    "may-be-deleted": false,
    "port": 12347,
    "protocol": "TCP",
    "duration": 60,
    "comment": "Test 3"
  }
]
`

func TestReadJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want func(t *testing.T) []Entry
		bad  []string
	}{
		{
			name: "upnp-daemon README",
			in:   readmeJSON,
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "192.168.0.10", 12345, UDP, 60, "Test 1"),
					ent(t, 9, "", 12346, TCP, 60, "Test 2"),
				}
			},
		},
		{
			name: "upnp-daemon README, ignored keys",
			in:   readmeJSONExtraKeys,
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 2, "", 12347, TCP, 60, "Test 3")}
			},
		},
		{
			name: "one line",
			in:   `[{"port":1,"protocol":"TCP","duration":60,"comment":"a"},{"port":2,"protocol":"UDP","duration":60,"comment":"b"}]`,
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 1, "", 1, TCP, 60, "a"), ent(t, 1, "", 2, UDP, 60, "b")}
			},
		},
		{
			name: "bad objects among good ones",
			in: `[
  {"port": 80, "protocol": "TCP", "duration": 60, "comment": "web"},
  {"port": 70000, "protocol": "TCP", "duration": 60, "comment": "too big"},
  {"port": "81", "protocol": "TCP", "duration": 60, "comment": "a string"},
  {"port": 82, "protocol": "SCTP", "duration": 60, "comment": "protocol"},
  {"port": 83, "protocol": "TCP", "duration": 60},
  {"port": 84, "protocol": "TCP", "duration": 60.5, "comment": "fraction"},
  {"address": 5, "port": 85, "protocol": "TCP", "duration": 60, "comment": "address"},
  {"address": "fe80::1", "port": 86, "protocol": "TCP", "duration": 60, "comment": "IPv6"},
  {"port": 87, "protocol": null, "duration": 60, "comment": "null"},
  42,
  "port 88",
  null,
  [null, 89, "TCP", 60, "positional"],
  {
    "port": 90,
    "protocol": "udp",
    "duration": 0,
    "comment": "last, good"
  }
]`,
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "", 80, TCP, 60, "web"),
					ent(t, 15, "", 90, UDP, 0, "last, good"),
				}
			},
			bad: []string{
				`ports.json:3: port: "70000" is not a port (1-65535)`,
				`ports.json:4: port: want a number, got the string "81"`,
				`ports.json:5: protocol: "SCTP" is not TCP or UDP`,
				`ports.json:6: comment: missing`,
				`ports.json:7: duration: "60.5" is not a number of seconds (0-4294967295)`,
				`ports.json:8: address: want a string or null, got the number 5`,
				`ports.json:9: address: "fe80::1" is not a global IPv6 address or range (e.g. 2001:db8::10, 2001:db8::/64)`,
				`ports.json:10: protocol: want a string, got null`,
				`ports.json:11: the element is the number 42, not an object`,
				`ports.json:12: the element is the string "port 88", not an object`,
				`ports.json:13: the element is null, not an object`,
				`ports.json:14: the element is an array, not an object`,
			},
		},
		{
			name: "keys: last of a repeated key wins, case differences tolerated",
			in: `[
{"port": 1, "port": 2, "protocol": "TCP", "duration": 60, "comment": "repeated"},
{"Port": 3, "PROTOCOL": "TCP", " duration ": 60, "Comment": "case", "Address": "10.0.0.1"},
{"port": 4, "Port": 5, "protocol": "TCP", "duration": 60, "comment": "exact wins"},
{"Port": 6, "PORT": 7, "protocol": "TCP", "duration": 60, "comment": "ambiguous"}
]`,
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "", 2, TCP, 60, "repeated"),
					ent(t, 3, "10.0.0.1", 3, TCP, 60, "case"),
					ent(t, 4, "", 4, TCP, 60, "exact wins"),
				}
			},
			bad: []string{`ports.json:5: port: keys "Port" and "PORT" both name it`},
		},
		{
			name: "address forms",
			in: `[
{"address": "", "port": 1, "protocol": "TCP", "duration": 60, "comment": ""},
{"address": "192.168.0", "port": 2, "protocol": "TCP", "duration": 60, "comment": ""},
{"address": "192.168.0.10/24", "port": 3, "protocol": "TCP", "duration": 60, "comment": ""}
]`,
			want: func(t *testing.T) []Entry {
				return []Entry{
					ent(t, 2, "", 1, TCP, 60, ""),
					ent(t, 3, "192.168.0.0/24", 2, TCP, 60, ""),
					ent(t, 4, "192.168.0.0/24", 3, TCP, 60, ""),
				}
			},
		},
		{
			name: "CRLF, lone CR and BOM",
			in:   "\xEF\xBB\xBF[\r\n{\"port\": 1, \"protocol\": \"TCP\", \"duration\": 60, \"comment\": \"a\"},\r{\"port\": 2, \"protocol\": \"TCP\", \"duration\": 60, \"comment\": \"b\"}\r\n]\r\n",
			want: func(t *testing.T) []Entry {
				return []Entry{ent(t, 2, "", 1, TCP, 60, "a"), ent(t, 3, "", 2, TCP, 60, "b")}
			},
		},
		{
			name: "empty array",
			in:   " [ ] ",
			want: func(*testing.T) []Entry { return nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad, err := Read(strings.NewReader(tt.in), Options{Format: JSON, Name: "ports.json"})
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

func TestReadJSONFatal(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   string
		syntax bool // wraps a *json.SyntaxError
	}{
		{name: "empty", in: "", want: "ports.json: empty input, want a JSON array of mappings"},
		{name: "white space", in: " \n\t", want: "ports.json: empty input, want a JSON array of mappings"},
		{name: "object", in: "\n" + `{"port": 1, "protocol": "TCP", "duration": 60, "comment": ""}`, want: "ports.json:2: the file holds an object, want a JSON array of mappings"},
		{name: "string", in: `"ports.csv"`, want: `ports.json:1: the file holds the string "ports.csv", want a JSON array of mappings`},
		{name: "null", in: `null`, want: `ports.json:1: the file holds null, want a JSON array of mappings`},
		{
			name:   "syntax error",
			in:     "[\n  {\"port\": 1,\n   \"protocol\": \"TCP\",,\n  }\n]",
			want:   "ports.json:3: invalid JSON: invalid character ',' looking for beginning of object key string",
			syntax: true,
		},
		{name: "trailing comma", in: "[\n1,\n]", want: "ports.json:3: invalid JSON: invalid character ']' looking for beginning of value", syntax: true},
		{name: "unterminated array", in: "[\n", want: "ports.json:2: invalid JSON: unexpected end of input"},
		{name: "unterminated object", in: "[\n{\"port\": 1", want: "ports.json:2: invalid JSON: unexpected end of input"},
		{name: "data after the array", in: "[]\n[]", want: "ports.json:2: data after the array's closing ]"},
		{name: "garbage after the array", in: "[] x", want: "ports.json:1: data after the array's closing ]"},
		{name: "not JSON", in: "address;port;protocol;duration;comment\n", want: "ports.json:1: invalid JSON: invalid character 'a' looking for beginning of value", syntax: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, bad, err := Read(strings.NewReader(tt.in), Options{Format: JSON, Name: "ports.json"})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Read(%q) error = %v; want %s", tt.in, err, tt.want)
			}
			if !errors.Is(err, ErrNotArray) {
				t.Errorf("Read(%q) error %v is not ErrNotArray", tt.in, err)
			}
			var se *json.SyntaxError
			if errors.As(err, &se) != tt.syntax {
				t.Errorf("Read(%q) error %v: wraps a *json.SyntaxError = %t; want %t", tt.in, err, !tt.syntax, tt.syntax)
			}
			if got != nil || bad != nil {
				t.Errorf("Read(%q) = %v, %v with an error; want nothing", tt.in, got, bad)
			}
		})
	}
}
