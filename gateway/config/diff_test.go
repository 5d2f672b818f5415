package config

import (
	"slices"
	"strings"
	"testing"
)

func TestChanged(t *testing.T) {
	const base = "interface wan0\nlisten on lan0\nlisten on 198.51.100.1\nallow 1024-65535 198.51.100.0/24 1024-65535\n"
	tests := []struct {
		name string
		to   string
		want []string
	}{
		{"nothing", base, nil},
		{"comments, blank lines and line numbers", "# moved\n\n" + base, nil},
		{"listen order and repeats", "interface wan0\nlisten on 198.51.100.1\nlisten on lan0\nlisten on lan0\nallow 1024-65535 198.51.100.0/24 1024-65535\n", nil},
		{"defaults written out", base + "upnp on\nupnp secure mode on\nupnp version 2\nport range 1024-65535\n", nil},
		{"interface", strings.Replace(base, "wan0", "wan1", 1), []string{DirInterface}},
		{"listen on added", base + "listen on lan1\n", []string{DirListen}},
		{"listen on removed", "interface wan0\nlisten on lan0\nallow 1024-65535 198.51.100.0/24 1024-65535\n", []string{DirListen}},
		{"port range", base + "port range 2000-3000\n", []string{DirPortRange}},
		{"lifetime", base + "lifetime max 600\n", []string{DirLifetime}},
		{"rule order", base + "deny 1-65535 0.0.0.0/0 1-65535\n", []string{DirRules}},
		{"secure mode", base + "upnp secure mode off\n", []string{DirSecureMode}},
		{"every upnp directive", base + "upnp off\nupnp friendly name gw\nupnp http port 5001\nupnp notify interval 60\nupnp secure mode off\nupnp version 1\n",
			[]string{DirUPnP, DirFriendlyName, DirHTTPPort, DirNotifyInterval, DirSecureMode, DirUPnPVersion}},
		{"state file", base + "state file none\n", []string{DirStateFile}},
		{"upnp hostname and connections", base + "upnp hostname router.lan\nupnp max connections per host 4\n", []string{DirUPnPHostname, DirUPnPMaxConns}},
		{"connections per host written out", base + "upnp max connections per host 16\n", nil},
		// A maximum below PCP's default minimum lowers the minimum too.
		{"several", strings.Replace(base, "wan0", "wan1", 1) + "lifetime max 60\nupnp version 1\n", []string{DirInterface, DirLifetime, DirUPnPVersion, DirPCPMinLifetime}},
		{"pcp lifetime min", base + "pcp lifetime min 30\n", []string{DirPCPMinLifetime}},
		{"request rate", base + "request rate per host none\n", []string{DirRequestRate}},
	}
	a := mustParse(t, base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustParse(t, tt.to)
			if got := Changed(a, b); !slices.Equal(got, tt.want) {
				t.Errorf("Changed(base, %q) = %q; want %q", tt.to, got, tt.want)
			}
			if got := Changed(b, a); !slices.Equal(got, tt.want) {
				t.Errorf("Changed(%q, base) = %q; want %q", tt.to, got, tt.want)
			}
		})
	}
}

func TestStateFileLine(t *testing.T) {
	c := mustParse(t, "interface wan0\nlisten on lan0\n\nstate file /var/tmp/leases\n")
	if c.StateFileLine != 4 {
		t.Errorf("StateFileLine = %d; want 4", c.StateFileLine)
	}
}

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("test.conf", strings.NewReader(src))
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return c
}
