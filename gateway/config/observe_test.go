package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestObserve(t *testing.T) {
	c := parseString(t, "interface em0\nlisten on em1\ncontrol socket /run/pl/ctl\nmetrics listen 192.168.1.1:9380\n"+
		"status page admin on\nstatus page token 0123456789abcdefXYZ\n")
	want := Observe{ControlSocket: "/run/pl/ctl", ControlSocketLine: 3, MetricsListen: netip.MustParseAddrPort("192.168.1.1:9380"), MetricsLine: 4,
		StatusPage: true, StatusAdmin: true, StatusToken: "0123456789abcdefXYZ", StatusLine: 6}
	if c.Observe != want {
		t.Errorf("Observe = %+v; want %+v", c.Observe, want)
	}
	if c := parseString(t, "interface em0\nlisten on em1\ncontrol socket none\nstatus page off\n"); c.Observe.ControlSocket != "" || c.Observe.StatusPage {
		t.Errorf("none/off: %+v", c.Observe)
	}
	for src, want := range map[string]string{
		"control socket run/ctl\n":               `x.conf:3: control socket: "run/ctl" is not an absolute path`,
		"metrics listen 0.0.0.0:9380\n":          `x.conf:3: metrics listen: "0.0.0.0:9380": want one address and a port`,
		"metrics listen 192.168.1.1\n":           `x.conf:3: metrics listen: "192.168.1.1": want one address and a port`,
		"status page maybe\n":                    `x.conf:3: status page: unknown setting "maybe"`,
		"status page admin yes\n":                `x.conf:3: status page admin: "yes": want on or off`,
		"status page token short\n":              "x.conf:3: status page token: want at least 16 printable characters",
		"status page admin on\n":                 "x.conf: status page admin on needs a status page token",
		"status page token 0123456789abcdef x\n": `x.conf:3: status page token: unexpected "x"`,
	} {
		_, err := Parse("x.conf", strings.NewReader("interface em0\nlisten on em1\n"+src))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: error %v; want %s...", src, err, want)
		}
	}
}
