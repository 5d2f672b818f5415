package main

import (
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// xtablesLockPath is iptables-legacy's lock: iptables-legacy-restore holds
// an exclusive flock on it while it replaces a table.
const xtablesLockPath = "/run/xtables.lock"

// xtablesLocks are what the iptables backends need of iptables-legacy's
// lock once root is given up: /run/xtables.lock is root's, mode 0600, and
// a program that cannot open it exits ("Fatal: can't open lock file").
type xtablesLocks struct {
	// system is /run/xtables.lock, opened before the drop (nil when the
	// daemon was not started as root, or with nftables): the backend
	// holds its flock while a program of its own runs, so that these and
	// the operator's iptables commands wait for each other.
	system *os.File
	// private is the lock file the programs take instead
	// (XTABLES_LOCKFILE), one the daemon's user can open: xtables.lock in
	// the state file's directory, made before Landlock closes the rest;
	// /dev/null with "state file none", where nothing is writable.
	private string
}

// openXtablesLocks prepares the locks of backend b, before the privilege
// drop; nothing for nftables and iptables-nft, which take no lock
// (nf_tables transactions are atomic). A failure is logged: the programs
// then take the private lock alone.
func openXtablesLocks(b backend, stateFile string, log *slog.Logger) xtablesLocks {
	var l xtablesLocks
	if b != backendIptablesLegacy && b != backendIptables {
		return l
	}
	l.private = os.DevNull
	if stateFile != "" {
		l.private = filepath.Join(filepath.Dir(stateFile), "xtables.lock")
	}
	if os.Geteuid() != 0 {
		log.Info("iptables' lock not taken: started without root, which alone may open it; the operator's iptables commands do not wait for portleased's", "lock", xtablesLockPath)
		return l
	}
	f, err := os.OpenFile(xtablesLockPath, os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		log.Warn("iptables' lock not opened; the operator's iptables commands do not wait for portleased's", "lock", xtablesLockPath, "err", err)
		return l
	}
	l.system = f
	return l
}

// close closes the system lock, if open.
func (l xtablesLocks) close() {
	if l.system != nil {
		l.system.Close()
	}
}
