// Command portlease keeps network ports open on whatever NAT router the
// network has, over PCP, NAT-PMP or UPnP IGD, and IPv6 pinholes over PCP or UPnP. `portlease keep` is a drop-in
// replacement for upnp-daemon (same flags, same CSV and JSON files);
// `portlease map|unmap|list|probe` are one-shot tools like upnpc and natpmpc.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

const usage = `Usage: portlease COMMAND [options]

portlease keeps network ports open on the NAT router of the network, over
PCP (RFC 6887), NAT-PMP or UPnP IGD (v1 and v2), whichever the router speaks,
and opens IPv6 firewall pinholes over PCP or UPnP (WANIPv6FirewallControl).

Commands:
  keep            Keep the mappings listed in a file open, renewing them and
                  re-creating them when the router forgets them. A drop-in
                  replacement for upnp-daemon: same flags, same files.
  map PROTO PORT  Map a port once and print what the router granted.
  unmap PROTO PORT
                  Delete a mapping.
  list            Print the router's port mapping table (UPnP; PCP and
                  NAT-PMP cannot list, and neither protocol lists pinholes).
  probe           Print the gateways found, the protocols each answers, the
                  external address, and whether it is reachable from outside.
  help [COMMAND]  Print this help, or a command's.

Run "portlease COMMAND -h" for a command's options. Invoked as upnp-daemon
(a link), portlease behaves as "portlease keep".

Exit status: 0 on success; 1 on an error (printed on standard error);
2 when some mappings of a file failed while the others were made.
`

// exitPartial is the exit status when some lines of a file failed.
const exitPartial = 2

func main() {
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "upnp-daemon" {
		args = append([]string{"keep"}, args...)
	}
	os.Exit(run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		if len(rest) > 0 {
			return run(ctx, []string{rest[0], "-h"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	case "keep":
		return runKeep(ctx, rest, stdin, stdout, stderr)
	case "map", "unmap", "list", "probe":
		return runOneShot(ctx, cmd, rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "portlease: unknown command %q\nRun portlease help for the commands.\n", cmd)
	return 1
}

// handleParseError prints what the flag package did not and returns the
// exit status for a parse error.
func handleParseError(err error, name, help string, stdout, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, help)
		return 0
	}
	fmt.Fprintf(stderr, "Run portlease %s -h for help.\n", name)
	return 1
}

// logLevel reads a level name: debug, info, warn or error.
func logLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}
