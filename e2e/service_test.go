package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// serviceUnit is the systemd unit of portleased, relative to this package.
const serviceUnit = "../dist/systemd/portleased.service"

// TestStartedLikeTheUnit: portleased started as the systemd unit starts it,
// without systemd — already its user, with the unit's ambient capabilities,
// bounding set and no_new_privs, its state directory made beforehand and
// owned by the user (StateDirectory=) — serves: natpmpc gets a mapping, the
// kernel holds it, and it survives a restart through the state file. Start
// checks that every thread has CAP_NET_ADMIN alone.
func TestStartedLikeTheUnit(t *testing.T) {
	t.Parallel()
	creds := labpeers.DefaultServiceCredentials()
	if _, err := os.Stat(serviceUnit); err == nil {
		if creds, err = labpeers.ReadServiceCredentials(serviceUnit); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("%s: %v; using the settings issue 11 gives it", serviceUnit, err)
	}
	lab := netlab.New(t, netlab.Config{})
	dir := labpeers.StateDir(t)
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Dir: dir, StateFile: filepath.Join(dir, "leases"), Service: &creds})
	if !strings.Contains(d.Log(), "privileges dropped") {
		t.Errorf("portleased did not log its drop:\n%s", d.Log())
	}
	eport := natpmpcMap(t, lab, lab.LAN[0], 6450, 6450, "tcp", 3600)
	const greeting = "hello through the unit's daemon"
	serveTCP(t, lab.LAN[0], 6450, greeting)
	reach := func(what string) {
		t.Helper()
		addr := lab.GatewayWANAddr4.String() + ":" + strconv.Itoa(eport)
		if got, err := fetchTCP(lab.WAN, addr); err != nil || got != greeting {
			t.Fatalf("%s: the WAN host through %s got %q, %v; want %q", what, addr, got, err, greeting)
		}
	}
	reach("after the mapping")
	if err := d.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	reach("after a restart")
}
