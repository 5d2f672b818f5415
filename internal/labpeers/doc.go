// Package labpeers runs real gateways, and the helpers they need, in the
// namespace lab of internal/netlab, for the end-to-end tests and the lab
// programs (benchlab, labdemo): portleased built from this tree and
// miniupnpd 2.3.1 (UPnP IGD, NAT-PMP and PCP) on the lab gateway, a STUN
// responder on the WAN host, and the clients upnpc and natpmpc on LAN hosts;
// NFT reads the kernel's rules in a lab namespace, failing the test when nft
// fails. Every program runs inside lab namespaces only, and is stopped when
// the test ends.
//
//	lab := netlab.New(t, netlab.Config{})
//	m := labpeers.StartMiniUPnPd(t, lab, labpeers.MiniUPnPdConfig{})
//	labpeers.UPnPC(t, lab.LAN[0], "-u", m.DescriptionURL(), "-a", "198.51.100.10", "8080", "8080", "TCP", "3600")
//	m.Restart(t) // a router reboot: mappings lost, epoch from 0, announcements
//
// portleased is built once per test process, and always runs with a "state
// file" line in its configuration: none by default, or a file of the test's,
// so that no two tests share the daemon's default state file.
//
//	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{StateFile: filepath.Join(labpeers.StateDir(t), "leases")})
//	err := d.Kill()              // a crash: the table stays in the kernel
//	err = d.Start(t.Context())   // the same configuration and state file
//	err = d.Restart(t.Context()) // SIGTERM, exit 0, start again
//	elements := labpeers.NFT(t, lab.Gateway, "list", "map", "inet", "portleased", "inbound4")
//
// # miniupnpd in the lab: what was found out
//
// Measured with miniupnpd 2.3.1 (Debian miniupnpd-nftables 2.3.1-1),
// miniupnpc 2.2.4 and natpmpc 20150609, kernel 6.18, in TestMiniUPnPd and by
// hand.
//
// Starting. miniupnpd serves about 70 ms after it is started, STUN included.
// Its log then reads: "Reloading rules from lease file", "could not open
// lease file" (at err level, harmless on a first start), "version 2.3.1
// starting NAT-PMP/PCP UPnP-IGD ext if wan0", "STUN: Performing with
// host=203.0.113.2 and port=3478", "perform_stun: local ports A B C D",
// "STUN: ext interface wan0 with IP address 203.0.113.1 is now behind
// unrestricted full-cone NAT 1:1 with public IP address 203.0.113.1 ...",
// "Port forwarding is now enabled", "HTTP listening on port 5000",
// "Listening for NAT-PMP/PCP traffic on port 5351". It opens its HTTP and
// NAT-PMP sockets only after STUN, so any answer means STUN is done.
//
// STUN. miniupnpd sends four Binding Requests from four new UDP ports, with
// RFC 3489 CHANGE-REQUEST attributes (none, change port, change address,
// both), and waits up to 3 s for the answers, three rounds. It enables port
// forwarding only if all four are answered, from the address it sent to, with
// a mapped address equal for all and mapped ports equal to its local ports;
// otherwise it logs "restrictive or symmetric NAT" and "Port forwarding is now
// disabled". StartSTUN's responder, which ignores CHANGE-REQUEST, answers all
// four in the first round. With no STUN answer at all, miniupnpd gives up
// after 9 s: "STUN: Performing STUN failed: No such device or address",
// "Performing STUN failed. EXITING", and exits. SIGUSR1 runs STUN again.
//
// nftables. miniupnpd creates no table or chain: table inet filter and its
// chains must exist before it starts (StartMiniUPnPd makes them, as in
// docs/peers.md). Without them it starts and serves all the same, but every
// rule fails ("nft_send_rule(...) send_batch failed -4") and AddPortMapping
// answers 501 ActionFailed. It fills, per mapping (UPnP and NAT-PMP alike,
// one table for both):
//
//	chain miniupnpd:             iif "wan0" th dport 8080 @nh,128,32 0xc633640a @nh,72,8 0x6 accept
//	chain prerouting_miniupnpd:  iif "wan0" @nh,72,8 0x6 th dport 8080 dnat ip to 198.51.100.10:8080
//
// (the internal address as a raw word, 0xc633640a = 198.51.100.10; protocol
// 0x6 TCP, 0x11 UDP). postrouting_miniupnpd stayed empty. During STUN it adds
// four temporary accept rules for its local UDP ports to chain miniupnpd and
// deletes them afterwards. At exit (SIGTERM: "shutting down MiniUPnPd") it
// flushes nothing: the rules and the lease file (lines such as
// "TCP:8080:198.51.100.10:8080:<expiry, Unix time>:libminiupnpc") stay, and
// a new start reloads the lease file; Restart therefore flushes the three
// chains and deletes the lease file. The forward chain's policy accept and
// the lab's own masquerade (table ip lab) need nothing more: a connection from
// the WAN host to 203.0.113.1:8080 reaches the LAN host with its own source
// address, 203.0.113.2.
//
// Logging. With -d, miniupnpd stays in the foreground and logs every level on
// stderr, including every rule of its chain each time it reads the chain
// (table_cb lines), which is what makes it slow with many mappings. Without
// -d it forks into a daemon (the parent exits 0) and logs only through
// syslog(3) to /dev/log: notice and above, info with -v, debug with -vv. It
// opens the log with LOG_CONS, and this machine has no /dev/log, so glibc
// would write every message on the machine's /dev/console: miniupnpd runs
// with a private /dev (a tmpfs with null, zero, random, urandom) in the mount
// namespace ip netns exec gives it, where /dev/log is a link to a socket of
// the test's (daemon mode) or absent (debug mode: the messages go to stderr
// only). Log returns the messages, each line starting with its severity.
//
// Processes. A daemonized miniupnpd would be an orphan of the machine's init,
// which left it a zombie ("[miniupnpd] <defunct>") for a while after it
// exited. So miniupnpd runs in a PID namespace of its own, under a shell that
// is the namespace's init, reaps the daemon, and passes on SIGTERM and
// SIGUSR1; the pid file (-P, in t.TempDir()) holds the daemon's pid inside
// that namespace (9, typically; 1 with -d), not one valid outside. Even with
// -d miniupnpd writes a pid file, by default /var/run/miniupnpd.pid, and
// refuses to start ("MiniUPnPd is already running. EXITING") when the pid
// in it names a live process: two labs' miniupnpd -d, each pid 1 in its PID
// namespace, collided there. So -P is always given, and nothing is written
// under /var/run. The shell has SIGKILL as its parent-death signal: if the
// test binary dies (strictly, the OS thread that started it), the PID
// namespace and miniupnpd go with it.
//
// Announcements. At start, miniupnpd sends one PCP ANNOUNCE (RFC 6887
// §14.1.3: 24 bytes, version 2, opcode 0x80, result 0, lifetime 0, epoch 0)
// from 198.51.100.1:5351 to 224.0.0.1:5350, once, and no NAT-PMP
// announcement (RFC 6886 §3.2.1 asks for up to ten); it also multicasts
// SSDP ssdp:alive NOTIFYs on the LAN, repeated once 250 ms later. On
// SIGUSR1 ("should send external iface address change notification(s)") it
// sends one 12-byte NAT-PMP announcement (version 0, opcode 128, the address
// from STUN, the epoch counting from the daemon's start) and one PCP
// ANNOUNCE, whose epoch it resets. Restart sends SIGUSR1 once miniupnpd
// serves again (see Announce). Epochs count the daemon's uptime
// (system_uptime=no), so they start from 0 after a restart.
//
// Clients. upnpc needs -i (docs/peers.md). It exits 0 on success, 1 when it
// finds no IGD, 2 when an action fails: AddPortMapping for another LAN host's
// address fails with 718 ConflictInMappingEntry (secure_mode), for a port the
// permission rules deny (below 1024) with 606 Action not authorized. upnpc -d
// of a mapping that does not exist exits 0. upnpc -l prints one line per
// mapping, then the error that ends its listing:
//
//	 0 TCP  8080->198.51.100.10:8080  'libminiupnpc' '' 3600
//	GetGenericPortMappingEntry() returned 713 (SpecifiedArrayIndexInvalid)
//
// natpmpc exits 1 on failure
// ("readnatpmpresponseorretry() failed : not authorized" for port 80), and
// retries for about two minutes when nothing answers. natpmpc -a was seen to
// print a stale answer ("Mapped public port 369 protocol UNKNOWN to local
// port 203", the bytes of 203.0.113.1) although the mapping was made.
package labpeers
