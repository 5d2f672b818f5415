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
	// Programs is what the firewall programs the process runs need.
	Programs Programs
}

// Programs says which capabilities the firewall programs a process runs
// (iptables-restore, iptables-save) must get from it. A program started
// by a process that is not root has no capability unless the process
// holds it inheritable and ambient (capabilities(7): "Transformation of
// capabilities during execve()"); no_new_privs keeps file capabilities
// from giving any.
type Programs int

// The programs of each firewall backend.
const (
	// NoPrograms: nftables, which the process drives over netlink itself.
	NoPrograms Programs = iota
	// NetAdminPrograms: iptables-nft's, which reach nf_tables over
	// netlink (CAP_NET_ADMIN).
	NetAdminPrograms
	// RawSocketPrograms: iptables-legacy's, which read and replace the
	// x_tables tables through the socket options of a raw socket
	// (CAP_NET_RAW to open it, CAP_NET_ADMIN for the tables).
	RawSocketPrograms
)

// ProgramsOf returns what the programs of the firewall backend named
// backend (as portleased logs it: nftables, iptables-nft, iptables-legacy,
// iptables) need. "iptables", the system's iptables-restore, may be
// either variant and gets what iptables-legacy needs.
func ProgramsOf(backend string) Programs {
	switch backend {
	case "iptables-nft":
		return NetAdminPrograms
	case "iptables-legacy", "iptables":
		return RawSocketPrograms
	}
	return NoPrograms
}

// Kept returns the capabilities a process dropped with o holds: its
// permitted, effective and bounding sets.
func (o Options) Kept() []cap.Value {
	keep := []cap.Value{cap.NET_ADMIN}
	if o.BindService {
		keep = append(keep, cap.NET_BIND_SERVICE)
	}
	if o.Programs == RawSocketPrograms {
		keep = append(keep, cap.NET_RAW)
	}
	return keep
}

// Inherited returns the capabilities a process dropped with o holds in its
// inheritable and ambient sets, which the programs it runs get: those of
// o.Programs, none for NoPrograms.
func (o Options) Inherited() []cap.Value {
	switch o.Programs {
	case NetAdminPrograms:
		return []cap.Value{cap.NET_ADMIN}
	case RawSocketPrograms:
		return []cap.Value{cap.NET_ADMIN, cap.NET_RAW}
	}
	return nil
}

// Become turns a process running as root into one running as acct, on
// every thread: its supplementary groups only acct's primary group, real,
// effective and saved gid and uid acct's, the capabilities of o alone in
// its permitted, effective and bounding sets, o.Inherited() alone
// inheritable and ambient, and no_new_privs set, so that no execve gives
// any back.
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
	if err := restrict(keep, o.Inherited()); err != nil {
		return err
	}
	return verify(keep, o.Inherited())
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
	if err := restrict(keep, o.Inherited()); err != nil {
		return err
	}
	return verify(keep, o.Inherited())
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

// restrict leaves the process keep permitted and effective, inherit (a
// part of keep) inheritable and ambient and nothing else, and sets
// no_new_privs, on every thread. A capability is raised in the ambient set
// only once it is permitted and inheritable (prctl(2) PR_CAP_AMBIENT).
func restrict(keep, inherit []cap.Value) error {
	c := cap.NewSet()
	if err := c.SetFlag(cap.Permitted, true, keep...); err != nil {
		return fmt.Errorf("privdrop: %w", err)
	}
	if err := c.SetFlag(cap.Effective, true, keep...); err != nil {
		return fmt.Errorf("privdrop: %w", err)
	}
	if err := c.SetFlag(cap.Inheritable, true, inherit...); err != nil {
		return fmt.Errorf("privdrop: %w", err)
	}
	if err := c.SetProc(); err != nil {
		return fmt.Errorf("privdrop: set capabilities to %s: %w", c, err)
	}
	if err := cap.ResetAmbient(); err != nil {
		return fmt.Errorf("privdrop: clear the ambient set: %w", err)
	}
	if len(inherit) > 0 {
		if err := cap.SetAmbient(true, inherit...); err != nil {
			return fmt.Errorf("privdrop: raise %s in the ambient set: %w", capNames(inherit), err)
		}
	}
	if _, err := cap.Prctlw(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
		return fmt.Errorf("privdrop: set no_new_privs: %w", err)
	}
	return nil
}

// verify checks, on the calling thread, that the process is not root,
// holds keep and nothing else, and inherit alone inheritable and ambient;
// psx made the same changes on the others.
func verify(keep, inherit []cap.Value) error {
	if os.Geteuid() == 0 || os.Getuid() == 0 {
		return fmt.Errorf("privdrop: still uid %d, euid %d after the drop", os.Getuid(), os.Geteuid())
	}
	want := cap.NewSet()
	_ = want.SetFlag(cap.Permitted, true, keep...)
	_ = want.SetFlag(cap.Effective, true, keep...)
	_ = want.SetFlag(cap.Inheritable, true, inherit...)
	got := cap.GetProc()
	if diff, err := got.Cf(want); err != nil || diff != 0 {
		return fmt.Errorf("privdrop: capabilities %s after the drop, want %s", got, want)
	}
	for v := range cap.MaxBits() {
		on, err := cap.GetAmbient(v)
		if err != nil {
			return fmt.Errorf("privdrop: read the ambient set: %w", err)
		}
		if on != slices.Contains(inherit, v) {
			return fmt.Errorf("privdrop: %s ambient: %v after the drop, want %v", capName(v), on, !on)
		}
	}
	return nil
}

// capNames returns the upper-case names of vs, comma-separated.
func capNames(vs []cap.Value) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = capName(v)
	}
	return strings.Join(names, ",")
}

// capName returns the upper-case name of v, as capabilities(7) and
// systemd write it.
func capName(v cap.Value) string {
	return strings.ToUpper(v.String())
}
