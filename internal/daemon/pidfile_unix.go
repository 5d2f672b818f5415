//go:build unix

package daemon

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openPIDFile opens or creates path for reading and writing. O_NOFOLLOW
// makes the open fail if the last component is a symbolic link, dangling
// or not (without it, O_CREAT would create the link's target); something
// other than a regular file (a FIFO, a device) is refused too.
func openPIDFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("daemon: PID file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("daemon: PID file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("daemon: PID file %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	return f, nil
}

// lockFile takes an exclusive flock on f without waiting; errLockHeld
// means another open file description holds it.
func lockFile(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return errLockHeld
	}
	return err
}
