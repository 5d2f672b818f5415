// Command plbench is a load generator for NAT-PMP (RFC 6886) and UPnP IGD
// gateways. It asks a gateway for many port mappings at once, from several
// concurrent clients, and reports how many succeeded, how many failed and
// why, and the latency distribution of the answers. The lab runs it on a LAN
// host to compare portleased with miniupnpd; see usageText for its interface.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/portlease/portlease/natpmp"
)

// usageText is the -h text, written as a manual page.
const usageText = `NAME
    plbench - load generator for NAT-PMP, PCP and UPnP IGD port-mapping gateways

SYNOPSIS
    plbench natpmp -gateway ADDR [-port PORT] [flags]
    plbench pcp -gateway ADDR [-port PORT] [flags]
    plbench upnp -url URL [flags]

DESCRIPTION
    plbench asks a gateway for -n port mappings from -c concurrent clients
    and prints how many succeeded, the errors by kind and the latency
    distribution of the answers.

    natpmp sends NAT-PMP mapping requests (RFC 6886 §3.3) to ADDR, UDP port
    -port. Each client has its own UDP socket and one request outstanding at
    a time; an unanswered request is sent again after -timeout, up to -tries
    sends, and then counted as a "timeout" error. An answer matches its
    request by opcode and internal port; other packets are ignored.

    pcp sends PCP MAP requests (RFC 6887 §11) to ADDR, UDP port -port, with
    the same clients, retransmission and matching (by nonce, protocol and
    internal port). Over IPv4 they ask for NAT mappings; with an IPv6 ADDR,
    for IPv6 firewall pinholes of the sending host's own address. Each
    mapping's nonce is derived from its port and protocol, so that a later
    run's renew or delete names the mappings of an earlier one.

    upnp reads the device description at URL, picks its best WAN connection
    service (WANIPConnection:2, then :1, then WANPPPConnection:1) and POSTs
    AddPortMapping or DeletePortMapping to its control URL. Each client has
    its own keep-alive HTTP connection and one request at a time; a request
    not answered within -timeout times -tries counts as a "timeout" error.

    Request i (0 <= i < N) is for internal port -first + i/2 and protocol
    TCP when i is even, UDP when odd (-proto both), or for internal port
    -first + i with -proto tcp or udp. The suggested external port is the
    internal port. Clients take the next request as they finish the last.

OPERATIONS (-op)
    map      ask for the N mappings, lifetime -lifetime.
    renew    ask for the same N mappings again: against a gateway that
             already holds them, these are renewals.
    delete   delete the same N mappings: lifetime 0 for NAT-PMP (RFC 6886
             §3.4) and PCP (RFC 6887 §15), DeletePortMapping for UPnP.

FLAGS
    -gateway ADDR    NAT-PMP, PCP: the gateway's address. Required for
                     natpmp and pcp.
    -port PORT       NAT-PMP, PCP: the gateway's UDP port (default 5351).
    -url URL         UPnP: the root device description (SSDP LOCATION),
                     e.g. http://192.168.1.1:5000/rootDesc.xml. Required
                     for upnp.
    -op OP           map, renew or delete (default map).
    -n N             number of requests, one per mapping (default 1000).
    -c C             concurrent clients (default 16).
    -first P         first internal port (default 20000).
    -proto P         tcp, udp or both (default both: even requests TCP, odd
                     UDP, so N may be up to twice the port span).
    -lifetime S      lifetime asked, in seconds (default 3600).
    -internal ADDR   UPnP NewInternalClient (default: the local address of
                     the connection to the gateway).
    -rate R          at most R requests per second in all (default 0: as
                     fast as the gateway answers).
    -duration D      stop starting requests after D, e.g. 30s, even if N is
                     not reached (default 0: no limit).
    -timeout D       NAT-PMP and PCP retransmission interval (default
                     250ms).
    -tries T         NAT-PMP and PCP sends per request (default 4).
    -json            print the result as one JSON object.
    -quiet           no progress lines on standard error.

OUTPUT
    A short summary, or with -json one object with the keys protocol, op,
    requests (requests sent), ok, errors, errors_by_kind, seconds, rate
    (successful requests per second), p50_ms, p90_ms, p99_ms, max_ms,
    clients and stopped_early. Error kinds: "timeout" (no answer),
    "result N" (NAT-PMP result code N, e.g. "result 4" Out of resources),
    "pcp N" (PCP result code N, e.g. "pcp 8" NO_RESOURCES),
    "upnp N" (UPnP error code N, e.g. "upnp 718" ConflictInMappingEntry),
    "http" (a transport failure or an unexpected HTTP answer), "network"
    (a socket error such as ICMP port unreachable), "malformed" (an answer
    that cannot be read). Latencies are exact percentiles (nearest rank)
    over every answered request, success or protocol error, from its first
    send to its answer; with -rate, from its turn in the schedule, so that
    a request sent late because its client still waited for the one before
    counts that wait too.

    An interrupt (SIGINT) stops the run like -duration: the requests in
    progress finish and the result is printed with stopped_early true.

EXIT STATUS
    0 when the run took place, even with errors; 1 on a usage error, or when
    the gateway cannot be reached at all (the first request of every client
    went unanswered, or the UPnP description cannot be read).

EXAMPLES
    plbench natpmp -gateway 192.168.1.1 -n 10000 -c 32 -json
    plbench natpmp -gateway 192.168.1.1 -n 10000 -op delete
    plbench pcp -gateway fd00::1 -n 10000 -c 32 -json
    plbench upnp -url http://192.168.1.1:5000/rootDesc.xml -n 2000 -rate 500
`

