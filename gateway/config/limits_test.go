package config

import (
	"slices"
	"strings"
	"testing"
)

func TestParseLimits(t *testing.T) {
	const head = "interface em0\nlisten on 10.0.0.1\n"
	tests := []struct {
		name string
		src  string
		want Limits
	}{
		{"defaults", "", Limits{MaxPerHost: 1024, MaxMappings: 65536}},
		{"per host", "max mappings per host 200\n", Limits{MaxPerHost: 200, MaxMappings: 65536}},
		{"table", "max mappings 100000\n", Limits{MaxPerHost: 1024, MaxMappings: 100000}},
		{"none", "max mappings per host none\nmax mappings none\n", Limits{}},
		{"both, table first", "max mappings 10\nmax mappings per host 2\n", Limits{MaxPerHost: 2, MaxMappings: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseString(t, head+tt.src)
			if c.Limits != tt.want {
				t.Fatalf("Parse(%q).Limits = %+v; want %+v", tt.src, c.Limits, tt.want)
			}
			if again := parseString(t, c.String()); again.Limits != c.Limits {
				t.Fatalf("Parse(String()).Limits = %+v; want %+v", again.Limits, c.Limits)
			}
		})
	}
}

func TestParseLimitsErrors(t *testing.T) {
	const head = "interface em0\nlisten on 10.0.0.1\n"
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"bare max", "max\n", `portleased.conf:3: max: expected "mappings"`},
		{"max leases", "max leases 5\n", `portleased.conf:3: max: expected "mappings", got "leases"`},
		{"missing number", "max mappings\n", `portleased.conf:3: max mappings: missing number (or none)`},
		{"per without host", "max mappings per 5\n", `portleased.conf:3: max mappings per: expected "host"`},
		{"per host missing number", "max mappings per host\n", `portleased.conf:3: max mappings per host: missing number (or none)`},
		{"zero", "max mappings per host 0\n", `portleased.conf:3: max mappings per host: 0 is not a number of leases (1-2147483647) or none`},
		{"word", "max mappings lots\n", `portleased.conf:3: max mappings: "lots" is not a number of leases (1-2147483647) or none`},
		{"too big", "max mappings 2147483648\n", `portleased.conf:3: max mappings: 2147483648 is not a number of leases (1-2147483647) or none`},
		{"negative", "max mappings -1\n", `portleased.conf:3: max mappings: "-1" is not a number of leases (1-2147483647) or none`},
		{"extra word", "max mappings 5 leases\n", `portleased.conf:3: max mappings: unexpected "leases"`},
		{"twice", "max mappings per host 5\nmax mappings per host 6\n", `portleased.conf:4: max mappings per host: already given at line 3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(file, strings.NewReader(head+tt.src))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Parse(%q) error = %v; want %s", tt.src, err, tt.want)
			}
		})
	}
}

func TestChangedLimits(t *testing.T) {
	const base = "interface wan0\nlisten on lan0\n"
	a := mustParse(t, base)
	for _, tt := range []struct {
		to   string
		want []string
	}{
		{base + "max mappings per host 1024\nmax mappings 65536\n", nil},
		{base + "max mappings per host none\n", []string{DirMaxPerHost}},
		{base + "max mappings 10\n", []string{DirMaxMappings}},
	} {
		if got := Changed(a, mustParse(t, tt.to)); !slices.Equal(got, tt.want) {
			t.Errorf("Changed(base, %q) = %q; want %q", tt.to, got, tt.want)
		}
	}
}
