// Package privdrop takes away what portleased does not need once it has
// read its configuration: root, every capability but CAP_NET_ADMIN
// (nftables, conntrack, netlink watches, the forced socket buffers) and
// CAP_NET_BIND_SERVICE where a configured port is below 1024, and the
// means to gain any back (PR_SET_NO_NEW_PRIVS, capabilities(7), prctl(2)).
//
// # One process, not a privileged helper
//
// The alternative is a small helper that keeps CAP_NET_ADMIN and changes
// only nftables, with the parsers unprivileged on the other side of a
// socket. portleased does not take it, because CAP_NET_ADMIN is not only
// for nftables: the conntrack flush of a removed mapping, the netlink
// watches that put back a flushed table, the forced netlink buffers and the
// nftables transactions of every grant all need it, so the helper's
// protocol would be most of the gateway core, on the path of every request
// (each one a round trip more), and a helper that accepts "add this
// element" from a compromised parser grants the same as the capability
// itself. What the split would really protect — root, the filesystem, the
// other capabilities — the drop here protects too: the process that parses
// requests has a non-root uid, its one group, CAP_NET_ADMIN alone in its
// permitted and effective sets and in its bounding set, no inheritable or
// ambient capability, and no_new_privs, on every thread.
//
// # Firewall programs
//
// The iptables backends change the kernel through programs
// (iptables-restore), which get no capability from a process that is not
// root unless it holds them inheritable and ambient. With Options.Programs
// the process keeps exactly what those programs need in both sets, and
// they get it: CAP_NET_ADMIN for iptables-nft's (netlink), CAP_NET_ADMIN
// and CAP_NET_RAW for iptables-legacy's (a raw socket's socket options
// read and replace the x_tables tables; without CAP_NET_RAW
// iptables-legacy-restore fails with "unable to initialize table"). The
// programs inherit no_new_privs and the Landlock domain.
//
// # Every thread
//
// Linux keeps credentials per thread, and a Go program has many. The
// changes are made with kernel.org/pub/linux/libs/security/libcap/cap,
// whose psx package applies each system call to all the threads of the
// process, with or without cgo; a thread that kept root would be a way
// back.
//
// # The filesystem
//
// After the drop, RestrictWrites takes away the rest of the filesystem
// with Landlock (landlock(7)): a ruleset that handles every right of
// changing files the kernel's ABI knows (writing, making and removing
// entries; renaming and linking across directories from ABI 2, truncating
// from ABI 3) and allows them beneath the state file's directory alone, or
// nowhere, laid on every thread with psx like the credentials. Reading is
// not handled: the configuration is read again at SIGHUP, /proc and /sys
// are read while serving. Under systemd, ProtectSystem=strict with
// StateDirectory= does the same; Landlock makes it hold without systemd
// too (OpenWrt's procd, sysvinit). A kernel without Landlock leaves only
// the user's permissions, which the daemon logs. /proc shows no Landlock
// domain; the tests check the restriction by trying writes on each
// thread.
package privdrop
