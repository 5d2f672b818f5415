// Package daemon runs a program as each operating system expects a
// long-running service to run, and keeps its PID file.
//
// On unix it detaches the way a Go program can (it cannot fork): it starts
// itself again in a new session, and the parent waits until the child
// reports that it is serving, or why it could not, so that the parent's
// exit status tells the truth. Windows has no such custom: a program there
// runs in the foreground or under the service control manager, and Detach
// refuses (CanDetach is false).
//
// The PID file is held with an exclusive lock for as long as the process
// runs (flock on unix, LockFileEx on Windows), is opened without following
// a symbolic link, and by default lives in the runtime directory of the
// user (RuntimeDir), never in a world-writable directory such as /tmp.
package daemon

import (
	"errors"
	"os"
	"strings"
)

// ErrNoDetach is what Detach returns where the system has no custom of
// detaching (CanDetach is false).
var ErrNoDetach = errors.New("daemon: Windows programs do not detach: run in the foreground or as a service")

// IsChild reports whether this process was started by Detach with env
// (NAME=value) in its environment.
func IsChild(env string) bool {
	name, value, _ := strings.Cut(env, "=")
	return os.Getenv(name) == value
}

const warnPrefix = "warn: "

// Warn passes msg to the waiting parent, which prints it and goes on
// waiting. It is a no-op in a process that Detach did not start.
func Warn(env, msg string) {
	if IsChild(env) {
		report(warnPrefix+strings.ReplaceAll(msg, "\n", "; "), false)
	}
}

// Ready tells the waiting parent that the child is serving. It is a no-op
// in a process that Detach did not start.
func Ready(env string) {
	if IsChild(env) {
		report("ok", true)
	}
}

// Fail tells the waiting parent why the child stops. It is a no-op in a
// process that Detach did not start.
func Fail(env string, err error) {
	if IsChild(env) {
		report(strings.ReplaceAll(err.Error(), "\n", "; "), true)
	}
}
