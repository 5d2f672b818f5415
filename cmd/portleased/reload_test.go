package main

import (
	"strings"
	"testing"

	"github.com/portlease/portlease/gateway/config"
)

// TestRestartOnly: a reload is refused for each directive that cannot
// change while running, named with file:line, and for nothing else.
func TestRestartOnly(t *testing.T) {
	const running = "interface wan0\nlisten on lan0\n"
	// Links as the lab has them: lan0 and lan1 exist, 198.51.100.2 is on lan0.
	links := func(_ *config.Config, l config.Listen) []string {
		switch l.String() {
		case "lan0", "198.51.100.2":
			return []string{"lan0"}
		case "lan1":
			return []string{"lan1"}
		}
		return nil
	}
	tests := []struct {
		name string
		next string
		want []string // each refusal's beginning, in order
	}{
		{"nothing", running, nil},
		{"upnp and rules", running + "upnp secure mode off\nupnp version 1\nallow 1024-65535 198.51.100.0/24 1024-65535\n", nil},
		{"another address of a served link", "interface wan0\nlisten on 198.51.100.2\n", nil},
		{"interface", "interface wan1\nlisten on lan0\n", []string{"f.conf:1: interface wan1:"}},
		{"a new link", "interface wan0\nlisten on lan0\n\nlisten on lan1\n", []string{"f.conf:4: listen on lan1:"}},
		{"state file", running + "state file none\n", []string{"f.conf:3: state file:"}},
		{"all three", "listen on lan1\ninterface wan1\nlisten on lan0\nstate file none\n",
			[]string{"f.conf:2: interface wan1:", "f.conf:1: listen on lan1:", "f.conf:4: state file:"}},
	}
	run := parseConf(t, running)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := restartOnly("f.conf", run, parseConf(t, tt.next), []string{"lan0"}, links)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if len(got) != len(tt.want) {
				t.Fatalf("restartOnly = %q; want refusals starting %q", got, tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("refusal %d = %q; want it to start %q", i, got[i], tt.want[i])
				}
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
