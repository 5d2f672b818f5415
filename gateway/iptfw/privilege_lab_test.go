package iptfw

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"golang.org/x/sys/unix"
)

// TestUnprivilegedPrograms runs the iptables programs as an unprivileged
// user with ambient capabilities, as portleased runs them after dropping
// root, and checks what the package doc says each variant needs:
// CAP_NET_ADMIN for nft; CAP_NET_ADMIN, CAP_NET_RAW and a lock file it
// can open (XTABLES_LOCKFILE) for legacy.
func TestUnprivilegedPrograms(t *testing.T) {
	lab, _ := labFirewall(t, Legacy)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("no setpriv: %v", err)
	}
	// t.TempDir's parent is closed to other users.
	dir, err := os.MkdirTemp("", "iptfw-lock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(dir, "xtables.lock")
	for _, tc := range []struct {
		variant Variant
		caps    string
		lock    string
		works   bool
	}{
		{NFT, "+net_admin", "", true},
		{Legacy, "+net_admin", private, false},
		{Legacy, "+net_admin,+net_raw", "", false}, // cannot open /run/xtables.lock
		{Legacy, "+net_admin,+net_raw", private, true},
	} {
		name := string(tc.variant) + " " + tc.caps + " lock=" + tc.lock
		input := "*nat\n:PORTLEASE-PROBE - [0:0]\n-A PORTLEASE-PROBE -p tcp -m tcp --dport 1 -j DNAT --to-destination 198.51.100.10:1\nCOMMIT\n"
		args := []string{"env"}
		if tc.lock != "" {
			args = append(args, "XTABLES_LOCKFILE="+tc.lock)
		}
		args = append(args, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps="+tc.caps, "--ambient-caps="+tc.caps, "--bounding-set="+tc.caps)
		restore := lab.Gateway.Command(t.Context(), args[0], append(args[1:], "iptables-"+string(tc.variant)+"-restore", "--noflush")...)
		restore.Stdin = strings.NewReader(input)
		out, err := restore.CombinedOutput()
		if (err == nil) != tc.works {
			t.Errorf("%s: restore error %v (%s), want success %v", name, err, out, tc.works)
		}
		save := lab.Gateway.Command(t.Context(), args[0], append(args[1:], "iptables-"+string(tc.variant)+"-save", "-t", "nat")...)
		out, err = save.CombinedOutput()
		if tc.works && (err != nil || !strings.Contains(string(out), "PORTLEASE-PROBE")) {
			t.Errorf("%s: save: %v: %s", name, err, out)
		}
		if tc.works {
			gw(t, lab, tc.variant, "iptables", "-t", "nat", "-F", "PORTLEASE-PROBE")
			gw(t, lab, tc.variant, "iptables", "-t", "nat", "-X", "PORTLEASE-PROBE")
		}
	}
}

// TestXtablesLock checks that with Config.XtablesLock a legacy restore
// waits for the lock another program holds, and that the programs take
// the private lock file meanwhile.
func TestXtablesLock(t *testing.T) {
	lab, netns := labFirewall(t, Legacy)
	dir := t.TempDir()
	system, err := os.OpenFile(filepath.Join(dir, "system.lock"), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer system.Close()
	f, err := New(Config{Variant: Legacy, ExternalInterface: lab.GatewayWANLink, NetNS: netns,
		XtablesLock: system, LockFile: filepath.Join(dir, "private.lock")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := os.Stat(filepath.Join(dir, "private.lock")); err != nil {
		t.Errorf("the programs did not take the private lock file: %v", err)
	}
	other, err := os.Open(system.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := unix.Flock(int(other.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- f.Apply(t.Context(), []gateway.Mapping{mapping(gateway.TCP, 40080, "198.51.100.10:8080")}, nil)
	}()
	select {
	case err := <-done:
		t.Fatalf("Apply ran while another program held the xtables lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := unix.Flock(int(other.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Apply did not run within 10 s of the lock's release")
	}
}
