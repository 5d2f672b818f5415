package mapfile

import (
	"bytes"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEntryKeyAndString(t *testing.T) {
	tests := []struct {
		e       Entry
		key     string
		display string
	}{
		{
			e:       Entry{Addr: netip.MustParseAddr("192.168.1.10"), Port: 8080, Protocol: TCP, Duration: time.Minute, Comment: "web", Line: 2},
			key:     "TCP 8080 192.168.1.10",
			display: `TCP 8080 -> 192.168.1.10 (60 s, "web")`,
		},
		{
			e:       Entry{Port: 22, Protocol: TCP, Duration: time.Hour, Comment: "ssh"},
			key:     "TCP 22 *",
			display: `TCP 22 -> this host (3600 s, "ssh")`,
		},
		{
			e:       Entry{Prefix: netip.MustParsePrefix("192.168.0.0/24"), Port: 53, Protocol: UDP},
			key:     "UDP 53 192.168.0.0/24",
			display: `UDP 53 -> this host in 192.168.0.0/24 (0 s)`,
		},
		{
			e:       Entry{Port: 1, Protocol: UDP, Duration: 4294967295 * time.Second, Comment: "say \"hi\"\n"},
			key:     "UDP 1 *",
			display: `UDP 1 -> this host (4294967295 s, "say \"hi\"\n")`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := tt.e.Key(); got != tt.key {
				t.Errorf("Key() = %q; want %q", got, tt.key)
			}
			if got := tt.e.String(); got != tt.display {
				t.Errorf("String() = %q; want %q", got, tt.display)
			}
		})
	}
	t.Run("duration and comment do not change the key", func(t *testing.T) {
		a := Entry{Port: 80, Protocol: TCP, Duration: time.Minute, Comment: "a", Line: 2}
		b := Entry{Port: 80, Protocol: TCP, Duration: time.Hour, Comment: "b", Line: 9}
		if a.Key() != b.Key() {
			t.Errorf("Key() = %q and %q; want equal", a.Key(), b.Key())
		}
		for _, c := range []Entry{
			{Port: 80, Protocol: UDP},
			{Port: 81, Protocol: TCP},
			{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Protocol: TCP},
			{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 80, Protocol: TCP},
		} {
			if c.Key() == a.Key() {
				t.Errorf("Key() of %v = Key() of %v = %q; want different", c, a, a.Key())
			}
		}
	})
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		bad  bool
	}{
		{in: "csv", want: CSV},
		{in: "json", want: JSON},
		{in: "JSON", want: JSON},
		{in: "xml", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFormat(tt.in)
			if (err != nil) != tt.bad || got != tt.want {
				t.Errorf("ParseFormat(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.bad)
			}
			if err == nil && got.String() != strings.ToLower(tt.in) {
				t.Errorf("ParseFormat(%q).String() = %q", tt.in, got.String())
			}
		})
	}
}

