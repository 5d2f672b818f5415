package privdrop

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// DefaultStateDir is the directory of the default state file: portleased's
// own, so that PrepareStateDir may take it over.
const DefaultStateDir = "/var/lib/portleased"

// StateDirMode is the mode of a state directory PrepareStateDir creates.
const StateDirMode fs.FileMode = 0o750

// PrepareStateDir makes the directory of the state file stateFile one that
// acct can keep it in, before the drop (run as root):
//   - a directory that does not exist is created (its parents 0755, as
//     root), owned by acct and its group, mode 0750;
//   - DefaultStateDir, portleased's by definition, is given to acct with
//     the files in it when it belongs to someone else (a root-run version
//     left it);
//   - any other directory must already let acct reach it, create, rename
//     and remove files in it, and read and write the state file if it
//     exists; if not, the error names the path, its owner and mode, the
//     user, and the fix.
//
// Access control lists are not read: the check uses the owner, group and
// mode alone, which may refuse a directory an ACL opens.
func PrepareStateDir(stateFile string, acct Account) error {
	return prepareStateDir(stateFile, DefaultStateDir, acct)
}

// prepareStateDir is PrepareStateDir with ownDir the directory that is
// portleased's own.
func prepareStateDir(stateFile, ownDir string, acct Account) error {
	dir := filepath.Dir(filepath.Clean(stateFile))
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createStateDir(dir, acct)
	case err != nil:
		return fmt.Errorf("privdrop: state directory: %w", err)
	case !info.IsDir():
		return fmt.Errorf("privdrop: state directory %s is not a directory", dir)
	}
	if dir == ownDir && ownerOf(info) != acct.UID {
		if err := chownTree(dir, acct); err != nil {
			return err
		}
	}
	return checkReachable(dir, stateFile, acct)
}

// createStateDir creates dir for acct.
func createStateDir(dir string, acct Account) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("privdrop: state directory: %w", err)
	}
	if err := os.Mkdir(dir, StateDirMode); err != nil {
		return fmt.Errorf("privdrop: state directory: %w", err)
	}
	// Mkdir's mode passes through the umask; the owner's bits must not.
	if err := os.Chmod(dir, StateDirMode); err != nil {
		return fmt.Errorf("privdrop: state directory: %w", err)
	}
	if err := os.Chown(dir, acct.UID, acct.GID); err != nil {
		return fmt.Errorf("privdrop: state directory: %w", err)
	}
	return checkReachable(dir, "", acct)
}

// chownTree gives dir and the files directly in it to acct (the state
// file, its .tmp and the damaged copies set aside).
func chownTree(dir string, acct Account) error {
	if err := os.Chown(dir, acct.UID, acct.GID); err != nil {
		return fmt.Errorf("privdrop: give the state directory to %s: %w", acct.Name, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("privdrop: give the state directory to %s: %w", acct.Name, err)
	}
	for _, e := range entries {
		if err := os.Lchown(filepath.Join(dir, e.Name()), acct.UID, acct.GID); err != nil {
			return fmt.Errorf("privdrop: give the state directory to %s: %w", acct.Name, err)
		}
	}
	return nil
}

// Permission bits: read, write, search (execute).
const (
	permR = 4
	permW = 2
	permX = 1
)

// checkReachable checks that acct can search every ancestor of dir, write
// and search dir, and read and write stateFile if it exists ("" for none).
func checkReachable(dir, stateFile string, acct Account) error {
	fix := fmt.Sprintf("give it to the user (chown %s:%s %s) or name another state file", acct.Name, acct.Name, dir)
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("privdrop: state directory: %w", err)
		}
		if !allows(info, acct, permX) {
			return fmt.Errorf("privdrop: state directory %s: user %s (uid %d) cannot reach it: %s is %s; open it to the user (such as chmod o+x %s) or name another state file",
				dir, acct.Name, acct.UID, p, describe(info), p)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("privdrop: state directory: %w", err)
	}
	if !allows(info, acct, permW|permX) {
		return fmt.Errorf("privdrop: state directory %s is %s: user %s (uid %d) cannot write in it; %s",
			dir, describe(info), acct.Name, acct.UID, fix)
	}
	if stateFile == "" {
		return nil
	}
	info, err = os.Stat(stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("privdrop: state file: %w", err)
	}
	if !allows(info, acct, permR|permW) {
		return fmt.Errorf("privdrop: state file %s is %s: user %s (uid %d) cannot read and write it; chown %s:%s %s",
			stateFile, describe(info), acct.Name, acct.UID, acct.Name, acct.Name, stateFile)
	}
	return nil
}

// allows reports whether acct, with its primary group alone, has the
// permission bits want on a file with info.
func allows(info fs.FileInfo, acct Account, want fs.FileMode) bool {
	mode := info.Mode().Perm()
	var bits fs.FileMode
	switch st := info.Sys().(*syscall.Stat_t); {
	case int(st.Uid) == acct.UID:
		bits = mode >> 6
	case int(st.Gid) == acct.GID:
		bits = mode >> 3
	default:
		bits = mode
	}
	return bits&want == want
}

// ownerOf returns the uid owning a file with info.
func ownerOf(info fs.FileInfo) int {
	return int(info.Sys().(*syscall.Stat_t).Uid)
}

// describe returns "owned by uid U gid G, mode M" for a file with info.
func describe(info fs.FileInfo) string {
	st := info.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("owned by uid %d gid %d, mode %s", st.Uid, st.Gid, info.Mode())
}
