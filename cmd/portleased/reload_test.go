package main

import (
	"strings"
	"testing"

	"github.com/portlease/portlease/gateway/config"
)

// TestRestartOnly: a reload is refused, naming the line, for the state
// file, the user, the firewall backend, the control socket, the metrics
// address and the status page only; the external interface and new LAN
// links change in place.
func TestRestartOnly(t *testing.T) {
	const running = "interface wan0\nlisten on lan0\n"
	tests := []struct {
		name string
		next string
		want string // the refusal's beginning, or "" for none
	}{
		{"nothing", running, ""},
		{"upnp and rules", running + "upnp secure mode off\nupnp version 1\nallow 1024-65535 198.51.100.0/24 1024-65535\n", ""},
		{"interface", "interface wan1\nlisten on lan0\n", ""},
		{"a new link", "interface wan0\nlisten on lan0\n\nlisten on lan1\n", ""},
		{"state file", running + "state file none\n", "f.conf:3: state file:"},
		{"user", running + "user nobody\n", "f.conf:3: user:"},
		{"firewall", running + "firewall iptables-legacy\n", "f.conf:3: firewall: the firewall backend changes only at a restart (running: firewall auto)"},
		{"firewall auto written out", running + "firewall auto\n", ""},
		{"control socket", running + "control socket /run/other\n", "f.conf:3: control socket: the control socket changes only at a restart"},
		{"metrics listen", running + "metrics listen 127.0.0.1:9380\n", "f.conf:3: metrics listen: the metrics address changes only at a restart"},
		{"status page", running + "status page off\n", "f.conf:3: status page: the status page's settings change only at a restart"},
		{"status page as it was", running + "status page on\nstatus page admin off\n", ""},
		{"all three", "listen on lan1\ninterface wan1\nlisten on lan0\nstate file none\n", "f.conf:4: state file:"},
	}
	run := parseConf(t, running)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := restartOnly("f.conf", run, parseConf(t, tt.next))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("restartOnly = %v; want no refusal", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("restartOnly = %v; want a refusal starting %q", err, tt.want)
			}
		})
	}
}

func parseConf(t *testing.T, src string) *config.Config {
	t.Helper()
	c, err := config.Parse("f.conf", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
