package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
)

// The modes of the control socket and of the directory Listen makes for
// it: the owner and the group read and write, nobody else.
const (
	SocketMode fs.FileMode = 0o660
	DirMode    fs.FileMode = 0o750
)

// Owner is who owns the socket and a directory Listen makes: root and the
// daemon's group when the daemon starts as root, else the daemon's own
// user and group (started unprivileged by systemd, which makes the
// directory: RuntimeDirectory=).
type Owner struct {
	UID, GID int
}

// Listen makes the control socket at path, before the daemon gives up
// root: after that it may change files beneath its state directory alone
// (Landlock), and the socket's directory is not one.
//
//   - A missing directory is made, owned by o, mode DirMode (its parents
//     0755); an existing one is left as it is.
//   - A socket file at path that no process serves (left by a run that
//     crashed, or that could not remove it) is replaced; one a process
//     serves is an error, as is a file that is not a socket.
//   - The socket is owned by o, mode SocketMode.
//
// Closing the listener removes the socket file, which fails once the
// daemon is no longer root (the directory is root's; Landlock): the file
// then stays until the next start replaces it, and until then the
// operator command reports that nothing serves it.
func Listen(path string, o Owner) (*net.UnixListener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("control: socket %q: not an absolute path", path)
	}
	if err := makeDir(filepath.Dir(path), o); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: socket: %w", err)
	}
	if err := errors.Join(os.Chown(path, o.UID, o.GID), os.Chmod(path, SocketMode)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: socket %s: %w", path, err)
	}
	return ln, nil
}

// makeDir makes dir for the socket if it is missing.
func makeDir(dir string, o Owner) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("control: socket directory %s is not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("control: socket directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("control: socket directory: %w", err)
	}
	if err := os.Mkdir(dir, DirMode); err != nil {
		return fmt.Errorf("control: socket directory: %w", err)
	}
	// Mkdir's mode passes through the umask.
	if err := errors.Join(os.Chown(dir, o.UID, o.GID), os.Chmod(dir, DirMode)); err != nil {
		return fmt.Errorf("control: socket directory %s: %w", dir, err)
	}
	return nil
}

// removeStale removes a socket file at path that no process serves.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control: socket %s: exists and is not a socket", path)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("control: socket %s: another process serves it (another portleased with the same \"control socket\"?)", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("control: socket %s: replace the stale socket: %w", path, err)
	}
	return nil
}
