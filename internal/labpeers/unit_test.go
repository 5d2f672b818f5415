package labpeers

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/internal/privdrop"
)

func TestReadServiceCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portleased.service")
	unit := "[Unit]\nUser=wrong\n[Service]\nType=notify\n# User=commented\nUser=portleased\n" +
		"AmbientCapabilities=CAP_NET_ADMIN\nCapabilityBoundingSet=CAP_NET_ADMIN\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n" +
		"NoNewPrivileges=yes\n[Install]\nWantedBy=multi-user.target\n"
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadServiceCredentials(path)
	if err != nil {
		t.Fatal(err)
	}
	want := ServiceCredentials{User: "portleased", Ambient: []string{"CAP_NET_ADMIN"},
		Bounding: []string{"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"}, NoNewPrivileges: true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadServiceCredentials = %+v; want %+v", got, want)
	}
	args, err := got.setprivArgs()
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"--reuid=portleased", "--regid=portleased", "--init-groups", "--inh-caps=-all,+net_admin",
		"--ambient-caps=-all,+net_admin", "--bounding-set=-all,+net_admin,+net_bind_service", "--no-new-privs", "--"}
	if !reflect.DeepEqual(args, wantArgs) {
		t.Errorf("setpriv arguments %q; want %q", args, wantArgs)
	}
	if m := got.boundingMask(); m != 0x1400 {
		t.Errorf("bounding set %#x; want 0x1400", m)
	}
}

// TestBoundingAfter: started with CAP_SETPCAP, portleased narrows its
// bounding set to what it keeps; without it, the unit's stays.
func TestBoundingAfter(t *testing.T) {
	unit := ServiceCredentials{User: "portleased", Ambient: []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SETPCAP"},
		Bounding: []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SETPCAP"}}
	nft := privdrop.Options{}
	legacy := privdrop.Options{Programs: privdrop.RawSocketPrograms}
	if got := unit.boundingAfter(nft); got != 0x1000 {
		t.Errorf("nftables under a unit with CAP_SETPCAP: bounding %#x; want 0x1000", got)
	}
	if got := unit.boundingAfter(legacy); got != 0x3000 {
		t.Errorf("iptables-legacy under a unit with CAP_SETPCAP: bounding %#x; want 0x3000", got)
	}
	unit.Ambient = unit.Ambient[:2]
	if got := unit.boundingAfter(nft); got != 0x3100 {
		t.Errorf("nftables under a unit without CAP_SETPCAP: bounding %#x; want the unit's 0x3100", got)
	}
}

// TestFirewallBackend: the backend is read from portleased's one
// "firewall backend" line, and must be the configured one unless auto.
func TestFirewallBackend(t *testing.T) {
	const line = `time=x level=INFO msg="firewall backend" backend=iptables-legacy reason="auto: iptables-legacy rules are loaded (nat)"` + "\n"
	if got, err := firewallBackend("a\n"+line+"b\n", config.FirewallAuto); err != nil || got != "iptables-legacy" {
		t.Errorf("firewallBackend = %q, %v; want iptables-legacy", got, err)
	}
	if got, err := firewallBackend(line, config.FirewallIptablesLegacy); err != nil || got != "iptables-legacy" {
		t.Errorf("firewallBackend configured = %q, %v; want iptables-legacy", got, err)
	}
	for _, tc := range []struct {
		name, log string
		cfg       config.Firewall
	}{
		{"no line", "msg=other\n", config.FirewallAuto},
		{"two lines", line + line, config.FirewallAuto},
		{"not the configured one", line, config.FirewallNftables},
	} {
		if got, err := firewallBackend(tc.log, tc.cfg); err == nil {
			t.Errorf("%s: firewallBackend = %q; want an error", tc.name, got)
		}
	}
}
