package config

import (
	"strings"
	"testing"
)

func TestRequestRate(t *testing.T) {
	const head = "interface em0\nlisten on em1\n"
	tests := []struct {
		line string
		want RequestRate
	}{
		{"", RequestRate{PerSecond: 50, Burst: 200}},
		{"request rate per host none", RequestRate{}},
		{"request rate per host 10", RequestRate{PerSecond: 10, Burst: 40}},
		{"request rate per host 10 burst 15", RequestRate{PerSecond: 10, Burst: 15}},
		{"request rate per host 1 burst 1", RequestRate{PerSecond: 1, Burst: 1}},
	}
	for _, tt := range tests {
		c := parseString(t, head+tt.line+"\n")
		if c.RequestRate != tt.want {
			t.Errorf("%q: RequestRate = %+v; want %+v", tt.line, c.RequestRate, tt.want)
		}
		again := parseString(t, c.String())
		if again.RequestRate != tt.want {
			t.Errorf("%q: written back as %q, parsed as %+v", tt.line, c.String(), again.RequestRate)
		}
	}
}

func TestRequestRateErrors(t *testing.T) {
	const head = "interface em0\nlisten on em1\n"
	tests := []struct{ line, want string }{
		{"request", `x.conf:3: request: expected "rate per host N [burst M]"`},
		{"request rate per 5", `x.conf:3: request: expected "rate per host N [burst M]"`},
		{"request rate per host", "x.conf:3: request rate per host: missing number (or none)"},
		{"request rate per host 0", "x.conf:3: request rate per host: 0 is not a number (1-2147483647)"},
		{"request rate per host fast", `x.conf:3: request rate per host: "fast" is not a number (1-2147483647)`},
		{"request rate per host 10 burst", "x.conf:3: request rate per host: burst: missing number"},
		{"request rate per host 10 burst 0", "x.conf:3: request rate per host burst: 0 is not a number (1-2147483647)"},
		{"request rate per host 10 per second", `x.conf:3: request rate per host: unexpected "per"`},
		{"request rate per host none 5", `x.conf:3: request rate per host none: unexpected "5"`},
		{"request rate per host 5\nrequest rate per host 6", "x.conf:4: request rate per host: already given at line 3"},
	}
	for _, tt := range tests {
		_, err := Parse("x.conf", strings.NewReader(head+tt.line+"\n"))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q: error %v; want %q", tt.line, err, tt.want)
		}
	}
}
