package daemon

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// appDir is the directory RuntimeDir makes inside the system's.
const appDir = "portlease"

// RuntimeDir returns the directory for this program's PID and lock files,
// creating it (mode 0700) if needed, and refuses one that is a symbolic
// link, is not owned by the user, or that others may write to. Where it
// is (never in a world-writable directory such as /tmp):
//
//   - Linux and the BSDs: $XDG_RUNTIME_DIR/portlease when that is set (the
//     per-user runtime directory of the XDG Base Directory specification);
//     else, for root, /run/portlease on Linux and /var/run/portlease on
//     the BSDs (hier(7)); else $XDG_CACHE_HOME/portlease or
//     ~/.cache/portlease.
//   - macOS: /var/run/portlease for root; else $TMPDIR/portlease, $TMPDIR
//     being the per-user private directory launchd gives each user
//     (/var/folders/...), when it is set and others cannot write to it;
//     else ~/Library/Caches/portlease.
//   - Windows: %LOCALAPPDATA%\portlease.
func RuntimeDir() (string, error) {
	home, _ := os.UserHomeDir()
	dir, err := runtimeEnv{
		goos:       runtime.GOOS,
		getenv:     os.Getenv,
		euid:       os.Geteuid(),
		home:       home,
		privateDir: isPrivateDir,
	}.dir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("daemon: runtime directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("daemon: runtime directory: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("daemon: runtime directory %s: not a directory (%s)", dir, fi.Mode().Type())
	}
	if err := checkPrivate(fi); err != nil {
		return "", fmt.Errorf("daemon: runtime directory %s: %w", dir, err)
	}
	return dir, nil
}

// DefaultPIDFile returns the path of the PID file called name in
// RuntimeDir.
func DefaultPIDFile(name string) (string, error) {
	dir, err := RuntimeDir()
	if err != nil {
		return "", err
	}
	return dir + string(os.PathSeparator) + name, nil
}

// runtimeEnv is what the choice of the runtime directory depends on: the
// system, its environment, the effective user (-1 on Windows) and the
// user's home directory ("" if unknown). privateDir reports whether a
// directory exists and no one but its owner may write to it.
type runtimeEnv struct {
	goos       string
	getenv     func(string) string
	euid       int
	home       string
	privateDir func(string) bool
}

// dir chooses the runtime directory as RuntimeDir documents.
func (e runtimeEnv) dir() (string, error) {
	if e.goos == "windows" {
		base := e.getenv("LOCALAPPDATA")
		if base == "" {
			return "", errors.New("daemon: runtime directory: %LOCALAPPDATA% is not set")
		}
		return strings.TrimRight(base, `\/`) + `\` + appDir, nil
	}
	join := func(base string, elem ...string) string {
		return strings.Join(append([]string{strings.TrimRight(base, "/")}, elem...), "/")
	}
	if e.goos != "darwin" {
		if d := e.getenv("XDG_RUNTIME_DIR"); strings.HasPrefix(d, "/") {
			return join(d, appDir), nil
		}
	}
	if e.euid == 0 {
		if e.goos == "linux" {
			return "/run/" + appDir, nil
		}
		return "/var/run/" + appDir, nil
	}
	if e.goos == "darwin" {
		if d := e.getenv("TMPDIR"); strings.HasPrefix(d, "/") && e.privateDir(d) {
			return join(d, appDir), nil
		}
	} else if d := e.getenv("XDG_CACHE_HOME"); strings.HasPrefix(d, "/") {
		return join(d, appDir), nil
	}
	if !strings.HasPrefix(e.home, "/") {
		return "", errors.New("daemon: runtime directory: no home directory ($HOME) to put it in")
	}
	if e.goos == "darwin" {
		return join(e.home, "Library", "Caches", appDir), nil
	}
	return join(e.home, ".cache", appDir), nil
}

// isPrivateDir reports whether dir is a directory, followed if a link
// (macOS's /var is one), that no one but its owner may write to.
func isPrivateDir(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir() && fi.Mode().Perm()&0o022 == 0
}
