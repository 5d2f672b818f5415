package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/gateway/control"
	"github.com/portlease/portlease/internal/privdrop"
)

// controlSocket is the operator's control socket, made before the
// privilege drop ("control socket PATH|none").
type controlSocket struct {
	ln     *net.UnixListener
	access control.Access
}

// listenControl makes the control socket of cfg, before the drop: the
// directory and the socket file cannot be made after it (Landlock leaves
// the state directory alone writable, and the directory is root's).
// Started as root, the socket is root's and the group's of the "user",
// mode 0660, in a directory of mode 0750 made if missing; started as
// another user (systemd's User=, RuntimeDirectory=portleased), its own.
// Root, that user and the members of its group may use it. nil without
// a socket ("control socket none").
func listenControl(cfg *config.Config) (*controlSocket, error) {
	path := cfg.Observe.ControlSocket
	if path == "" {
		return nil, nil
	}
	owner := control.Owner{UID: os.Getuid(), GID: os.Getgid()}
	access := control.Access{UID: os.Getuid(), GID: os.Getgid()}
	if os.Geteuid() == 0 {
		acct, err := privdrop.Lookup(cfg.User)
		if err != nil {
			return nil, err
		}
		owner = control.Owner{UID: 0, GID: acct.GID}
		access = control.Access{UID: acct.UID, GID: acct.GID}
	}
	ln, err := control.Listen(path, owner)
	if err != nil {
		return nil, err
	}
	return &controlSocket{ln: ln, access: access}, nil
}

// serve answers the control API, and the metrics at /metrics, on the
// socket until the returned function
// is called, which stops it and tries to remove the socket file: after the
// drop that fails (the directory is root's, and Landlock), and the file
// stays until the next start replaces it.
func (c *controlSocket) serve(table control.Table, metrics http.Handler, log *slog.Logger) (stop func()) {
	if c == nil {
		return func() {}
	}
	srv := &control.Server{Table: table, Access: c.access, Metrics: metrics, Logger: log}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(c.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket", "path", c.ln.Addr().String(), "err", err)
		}
	}()
	log.Info("serving the control socket", "path", c.ln.Addr().String(), "uid", c.access.UID, "gid", c.access.GID)
	return func() {
		srv.Close()
		<-done
	}
}

// close lets the socket go when the daemon does not get to serve it.
func (c *controlSocket) close() {
	if c != nil {
		c.ln.Close()
	}
}
