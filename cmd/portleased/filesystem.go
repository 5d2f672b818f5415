package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/portlease/portlease/internal/privdrop"
)

// restrictFilesystem leaves the daemon, once its privileges are dropped,
// able to change files beneath the directory of stateFile alone ("" for
// "state file none": nowhere), with Landlock (see privdrop.RestrictWrites);
// under systemd the unit's ProtectSystem=strict and StateDirectory= do the
// same. A kernel without Landlock leaves the filesystem as the user's
// permissions have it, which is logged.
//
// What the daemon writes after it is beneath that directory (the state
// file's journal, its compaction's temporary file and rename, the damaged
// copies set aside) or not a change to the filesystem: the PID file is
// truncated through the descriptor opened before, syslog (/dev/log) and
// $NOTIFY_SOCKET are connected to, not created, and the profile socket
// was made before (it is left behind at the exit, as it was already in a
// directory only root may change).
func restrictFilesystem(stateFile string, log *slog.Logger) error {
	dir := ""
	if stateFile != "" {
		dir = filepath.Dir(stateFile)
		// statefile.Open would make a missing directory, too late once
		// it is out of reach; started as root, PrepareStateDir made it.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("portleased: state directory: %w", err)
		}
	}
	abi, err := privdrop.RestrictWrites(dir)
	if err != nil {
		return err
	}
	switch {
	case abi == 0:
		log.Info("filesystem not restricted: the kernel has no Landlock")
	case dir == "":
		log.Info("filesystem restricted", "writable", "none", "landlock", abi)
	default:
		log.Info("filesystem restricted", "writable", dir, "landlock", abi)
	}
	return nil
}
