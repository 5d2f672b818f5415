package daemon

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// openPIDFile opens or creates path for reading and writing without
// following a reparse point (a symbolic link or junction): it opens the
// point itself and refuses it. The file may be deleted while open
// (FILE_SHARE_DELETE), so that Remove works before Close.
func openPIDFile(path string) (*os.File, error) {
	name, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, fmt.Errorf("daemon: PID file %q: %w", path, err)
	}
	h, err := windows.CreateFile(name,
		windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_ALWAYS,
		windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, fmt.Errorf("daemon: PID file %s: %w", path, err)
	}
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("daemon: PID file %s: %w", path, err)
	}
	switch {
	case info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0:
		windows.CloseHandle(h)
		return nil, fmt.Errorf("%w: %s", ErrSymlink, path)
	case info.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY != 0:
		windows.CloseHandle(h)
		return nil, fmt.Errorf("daemon: PID file %s: a directory", path)
	}
	return os.NewFile(uintptr(h), path), nil
}

// lockOffsetHigh places the locked byte far beyond the PID: a LockFileEx
// lock is mandatory, and a locked PID could not be read by the second
// instance that names the first in its error.
const lockOffsetHigh = 0x7fffffff

// lockFile takes an exclusive lock on one byte of f without waiting;
// errLockHeld means another handle holds it.
func lockFile(f *os.File) error {
	ol := windows.Overlapped{OffsetHigh: lockOffsetHigh}
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return errLockHeld
	}
	return err
}
