package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// PIDFile is a PID file held with an exclusive lock for as long as the
// process runs: a second instance that tries to take it fails at once.
type PIDFile struct {
	f    *os.File
	path string
}

// ErrLocked means another running process holds the PID file.
var ErrLocked = errors.New("daemon: PID file locked by another process")

// ErrSymlink means a symbolic link (on Windows, any reparse point) stands
// at the PID file's path. It is never followed: whoever planted it could
// otherwise have the file of their choice truncated.
var ErrSymlink = errors.New("daemon: PID file is a symbolic link; not following it")

// errLockHeld is what lockFile returns when another open file holds the
// lock.
var errLockHeld = errors.New("daemon: lock held")

// WritePIDFile creates or opens path without following a symbolic link,
// locks it and writes the process ID. If another process holds it, the
// error wraps ErrLocked and names that process; if path is a symbolic
// link, the error wraps ErrSymlink and names where it points.
func WritePIDFile(path string) (*PIDFile, error) {
	f, err := openPIDFile(path)
	if err != nil {
		if target, lerr := os.Readlink(path); lerr == nil {
			return nil, fmt.Errorf("%w: %s -> %s (remove the link if you did not put it there)", ErrSymlink, path, target)
		}
		return nil, err
	}
	if err := lockFile(f); err != nil {
		b, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, errLockHeld) {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				return nil, fmt.Errorf("%w: %s (pid %d)", ErrLocked, path, pid)
			}
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("daemon: lock PID file %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("daemon: PID file %s: %w", path, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("daemon: PID file %s: %w", path, err)
	}
	return &PIDFile{f: f, path: path}, nil
}

// Path returns the file's path.
func (p *PIDFile) Path() string { return p.path }

// Remove deletes the PID file and releases its lock. A process that has
// given up root since it wrote the file in a directory only root may
// change (/run) cannot delete it: it empties the file through the
// descriptor it holds instead, so that no stale process ID is left, and
// the next start (as root) writes it again. It is safe to call on a nil
// *PIDFile and more than once.
func (p *PIDFile) Remove() error {
	if p == nil || p.f == nil {
		return nil
	}
	err := os.Remove(p.path)
	if errors.Is(err, fs.ErrPermission) {
		err = p.f.Truncate(0)
	}
	p.f.Close()
	p.f = nil
	return err
}