// errUsage marks an error of the command line: exit status 1 after the
// message and a pointer to -h.
var errUsage = errors.New("usage")

// errUnreachable means no client got an answer to its first request.
var errUnreachable = errors.New("plbench: gateway unreachable")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program: it parses args, runs the benchmark and prints
// its result to stdout, and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usageText)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "plbench: %v\nRun 'plbench -h' for usage.\n", err)
		return 1
	}
	var progress io.Writer
	if !cfg.quiet {
		progress = stderr
	}
	var res *result
	switch cfg.protocol {
	case protoNATPMP:
		res, err = runNATPMP(ctx, cfg, progress)
	case protoPCP:
		res, err = runPCP(ctx, cfg, progress)
	default:
		res, err = runUPnP(ctx, cfg, progress)
	}
	if res != nil {
		if cfg.json {
			err2 := json.NewEncoder(stdout).Encode(res)
			if err2 != nil {
				fmt.Fprintf(stderr, "plbench: %v\n", err2)
				return 1
			}
		} else {
			res.writeText(stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	return 0
}

// Protocol names, the subcommands.
const (
	protoNATPMP = "natpmp"
	protoPCP    = "pcp"
	protoUPnP   = "upnp"
)

// Operations of -op.
const (
	opMap    = "map"
	opRenew  = "renew"
	opDelete = "delete"
)

// config is the parsed command line.
type config struct {
	protocol string
	op       string
	gateway  netip.Addr
	port     uint16
	url      string
	n        int
	clients  int
	first    uint16
	proto    string // "tcp", "udp" or "both"
	lifetime uint32
	internal string
	rate     float64
	duration time.Duration
	timeout  time.Duration
	tries    int
	json     bool
	quiet    bool
}

// parseArgs reads the command line. It returns flag.ErrHelp for -h and an
// error wrapping errUsage for anything else it refuses.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	if len(args) == 0 {
		return config{}, fmt.Errorf("%w: missing subcommand natpmp, pcp or upnp", errUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return config{}, flag.ErrHelp
	case protoNATPMP, protoPCP, protoUPnP:
	default:
		return config{}, fmt.Errorf("%w: unknown subcommand %q; want natpmp, pcp or upnp", errUsage, args[0])
	}
	cfg := config{protocol: args[0]}
	fs := flag.NewFlagSet("plbench "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var gw string
	var port, first, lifetime uint
	fs.StringVar(&cfg.op, "op", opMap, "")
	fs.StringVar(&gw, "gateway", "", "")
	fs.UintVar(&port, "port", natpmp.ServerPort, "")
	fs.StringVar(&cfg.url, "url", "", "")
	fs.IntVar(&cfg.n, "n", 1000, "")
	fs.IntVar(&cfg.clients, "c", 16, "")
	fs.UintVar(&first, "first", 20000, "")
	fs.StringVar(&cfg.proto, "proto", "both", "")
	fs.UintVar(&lifetime, "lifetime", 3600, "")
	fs.StringVar(&cfg.internal, "internal", "", "")
	fs.Float64Var(&cfg.rate, "rate", 0, "")
	fs.DurationVar(&cfg.duration, "duration", 0, "")
	fs.DurationVar(&cfg.timeout, "timeout", 250*time.Millisecond, "")
	fs.IntVar(&cfg.tries, "tries", 4, "")
	fs.BoolVar(&cfg.json, "json", false, "")
	fs.BoolVar(&cfg.quiet, "quiet", false, "")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	bad := func(format string, a ...any) (config, error) {
		return config{}, fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
	}
	switch cfg.op {
	case opMap, opRenew, opDelete:
	default:
		return bad("-op %q: want map, renew or delete", cfg.op)
	}
	switch cfg.proto {
	case "tcp", "udp", "both":
	default:
		return bad("-proto %q: want tcp, udp or both", cfg.proto)
	}
	if cfg.n < 1 {
		return bad("-n %d: want at least 1", cfg.n)
	}
	if cfg.clients < 1 {
		return bad("-c %d: want at least 1", cfg.clients)
	}
	if first < 1 || first > 65535 {
		return bad("-first %d: want a port 1-65535", first)
	}
	cfg.first = uint16(first)
	if last := int(first) + portSpan(cfg.n, cfg.proto) - 1; last > 65535 {
		return bad("-n %d from -first %d with -proto %s needs ports up to %d, beyond 65535", cfg.n, first, cfg.proto, last)
	}
	if lifetime > 1<<32-1 {
		return bad("-lifetime %d: too large", lifetime)
	}
	cfg.lifetime = uint32(lifetime)
	if cfg.rate < 0 || cfg.duration < 0 {
		return bad("-rate and -duration must not be negative")
	}
	if cfg.timeout <= 0 || cfg.tries < 1 {
		return bad("-timeout must be positive and -tries at least 1")
	}
	switch cfg.protocol {
	case protoNATPMP, protoPCP:
		if gw == "" {
			return bad("%s needs -gateway ADDR", cfg.protocol)
		}
		a, err := netip.ParseAddr(gw)
		if err != nil {
			return bad("-gateway %q: %v", gw, err)
		}
		if port < 1 || port > 65535 {
			return bad("-port %d: want 1-65535", port)
		}
		cfg.gateway, cfg.port = a.Unmap(), uint16(port)
	case protoUPnP:
		if cfg.url == "" {
			return bad("upnp needs -url URL")
		}
		if !strings.HasPrefix(cfg.url, "http://") && !strings.HasPrefix(cfg.url, "https://") {
			return bad("-url %q: want an http:// URL", cfg.url)
		}
		if cfg.internal != "" {
			if _, err := netip.ParseAddr(cfg.internal); err != nil {
				return bad("-internal %q: %v", cfg.internal, err)
			}
		}
	}
	return cfg, nil
}

// portSpan is how many internal ports n requests of proto use.
func portSpan(n int, proto string) int {
	if proto == "both" {
		return (n + 1) / 2
	}
	return n
}

// request returns the protocol ("TCP" or "UDP") and the internal port of
// request i.
func (c *config) request(i int) (tcp bool, port uint16) {
	switch c.proto {
	case "tcp":
		return true, c.first + uint16(i)
	case "udp":
		return false, c.first + uint16(i)
	}
	return i%2 == 0, c.first + uint16(i/2)
}
