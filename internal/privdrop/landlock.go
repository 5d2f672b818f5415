package privdrop

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/psx"
)

// writeRights returns the Landlock filesystem rights that change the
// filesystem which version abi of the Landlock ABI knows (landlock(7)):
// writing a file, removing and making every kind of entry from version 1,
// linking or renaming across directories (REFER) from 2, truncating from
// 3. Reading, listing and executing are not among them.
func writeRights(abi int) uint64 {
	if abi < 1 {
		return 0
	}
	r := uint64(unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_REMOVE_DIR |
		unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR |
		unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
		unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_FIFO |
		unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM)
	if abi >= 2 {
		r |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		r |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	return r
}

// LandlockABI returns the version of the Landlock ABI the running kernel
// offers, 0 when it has none: built without it (ENOSYS) or with it left
// out of the LSMs enabled at boot (EOPNOTSUPP).
func LandlockABI() (int, error) {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	switch {
	case errno == unix.ENOSYS || errno == unix.EOPNOTSUPP:
		return 0, nil
	case errno != 0:
		return 0, fmt.Errorf("privdrop: Landlock ABI version: %w", errno)
	}
	return int(v), nil
}

// RestrictWrites confines the process, on every thread, to changing the
// filesystem beneath dir alone ("" for nowhere) with Landlock: every right
// of writeRights that the kernel's ABI knows is handled, and allowed
// beneath dir only; reading stays allowed everywhere. Files opened before
// keep what they were opened for (a PID file can still be truncated
// through its descriptor), and connecting to a Unix socket such as
// /dev/log is not a write. The restriction cannot be undone and is
// inherited by threads started later.
//
// It must follow the drop: without CAP_SYS_ADMIN the kernel requires
// no_new_privs, which Become and Narrow set. It returns the ABI version
// used, 0 (and no error) when the kernel has no Landlock.
func RestrictWrites(dir string) (int, error) {
	abi, err := LandlockABI()
	if err != nil || abi == 0 {
		return 0, err
	}
	rights := writeRights(abi)
	attr := unix.LandlockRulesetAttr{Handled_access_fs: rights}
	// The kernel accepts a larger structure than it knows when the fields
	// it does not know are zero.
	r, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if errno != 0 {
		return 0, fmt.Errorf("privdrop: create Landlock ruleset (ABI %d): %w", abi, errno)
	}
	ruleset := int(r)
	defer unix.Close(ruleset)
	if dir != "" {
		if err := allowBeneath(ruleset, dir, rights); err != nil {
			return 0, err
		}
	}
	// Each thread has its own Landlock domain, as it has its own
	// credentials: psx makes the call on all of them.
	if _, _, errno := psx.Syscall3(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(ruleset), 0, 0); errno != 0 {
		return 0, fmt.Errorf("privdrop: Landlock restrict self: %w", errno)
	}
	return abi, nil
}

// allowBeneath adds to ruleset a rule allowing rights beneath dir.
func allowBeneath(ruleset int, dir string, rights uint64) error {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("privdrop: open %s for its Landlock rule: %w", dir, err)
	}
	defer unix.Close(fd)
	rule := unix.LandlockPathBeneathAttr{Allowed_access: rights, Parent_fd: int32(fd)}
	_, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&rule)), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("privdrop: allow writes beneath %s (Landlock): %w", dir, errno)
	}
	return nil
}
