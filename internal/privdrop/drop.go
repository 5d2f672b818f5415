package privdrop

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// Options says what the process keeps besides CAP_NET_ADMIN.
type Options struct {
	// BindService keeps CAP_NET_BIND_SERVICE, for a configured port below
	// 1024 (the UPnP HTTP port); every other port portleased opens is above.
	BindService bool
}

// Kept returns the capabilities a process dropped with o holds: its
// permitted, effective and bounding sets.
func (o Options) Kept() []cap.Value {
	keep := []cap.Value{cap.NET_ADMIN}
	if o.BindService {
		keep = append(keep, cap.NET_BIND_SERVICE)
	}
	return keep
}

// Become turns a process running as root into one running as acct, on
// every thread: its supplementary groups only acct's primary group, real,
// effective and saved gid and uid acct's, the capabilities of o alone in
// its permitted, effective and bounding sets, none inheritable or ambient,
// and no_new_privs set, so that no execve gives any back.
func Become(acct Account, o Options) error {
	if acct.UID == 0 {
		return fmt.Errorf("privdrop: user %q has uid 0", acct.Name)
	}
	keep := o.Kept()
	// The bounding set first: dropping from it needs CAP_SETPCAP, which
	// goes with the uid.
	if err := dropBounding(keep); err != nil {
		return err
	}
	if err := cap.SetGroups(acct.GID, acct.GID); err != nil {
		return fmt.Errorf("privdrop: set gid and groups to %d: %w", acct.GID, err)
	}
	// SetUID keeps the permitted set across the change of uid
	// (PR_SET_KEEPCAPS), so that restrict can keep CAP_NET_ADMIN.
	if err := cap.SetUID(acct.UID); err != nil {
		return fmt.Errorf("privdrop: set uid to %d (%s): %w", acct.UID, acct.Name, err)
	}
	if err := restrict(keep); err != nil {
		return err
	}
	return verify(keep)
}

// Narrow is Become for a process started as a non-root user, such as by
// systemd with User= and AmbientCapabilities=CAP_NET_ADMIN: the uid stays;
// the capabilities of o must be permitted (an error names what is
// missing), every other one goes, and no_new_privs is set. The bounding
// set is reduced only when CAP_SETPCAP allows it (systemd's
// CapabilityBoundingSet= does it before the start).
func Narrow(o Options) error {
	keep := o.Kept()
	have := cap.GetProc()
	for _, v := range keep {
		if ok, err := have.GetFlag(cap.Permitted, v); err != nil || !ok {
			return fmt.Errorf("privdrop: started as uid %d without %s: start portleased as root, or give it the capability (systemd: AmbientCapabilities=%s)",
				os.Getuid(), capName(v), capName(v))
		}
	}
	if ok, _ := have.GetFlag(cap.Permitted, cap.SETPCAP); ok {
		if err := raise(have, cap.SETPCAP); err != nil {
			return err
		}
		if err := dropBounding(keep); err != nil {
			return err
		}
	}
	if err := restrict(keep); err != nil {
		return err
	}
	return verify(keep)
}

// raise adds v to the effective set of the process with capabilities have.
func raise(have *cap.Set, v cap.Value) error {
	c, err := have.Dup()
	if err != nil {
		return fmt.Errorf("privdrop: %w", err)
	}
	if err := c.SetFlag(cap.Effective, true, v); err != nil {
		return fmt.Errorf("privdrop: raise %s: %w", capName(v), err)
	}
	if err := c.SetProc(); err != nil {
		return fmt.Errorf("privdrop: raise %s: %w", capName(v), err)
	}
	return nil
}

// dropBounding removes from the bounding set every capability but keep.
func dropBounding(keep []cap.Value) error {
	for v := range cap.MaxBits() {
		if slices.Contains(keep, v) {
			continue
		}
		if err := cap.DropBound(v); err != nil {
			return fmt.Errorf("privdrop: drop %s from the bounding set: %w", capName(v), err)
		}
	}
	return nil
}

// restrict leaves the process keep permitted and effective, nothing
// inheritable or ambient, and sets no_new_privs, on every thread.
func restrict(keep []cap.Value) error {
	c := cap.NewSet()
	if err := c.SetFlag(cap.Permitted, true, keep...); err != nil {
		return fmt.Errorf("privdrop: %w", err)
	}
	if err := c.SetFlag(cap.Effective, true, keep...); err != nil {
		return fmt.Errorf("privdrop: %w", err)
	}
	if err := c.SetProc(); err != nil {
		return fmt.Errorf("privdrop: set capabilities to %s: %w", c, err)
	}
	if err := cap.ResetAmbient(); err != nil {
		return fmt.Errorf("privdrop: clear the ambient set: %w", err)
	}
	if _, err := cap.Prctlw(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
		return fmt.Errorf("privdrop: set no_new_privs: %w", err)
	}
	return nil
}

// verify checks, on the calling thread, that the process is not root and
// holds keep and nothing else; psx made the same changes on the others.
func verify(keep []cap.Value) error {
	if os.Geteuid() == 0 || os.Getuid() == 0 {
		return fmt.Errorf("privdrop: still uid %d, euid %d after the drop", os.Getuid(), os.Geteuid())
	}
	want := cap.NewSet()
	_ = want.SetFlag(cap.Permitted, true, keep...)
	_ = want.SetFlag(cap.Effective, true, keep...)
	got := cap.GetProc()
	if diff, err := got.Cf(want); err != nil || diff != 0 {
		return fmt.Errorf("privdrop: capabilities %s after the drop, want %s", got, want)
	}
	return nil
}

// capName returns the upper-case name of v, as capabilities(7) and
// systemd write it.
func capName(v cap.Value) string {
	return strings.ToUpper(v.String())
}
