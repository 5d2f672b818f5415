// Command portleased is a NAT gateway daemon: it grants port mappings and
// IPv6 pinholes to hosts on the LAN over NAT-PMP (RFC 6886), PCP (RFC 6887)
// and UPnP IGD v1/v2, from one lease table, and enforces them in the
// kernel with nftables or iptables.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/internal/daemon"
	"github.com/portlease/portlease/internal/sdnotify"
	"github.com/portlease/portlease/internal/syslogx"
)

const (
	defaultConfig  = "/etc/portleased.conf"
	defaultPIDFile = "/run/portleased.pid"
	childEnv       = "PORTLEASED_DETACHED=1"
)

const usage = `Usage: portleased [-dnv] [-f file] [-p pidfile] [-profile-socket path]
       portleased [-f file] -c list|show|delete|counters [options]

portleased is a NAT gateway daemon for Linux. It grants port mappings to hosts
on the LAN over NAT-PMP (RFC 6886), PCP (RFC 6887: MAP, PEER, ANNOUNCE, IPv6
pinholes) and UPnP IGD v1/v2, from one lease table, and enforces them in the
kernel with nftables, in a table of its own ("inet portleased"), or with
iptables, in chains of its own (PORTLEASE-*): see the firewall directive.
NAT-PMP and PCP share port 5351 on each LAN address; PCP alone is served on
the LAN's global and unique-local IPv6 addresses, and UPnP on both (with
WANIPv6FirewallControl for pinholes). With nftables, a host firewall whose
forward chain drops by default must accept what portleased admits, with the
line
  meta mark & 0x10000000 == 0x10000000 accept
in that chain; portleased warns at start when it sees one without it. With
iptables its jump comes first in the FORWARD chain and needs no such line.
It reads OpenBSD natpmpd.conf(5) files unchanged.

Leases survive restarts and crashes: they are kept in the state file, and at
start portleased reads what the kernel still holds, adopts what matches, adds
what is missing and removes the rest. When another program deletes its table
or elements (nft flush ruleset), it puts them back within a second; its
iptables chains or rules (iptables -F), within the 5 s it takes to notice.

The second form asks the running daemon over its control socket: list,
show and delete its leases of every protocol, print its counters (see
portleased -c help).

Options:
  -c COMMAND  Act on the running daemon through its control socket (the
              "control socket" directive): portleased -c help.
  -d          Do not detach: stay in the foreground and log to standard error.
              Without -d, portleased detaches once it is serving, writes and
              locks its PID file and logs to syslog (facility daemon).
              Started by systemd as a Type=notify service (-d), it reports
              through $NOTIFY_SOCKET: ready once serving, reloading during
              a SIGHUP, stopping at SIGTERM.
  -f file     Read the configuration from file (default /etc/portleased.conf).
  -n          Check the configuration only: print "configuration OK" and the
              firewall backend it would use and why, such as
                firewall: nftables (auto: the kernel has nf_tables and ...)
              and exit 0, or print each error as file:line: message and
              exit 1.
  -p pidfile  The PID file when detached (default /run/portleased.pid).
  -v          Verbose: also log renewals, deletions and refused packets.
  -profile-socket path
              Serve the Go runtime's profiles (net/http/pprof, /debug/pprof/)
              on a Unix socket at path, mode 0600, for performance work:
                curl --unix-socket path -o heap.pprof \
                  'http://portleased/debug/pprof/heap?gc=1'
                go tool pprof -top heap.pprof
              Off by default. The socket reaches no network.

Signals:
  SIGTERM, SIGINT  Exit 0. With nftables and a state file the mappings stay
                   in the kernel, forwarding, for the next start to adopt;
                   should portleased not come back, each ends with its
                   kernel timeout (its lease's end and 30 s, at most an
                   hour and 30 s for long and permanent leases). With
                   "state file none" every mapping is removed from the
                   kernel first. iptables rules have no timeout: the
                   iptables backends remove their chains and jumps at
                   every exit, and the state file brings the mappings back
                   at the next start.
  SIGHUP           Read the configuration file again and apply every
                   directive: the rules (leases they no longer allow are
                   removed), upnp (secure mode at once; the other upnp
                   directives restart the UPnP service with a new BOOTID),
                   listen on (new addresses and links open before old ones
                   close; the leases of a LAN no longer served are removed)
                   and interface (the mappings move to the new WAN link
                   without a gap; clients learn its address). A file with
                   an error, or one that changes state file, user,
                   firewall, control socket, metrics listen or
                   status page, is refused whole, each such line
                   named as file:line, and the running configuration
                   stays. The log names what changed.

Configuration (one directive a line, # starts a comment):
  interface IF                The external (WAN) interface. Required.
  listen on ADDRESS|IF        Serve clients on this LAN address or on every
                              IPv4 and global or unique-local IPv6 address
                              of this interface: NAT-PMP (IPv4), PCP and
                              UPnP (both; link-local addresses are not
                              served). At least one.
  port range LOW-HIGH         External ports handed out (default 1024-65535).
  lifetime max SECONDS        Longest lifetime granted (default 86400).
  pcp lifetime min SECONDS    Shortest lifetime a PCP mapping is granted
                              (default 120, RFC 6887 §15).
  max mappings per host N|none
                              Leases one LAN address may hold, mappings and
                              pinholes of every protocol (default 1024).
  max mappings N|none         Leases in the whole table (default 65536).
  request rate per host N [burst M] | none
                              Requests per second one address may make, M
                              at once (default 50 burst 200; burst 4×N when
                              not given); NAT-PMP and PCP share a budget,
                              UPnP's actions that change the table have
                              their own (reads are free). Over it: NAT-PMP
                              result 4, PCP NO_RESOURCES, UPnP HTTP 503.
  allow|deny EXT ADDR/MASK INT
                              Permission rule, miniupnpd syntax, first match
                              wins. EXT and INT are ports N or N-M; ADDR may
                              be IPv6 (rules for IPv6 pinholes, whose
                              external port is the internal one). Without
                              rules: allow 1024-65535 PREFIX 1024-65535 for
                              each LAN subnet served and each global IPv6
                              prefix of the LAN links, for requests from
                              hosts of the same link only.
  allow third-party ADDR/MASK Hosts that may map for another LAN address
                              (PCP THIRD_PARTY; UPnP in secure mode).
  upnp on|off                 Serve UPnP IGD too (default on).
  upnp friendly name NAME     The device name clients show (default portleased).
  upnp http port PORT         The description and control port (default 5000).
  upnp notify interval SECS   How often SSDP alive is sent (default 900).
  upnp secure mode on|off     Clients map only to their own address (default on).
  upnp version 1|2            The IGD version offered (default 2).
  upnp hostname NAME ...      Names a request's Host header may give for the
                              gateway besides its addresses (default none;
                              other names are refused: DNS rebinding).
  upnp max connections per host N
                              HTTP connections one host may hold at once
                              (default 16, of 256 in all).
  firewall auto|nftables|iptables|iptables-legacy|iptables-nft
                              The kernel interface the mappings are
                              enforced with (default auto). iptables runs
                              the system's iptables-restore, the other two
                              that variant's (Debian's iptables package
                              has both). auto takes iptables-legacy when
                              iptables-legacy rules are loaded (a rule, a
                              chain or a policy not ACCEPT in a table that
                              /proc/net/ip_tables_names or ip6_tables_names
                              lists, which only root may read: started as
                              another user, auto cannot see them and says
                              so); else nftables when the kernel has
                              nf_tables; else iptables-legacy, or iptables
                              when only that is installed. The log's
                              "firewall backend" line and -n say which and
                              why.
  state file PATH|none        Keep the leases, the epoch and the UPnP BOOTID
                              across restarts and crashes in PATH (default
                              /var/lib/portleased/leases); none keeps them
                              in memory only.
  control socket PATH|none    The Unix socket of portleased -c (default
                              /run/portleased/control): made at start as
                              root, owned by root and the group of "user",
                              mode 0660, in a directory of mode 0750 made
                              if missing. Root, that user and the members
                              of its group may use it (checked again for
                              each connection, SO_PEERCRED); the others
                              are refused and logged (once a minute). The
                              file stays after the exit, when the daemon
                              is no longer root, until the next start
                              replaces it. It also serves the metrics
                              (GET /metrics).
  metrics listen ADDRESS:PORT Serve the metrics in the Prometheus text
                              format at http://ADDRESS:PORT/metrics too:
                              an address of a LAN link or loopback, never
                              one of the WAN link (refused at start); a
                              port above 1023 (the socket opens after the
                              privilege drop). Off by default.
  user NAME                   The unprivileged user portleased runs as once
                              it has read its configuration and prepared
                              the state file's directory (default
                              portleased): CAP_NET_ADMIN alone kept
                              (iptables-legacy also CAP_NET_RAW; the
                              iptables backends hand theirs on, ambient,
                              to the iptables programs), no_new_privs
                              set, files changed only in the state file's
                              directory (Landlock, where the kernel has
                              it). Started as another user with
                              CAP_NET_ADMIN (systemd; with iptables-legacy
                              and iptables also CAP_NET_RAW), it stays
                              that user.

Example /etc/portleased.conf:
  interface eth0
  listen on eth1
  allow 1024-65535 192.168.1.0/24 1024-65535

Exit status: 0 on a clean stop or a valid configuration; 1 on any error,
printed on standard error.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	foreground bool
	check      bool
	verbose    bool
	file       string
	pidFile    string
	profile    string
}

func parseFlags(args []string, stdout, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("portleased", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	fs.BoolVar(&o.foreground, "d", false, "")
	fs.BoolVar(&o.check, "n", false, "")
	fs.BoolVar(&o.verbose, "v", false, "")
	fs.StringVar(&o.file, "f", defaultConfig, "")
	fs.StringVar(&o.pidFile, "p", defaultPIDFile, "")
	fs.StringVar(&o.profile, "profile-socket", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
		} else {
			fmt.Fprintln(stderr, "Run portleased -h for help.")
		}
		return o, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "portleased: unexpected argument %q\nRun portleased -h for help.\n", fs.Arg(0))
		return o, errors.New("usage")
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	if i := slices.Index(args, "-c"); i >= 0 {
		return runControl(args[:i], args[i+1:], stdout, stderr)
	}
	o, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 1
	}
	cfg, err := config.ParseFile(o.file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if daemon.IsChild(childEnv) {
			daemon.Fail(childEnv, err)
		}
		return 1
	}
	if o.check {
		fmt.Fprintln(stdout, "configuration OK")
		firewall, err := chooseFirewall(cfg.Firewall, firewallFactsFor(cfg.Firewall))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "firewall: %s\n", firewall)
		return 0
	}
	if !o.foreground && !daemon.IsChild(childEnv) {
		if err := daemon.Detach(childEnv, stderr); err != nil {
			fmt.Fprintf(stderr, "portleased: %v\n", err)
			return 1
		}
		return 0
	}

	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	var log *slog.Logger
	var pid *daemon.PIDFile
	if o.foreground {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	} else {
		if h, err := syslogx.New("portleased", level); err == nil {
			defer h.Close()
			log = slog.New(h)
		} else {
			daemon.Warn(childEnv, fmt.Sprintf("portleased: warning: %v; its log is lost (run with -d to log to standard error)", err))
			log = slog.New(slog.DiscardHandler)
		}
		if pid, err = daemon.WritePIDFile(o.pidFile); err != nil {
			daemon.Fail(childEnv, err)
			return 1
		}
		defer pid.Remove()
	}
	if o.profile != "" {
		stop, err := serveProfiles(o.profile, log)
		if err != nil {
			log.Error("not started", "err", err)
			daemon.Fail(childEnv, err)
			if o.foreground {
				fmt.Fprintf(stderr, "portleased: %v\n", err)
			}
			return 1
		}
		defer stop()
	}
	notStarted := func(err error) int {
		log.Error("not started", "err", err)
		daemon.Fail(childEnv, err)
		if o.foreground {
			fmt.Fprintf(stderr, "portleased: %v\n", err)
		}
		return 1
	}
	// The backend decides the privileges kept: it is chosen first, with
	// those of the start (root reads what iptables-legacy holds).
	firewall, err := chooseFirewall(cfg.Firewall, firewallFactsFor(cfg.Firewall))
	if err != nil {
		return notStarted(err)
	}
	log.Info("firewall backend", "backend", firewall.backend, "reason", firewall.reason)
	locks := openXtablesLocks(firewall.backend, cfg.StateFile, log)
	defer locks.close()
	ctl, err := listenControl(cfg)
	if err != nil {
		return notStarted(err)
	}
	defer ctl.close()
	if err := dropPrivileges(cfg, firewall.backend, log); err != nil {
		return notStarted(err)
	}
	notify, err := sdnotify.FromEnv(os.Getenv)
	if err != nil {
		log.Warn("service manager not told", "err", err)
	}
	d := &gatewayDaemon{file: o.file, log: log, notify: notify, control: ctl}
	if err := d.run(cfg, firewall, locks, func() { daemon.Ready(childEnv); d.tell(sdnotify.Ready) }); err != nil {
		log.Error("stopped", "err", err)
		daemon.Fail(childEnv, err)
		if o.foreground {
			fmt.Fprintf(stderr, "portleased: %v\n", err)
		}
		return 1
	}
	return 0
}
