package labpeers

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/internal/privdrop"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// ServiceUser is the user portleased drops to in the lab, its default.
const ServiceUser = config.DefaultUser

// ServiceAccount returns the account of ServiceUser; a missing user is an
// error saying how to create it.
func ServiceAccount() (privdrop.Account, error) {
	a, err := privdrop.Lookup(ServiceUser)
	if err != nil {
		return a, fmt.Errorf("labpeers: %w (scripts/add-user.sh does it; make deps runs it)", err)
	}
	return a, nil
}

// StateDir returns a new directory for portleased's configuration and state
// file that ServiceUser can reach and write, as the daemon must after its
// privilege drop: t.TempDir() lies under a directory only root may enter.
// It is owned by ServiceUser, mode 0750, and removed when the test ends.
func StateDir(t testing.TB) string {
	t.Helper()
	dir, err := NewStateDir("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("labpeers: remove state directory: %v", err)
		}
	})
	return dir
}

// NewStateDir is StateDir for a program: it makes the directory in parent
// ("" for the default directory of temporary files), and the caller
// removes it.
func NewStateDir(parent string) (string, error) {
	acct, err := ServiceAccount()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(parent, "portleased-lab-")
	if err != nil {
		return "", fmt.Errorf("labpeers: state directory: %w", err)
	}
	if err := errors.Join(os.Chmod(dir, 0o750), os.Chown(dir, acct.UID, acct.GID)); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("labpeers: state directory: %w", err)
	}
	return dir, nil
}

// GiveToService hands path (a file a test wrote as root, such as a damaged
// state file) to ServiceUser, so that portleased may rewrite it after its
// drop.
func GiveToService(path string) error {
	acct, err := ServiceAccount()
	if err != nil {
		return err
	}
	if err := os.Chown(path, acct.UID, acct.GID); err != nil {
		return fmt.Errorf("labpeers: %w", err)
	}
	return nil
}

// ServiceCredentials starts portleased as a systemd unit does, without
// systemd: through setpriv(1), as User with AmbientCapabilities (also made
// inheritable, which ambient capabilities need), CapabilityBoundingSet and
// NoNewPrivileges. Capabilities are named as systemd names them
// (CAP_NET_ADMIN).
type ServiceCredentials struct {
	User            string
	Ambient         []string
	Bounding        []string
	NoNewPrivileges bool
}

// setprivArgs returns the command line that runs binary as c says.
func (c ServiceCredentials) setprivArgs() ([]string, error) {
	ambient, err := setprivCaps(c.Ambient)
	if err != nil {
		return nil, err
	}
	bounding, err := setprivCaps(c.Bounding)
	if err != nil {
		return nil, err
	}
	args := []string{"--reuid=" + c.User, "--regid=" + c.User, "--init-groups",
		"--inh-caps=" + ambient, "--ambient-caps=" + ambient, "--bounding-set=" + bounding}
	if c.NoNewPrivileges {
		args = append(args, "--no-new-privs")
	}
	return append(args, "--"), nil
}

// setprivCaps returns "-all,+net_admin,..." for names like CAP_NET_ADMIN.
func setprivCaps(names []string) (string, error) {
	s := "-all"
	for _, n := range names {
		if _, err := cap.FromName(strings.ToLower(n)); err != nil {
			return "", fmt.Errorf("labpeers: capability %q: %w", n, err)
		}
		s += ",+" + strings.ToLower(strings.TrimPrefix(n, "CAP_"))
	}
	return s, nil
}

// boundingMask returns the bounding set c leaves portleased.
func (c ServiceCredentials) boundingMask() uint64 {
	var m uint64
	for _, n := range c.Bounding {
		if v, err := cap.FromName(strings.ToLower(n)); err == nil {
			m |= privdrop.MaskOf(v)
		}
	}
	return m
}

// boundingAfter returns the bounding set portleased started with c and
// dropped with o has: c's, or o's alone when c gives it CAP_SETPCAP
// (ambient), with which it narrows the bounding set itself
// (privdrop.Narrow).
func (c ServiceCredentials) boundingAfter(o privdrop.Options) uint64 {
	if slices.Contains(c.Ambient, "CAP_SETPCAP") {
		return o.Mask() & c.boundingMask()
	}
	return c.boundingMask()
}

// checkDropped checks that portleased, process pid, which logged log since
// its start, has dropped its privileges on every thread: /proc/PID/task/*/status
// shows non-zero uids, CAP_NET_ADMIN alone (and CAP_NET_BIND_SERVICE when
// its configuration's UPnP port is below 1024; CAP_NET_RAW with an
// iptables backend that may be iptables-legacy) permitted and effective,
// inheritable and ambient what the programs of its firewall backend need
// (privdrop.ProgramsOf: nothing for nftables), the bounding set expected,
// and NoNewPrivs. The backend is the one its log names, once (see
// firewallBackend).
func (p *Portleased) checkDropped(pid int, log string) error {
	cfg, err := config.ParseFile(p.confPath)
	if err != nil {
		return fmt.Errorf("labpeers: %w", err)
	}
	backend, err := firewallBackend(log, cfg.Firewall)
	if err != nil {
		return err
	}
	o := privdrop.Options{BindService: cfg.UPnP.PrivilegedPort(), Programs: privdrop.ProgramsOf(backend)}
	bounding := o.Mask()
	if p.cfg.Service != nil {
		bounding = p.cfg.Service.boundingAfter(o)
	}
	threads, err := privdrop.ReadThreads(pid)
	if err != nil {
		return fmt.Errorf("labpeers: portleased: %w", err)
	}
	if err := privdrop.CheckThreads(threads, o, bounding); err != nil {
		return fmt.Errorf("labpeers: portleased serving with privileges: %w", err)
	}
	return nil
}

// firewallBackend returns the backend portleased's log names in its one
// line msg="firewall backend" backend=NAME reason="..."; a log without
// that line or with more than one, or naming another backend than the
// configuration's firewall directive (when not auto), is an error.
func firewallBackend(log string, configured config.Firewall) (string, error) {
	const line = `msg="firewall backend" backend=`
	if n := strings.Count(log, line); n != 1 {
		return "", fmt.Errorf("labpeers: portleased logged %d lines %s...; want one", n, line)
	}
	rest := log[strings.Index(log, line)+len(line):]
	backend, _, _ := strings.Cut(rest, " ")
	if configured != config.FirewallAuto && backend != string(configured) {
		return "", fmt.Errorf("labpeers: portleased runs the firewall backend %q; its configuration says %q", backend, configured)
	}
	return backend, nil
}

// portleasedRestricted is what portleased logs once Landlock confines its
// writes to the state directory.
const portleasedRestricted = `msg="filesystem restricted"`

// checkRestricted checks that a portleased run with log has confined its
// writes with Landlock, where the kernel has it. /proc shows no Landlock
// domain, so the daemon's word is read here; privdrop's tests show that
// the restriction holds on every thread.
func checkRestricted(log string) error {
	abi, err := privdrop.LandlockABI()
	if err != nil {
		return fmt.Errorf("labpeers: %w", err)
	}
	if abi > 0 && !strings.Contains(log, portleasedRestricted) {
		return fmt.Errorf("labpeers: portleased serving without restricting its writes (the kernel has Landlock ABI %d): not logged %s", abi, portleasedRestricted)
	}
	return nil
}