func TestParseProtocol(t *testing.T) {
	tests := []struct {
		in   string
		want Protocol
		err  string
	}{
		{in: "TCP", want: TCP},
		{in: "udp", want: UDP},
		{in: " Udp ", want: UDP},
		{in: "SCTP", err: `mapfile: "SCTP" is not TCP or UDP`},
		{in: "", err: `mapfile: "" is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseProtocol(tt.in)
			if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
				t.Errorf("ParseProtocol(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestLineError(t *testing.T) {
	tests := []struct {
		e    LineError
		want string
	}{
		{LineError{File: "ports.csv", Line: 3, Field: "port", Msg: `"70000" is not a port (1-65535)`}, `ports.csv:3: port: "70000" is not a port (1-65535)`},
		{LineError{File: "ports.csv", Line: 2, Msg: "has 4 fields, the header has 5"}, "ports.csv:2: has 4 fields, the header has 5"},
		{LineError{File: "ports.csv", Msg: "missing header line"}, "ports.csv: missing header line"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "ports.csv")
	if err := os.WriteFile(csvPath, []byte(readmeCSV+";70000;TCP;60;bad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	jsonPath := filepath.Join(dir, "ports.json")
	if err := os.WriteFile(jsonPath, []byte(readmeJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("CSV, named by its path", func(t *testing.T) {
		got, bad, err := ReadFile(csvPath, Options{})
		if err != nil || len(got) != 2 {
			t.Fatalf("ReadFile(%q) = %v, %v, %v; want 2 entries", csvPath, got, bad, err)
		}
		want := []string{csvPath + `:4: port: "70000" is not a port (1-65535)`}
		if g := errorStrings(bad); !slices.Equal(g, want) {
			t.Errorf("ReadFile(%q) bad lines = %q; want %q", csvPath, g, want)
		}
	})
	t.Run("JSON, named by Options", func(t *testing.T) {
		got, bad, err := ReadFile(jsonPath, Options{Format: JSON, Name: "ports.json"})
		if err != nil || len(got) != 2 || len(bad) != 0 {
			t.Fatalf("ReadFile(%q) = %v, %v, %v; want 2 entries", jsonPath, got, bad, err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(dir, "nope.csv")
		_, _, err := ReadFile(p, Options{})
		if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "mapfile: open "+p) {
			t.Errorf("ReadFile(%q) error = %v; want mapfile: open ...: not exist", p, err)
		}
	})
}

func TestWriteRoundTrip(t *testing.T) {
	entries := []Entry{
		{Addr: netip.MustParseAddr("192.168.0.10"), Port: 12345, Protocol: UDP, Duration: time.Minute, Comment: "Test 1"},
		{Port: 12346, Protocol: TCP, Duration: time.Minute, Comment: "Test 2"},
		{Prefix: netip.MustParsePrefix("192.168.0.0/24"), Port: 80, Protocol: TCP, Comment: `web; "quoted", two` + "\nlines <&>"},
		{Port: 81, Protocol: TCP, Duration: MaxDuration, Comment: " # leading space"},
		{Port: 82, Protocol: TCP, Duration: time.Second},
	}
	tests := []struct {
		name string
		o    Options
		want string // the file, when given
	}{
		{name: "CSV", o: Options{}, want: "address;port;protocol;duration;comment\n" +
			"192.168.0.10;12345;UDP;60;Test 1\n" +
			";12346;TCP;60;Test 2\n" +
			"192.168.0.0/24;80;TCP;0;\"web; \"\"quoted\"\", two\nlines <&>\"\n" +
			";81;TCP;4294967295;\" # leading space\"\n" +
			";82;TCP;1;\n"},
		{name: "CSV, comma", o: Options{Delimiter: ','}},
		{name: "CSV, tab", o: Options{Delimiter: '\t'}},
		{name: "JSON", o: Options{Format: JSON}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, entries, tt.o); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if tt.want != "" && b.String() != tt.want {
				t.Errorf("Write wrote\n%s\nwant\n%s", b.String(), tt.want)
			}
			got, bad, err := Read(&b, tt.o)
			if err != nil || len(bad) != 0 {
				t.Fatalf("Read(Write(entries)) = %v, %v", bad, err)
			}
			if !sameEntries(got, entries) {
				t.Errorf("Read(Write(entries)) =\n%v\nwant\n%v", got, entries)
			}
		})
	}
	t.Run("README JSON", func(t *testing.T) {
		got, _, err := Read(strings.NewReader(readmeJSON), Options{Format: JSON})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := Write(&b, got, Options{Format: JSON}); err != nil {
			t.Fatal(err)
		}
		if b.String() != readmeJSON {
			t.Errorf("Write wrote\n%s\nwant upnp-daemon's README example\n%s", b.String(), readmeJSON)
		}
	})
}

func TestWriteRefuses(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
	}{
		{"port 0", Entry{Protocol: TCP}},
		{"protocol", Entry{Port: 1, Protocol: "SCTP"}},
		{"address and range", Entry{Addr: netip.MustParseAddr("10.0.0.1"), Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 1, Protocol: TCP}},
		{"IPv6 loopback", Entry{Addr: netip.MustParseAddr("::1"), Port: 1, Protocol: TCP}},
		{"/128 range", Entry{Prefix: netip.MustParsePrefix("2001:db8::1/128"), Port: 1, Protocol: TCP}},
		{"/32 range", Entry{Prefix: netip.MustParsePrefix("10.0.0.1/32"), Port: 1, Protocol: TCP}},
		{"fraction of a second", Entry{Port: 1, Protocol: TCP, Duration: 1500 * time.Millisecond}},
		{"negative duration", Entry{Port: 1, Protocol: TCP, Duration: -time.Second}},
		{"too long", Entry{Port: 1, Protocol: TCP, Duration: MaxDuration + time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, []Entry{tt.e}, Options{}); err == nil {
				t.Errorf("Write(%v) wrote %q; want an error", tt.e, b.String())
			}
		})
	}
}

// sameEntries compares entries but for their lines.
func sameEntries(a, b []Entry) bool {
	return slices.EqualFunc(a, b, func(x, y Entry) bool {
		x.Line, y.Line = 0, 0
		return x == y
	})
}
