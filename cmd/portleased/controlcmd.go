package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/portlease/portlease/internal/cliflags"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/gateway/control"
)

const controlUsage = `Usage: portleased [-f file] -c COMMAND [options]

portleased -c asks the running portleased over its control socket (the
"control socket" directive, default /run/portleased/control) and acts on
its lease table: every lease of every protocol, NAT-PMP, PCP and UPnP IGD,
and the IPv6 pinholes. The socket is owned by root and the daemon's group
(the group of its "user", default portleased), mode 0660: run as root or as
a member of that group (usermod -aG portleased NAME).

Commands:
  list [--host ADDR] [--protocol tcp|udp] [--origin natpmp|pcp|upnp]
       [--ports LOW-HIGH]
              Print the leases, the filters combined: one internal address,
              one protocol, the leases one protocol made, external ports in
              a range (a pinhole's port is its internal one). Columns:
                PROTO        tcp or udp
                EXTERNAL     the external port, or "pinhole ID" for an IPv6
                             pinhole (its UPnP UniqueID)
                INTERNAL     the LAN host's address and port
                REMAINING    the lifetime left, "for N s", or "permanent"
                ORIGIN       natpmp, pcp or upnp: who made the lease
                NONCE        yes for a PCP lease its nonce protects (only
                             the client that knows it may change it)
                SHARE        the host's leases of every protocol against
                             "max mappings per host", such as 3/1024
                DESCRIPTION  the client's description (UPnP)
  show PROTO PORT | show pinhole ID
              Print one lease whole: its filters (the remote peers PCP
              FILTER or PEER and UPnP RemoteHost admit), when it was
              created and when it ends.
  delete PROTO PORT | delete pinhole ID | delete --host ADDR
              Delete one lease, or every lease of the LAN host ADDR, of
              every protocol. The kernel stops forwarding at once and the
              established flows are cut. NAT-PMP and PCP clients that keep
              their mappings ask again at their next renewal.
  counters    Print the counts since the daemon's start: leases granted,
              renewed, deleted and expired by origin, requests refused by
              reason, kernel transactions and state file writes.

Options of every command:
  -f file        The daemon's configuration file, read for its "control
                 socket" (default /etc/portleased.conf; when it cannot be
                 read, /run/portleased/control).
  --socket path  The control socket, whatever the file says.
  --json         Print the API's JSON answer (version 1), as the socket
                 gives it: see README for its fields.

Exit status: 0 on success; 1 on an error (printed on standard error, with
the socket's path and the system's error when it cannot be reached), such
as no lease of that protocol and port.
`

// controlOptions are the options every control command takes.
type controlOptions struct {
	file     string
	fileSet  bool
	socket   string
	json     bool
	host     string
	protocol string
	origin   string
	ports    string
}

// runControl runs portleased [-f file] -c COMMAND args.
func runControl(before, args []string, stdout, stderr io.Writer) int {
	var o controlOptions
	pre := flag.NewFlagSet("portleased", flag.ContinueOnError)
	pre.SetOutput(io.Discard)
	pre.StringVar(&o.file, "f", defaultConfig, "")
	if err := pre.Parse(before); err != nil || pre.NArg() > 0 {
		fmt.Fprintf(stderr, "portleased -c: only -f file may come before -c\nRun portleased -c help for help.\n")
		return 1
	}
	pre.Visit(func(*flag.Flag) { o.fileSet = true })
	if len(args) == 0 {
		fmt.Fprint(stderr, controlUsage)
		return 1
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, controlUsage)
		return 0
	case "list", "show", "delete", "counters":
	default:
		fmt.Fprintf(stderr, "portleased -c: unknown command %q (want list, show, delete or counters)\nRun portleased -c help for help.\n", cmd)
		return 1
	}
	fs := flag.NewFlagSet("portleased -c "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	fs.Func("f", "", func(s string) error { o.file, o.fileSet = s, true; return nil })
	fs.StringVar(&o.socket, "socket", "", "")
	fs.BoolVar(&o.json, "json", false, "")
	if cmd == "list" || cmd == "delete" {
		fs.StringVar(&o.host, "host", "", "")
	}
	if cmd == "list" {
		fs.StringVar(&o.protocol, "protocol", "", "")
		fs.StringVar(&o.origin, "origin", "", "")
		fs.StringVar(&o.ports, "ports", "", "")
	}
	pos, err := cliflags.ParseInterleaved(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, controlUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "Run portleased -c help for help.")
		return 1
	}
	socket, err := o.socketPath()
	if err != nil {
		fmt.Fprintf(stderr, "portleased -c %s: %v\n", cmd, err)
		return 1
	}
	c := &control.Client{Socket: socket}
	ctx := context.Background()
	switch cmd {
	case "list":
		err = controlList(ctx, c, o, pos, stdout)
	case "show":
		err = controlShow(ctx, c, o, pos, stdout)
	case "delete":
		err = controlDelete(ctx, c, o, pos, stdout)
	case "counters":
		err = controlCounters(ctx, c, o, pos, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "portleased -c %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// socketPath returns --socket, or the configuration file's "control
// socket", or the default when the default file cannot be read.
func (o controlOptions) socketPath() (string, error) {
	if o.socket != "" {
		return o.socket, nil
	}
	cfg, err := config.ParseFile(o.file)
	switch {
	case err != nil && !o.fileSet && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)):
		return config.DefaultControlSocket, nil
	case err != nil:
		return "", fmt.Errorf("%w\n(the control socket is read from the configuration; --socket names it)", err)
	case cfg.Observe.ControlSocket == "":
		return "", fmt.Errorf("%s says \"control socket none\": the daemon serves no control socket", o.file)
	}
	return cfg.Observe.ControlSocket, nil
}

// printJSONTo writes v indented.
func printJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// noArgs fails when a command that takes none got some.
func noArgs(pos []string) error {
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", strings.Join(pos, " "))
	}
	return nil
}
