package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/internal/privdrop"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// dropPrivileges gives up root, and every capability but CAP_NET_ADMIN
// (and CAP_NET_BIND_SERVICE when the UPnP HTTP port is below 1024), on
// every thread, before the daemon opens a socket or parses a request: see
// internal/privdrop. With an iptables backend b it keeps what the
// iptables programs it runs need inheritable and ambient, so that they
// get it (privdrop.ProgramsOf): CAP_NET_ADMIN, and CAP_NET_RAW (also
// permitted) for iptables-legacy's raw socket. Started as root, the daemon first prepares the state
// file's directory for the "user" of cfg (root creates it or takes over
// /var/lib/portleased), then becomes that user. Started as another user
// (systemd's User= with AmbientCapabilities=CAP_NET_ADMIN), it keeps its
// uid and checks that CAP_NET_ADMIN is there. Either way it can then
// change files beneath the state file's directory alone (Landlock: see
// restrictFilesystem).
//
// Everything after it works as the user: the state file's journal and
// compaction in its directory, SIGHUP's reading of the configuration
// file, nftables, conntrack and netlink (CAP_NET_ADMIN), the iptables
// programs (which inherit the user, no_new_privs and Landlock). What root opened
// before it stays open: the PID file (emptied rather than removed at the
// exit, see daemon.PIDFile.Remove) and the profile socket (left behind at
// the exit; the next start replaces it).
func dropPrivileges(cfg *config.Config, b backend, log *slog.Logger) error {
	o := privdrop.Options{BindService: cfg.UPnP.PrivilegedPort(), Programs: privdrop.ProgramsOf(string(b))}
	if os.Geteuid() != 0 {
		if err := privdrop.Narrow(o); err != nil {
			return err
		}
		log.Info("privileges dropped", "uid", os.Getuid(), "gid", os.Getgid(), "capabilities", capNames(o.Kept()), "inherited", capNames(o.Inherited()))
		return restrictFilesystem(cfg.StateFile, log)
	}
	acct, err := privdrop.Lookup(cfg.User)
	if err != nil {
		return err
	}
	if cfg.StateFile != "" {
		if err := privdrop.PrepareStateDir(cfg.StateFile, acct); err != nil {
			return err
		}
	}
	if err := privdrop.Become(acct, o); err != nil {
		return fmt.Errorf("%w (user %s)", err, acct.Name)
	}
	log.Info("privileges dropped", "user", acct.Name, "uid", acct.UID, "gid", acct.GID, "capabilities", capNames(o.Kept()), "inherited", capNames(o.Inherited()))
	return restrictFilesystem(cfg.StateFile, log)
}

// capNames returns the names of vs, comma-separated, or "none".
func capNames(vs []cap.Value) string {
	var names []string
	for _, v := range vs {
		names = append(names, strings.ToUpper(v.String()))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}
