// Package sdnotify tells the service manager about the daemon's state: the
// sd_notify protocol of systemd (sd_notify(3), "The notify protocol" in
// systemd.service(5)). Each message is one datagram of newline-separated
// VARIABLE=value assignments sent to the AF_UNIX socket named by
// $NOTIFY_SOCKET: a path, or an abstract name written with a leading '@'.
// Without $NOTIFY_SOCKET (not started by systemd, or not Type=notify)
// every call does nothing.
//
// A Notifier keeps the address only and connects for each message, so that
// it keeps working after the daemon has dropped its privileges: systemd's
// socket is writable by every user, and nothing opened before the drop is
// needed after it.
package sdnotify

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The states a daemon reports (systemd.service(5), sd_notify(3)).
const (
	// Ready means start-up is done and the daemon serves (Type=notify: the
	// unit becomes active).
	Ready = "READY=1"
	// Reloading means the daemon is reloading its configuration; Ready
	// follows when it is done.
	Reloading = "RELOADING=1"
	// Stopping means the daemon is shutting down.
	Stopping = "STOPPING=1"
)

// EnvSocket is the environment variable that names the socket.
const EnvSocket = "NOTIFY_SOCKET"

// Notifier sends state messages to one notification socket. The nil
// *Notifier is valid and sends nothing.
type Notifier struct {
	addr *net.UnixAddr
}

// New returns a Notifier for socket, the value of $NOTIFY_SOCKET: an
// absolute path or '@' and an abstract socket name. An empty socket gives
// nil, the Notifier that sends nothing; any other form is an error (vsock
// addresses, which systemd also accepts for virtual machines, are not
// supported).
func New(socket string) (*Notifier, error) {
	switch {
	case socket == "":
		return nil, nil
	case strings.HasPrefix(socket, "/"), strings.HasPrefix(socket, "@") && len(socket) > 1:
		// The Go runtime turns a leading '@' into the abstract namespace's
		// NUL byte.
		return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}, nil
	default:
		return nil, fmt.Errorf("sdnotify: %s=%q: want an absolute path or @name", EnvSocket, socket)
	}
}

// FromEnv returns the Notifier for getenv(EnvSocket) (os.Getenv in a
// program).
func FromEnv(getenv func(string) string) (*Notifier, error) {
	return New(getenv(EnvSocket))
}

// Notify sends the assignments in states, one per line, as one datagram.
// It does nothing on the nil Notifier.
func (n *Notifier) Notify(states ...string) error {
	if n == nil || len(states) == 0 {
		return nil
	}
	for _, s := range states {
		if !strings.Contains(s, "=") || strings.Contains(s, "\n") {
			return fmt.Errorf("sdnotify: %q: want one VARIABLE=value", s)
		}
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: connect %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(states, "\n") + "\n")); err != nil {
		return fmt.Errorf("sdnotify: send to %s: %w", n.addr.Name, err)
	}
	return nil
}

// Reload reports that a configuration reload starts, with the time
// systemd asks for since version 253 (MONOTONIC_USEC, CLOCK_MONOTONIC in
// microseconds) to tell this reload from an earlier one.
func (n *Notifier) Reload() error {
	if n == nil {
		return nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sdnotify: read CLOCK_MONOTONIC: %w", err)
	}
	usec := ts.Nano() / 1000
	return n.Notify(Reloading, "MONOTONIC_USEC="+strconv.FormatInt(usec, 10))
}
