package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/portlease/portlease/internal/cliflags"

	"github.com/portlease/portlease/client"
)

const mapHelp = `Usage: portlease map PROTO PORT [options]
       portlease unmap PROTO PORT [options]

map asks the gateway for a mapping of PORT (TCP or UDP) and prints what it
granted: the external address and port, the lifetime, the protocol spoken
and, over PCP, the mapping's nonce (over UPnP, a pinhole's UniqueID). unmap
deletes it (over UPnP, the mapping of external port --external-port, or
PORT; over NAT-PMP, this host's mapping of internal port PORT; over PCP, the
mapping of internal port PORT with its nonce, RFC 6887 §15: the one derived
from the --nonce-key file, the same in every run, or the one --nonce
gives). An IPv6 address for --to opens a firewall pinhole to it: over PCP
(the IPv6 default router), else over UPnP (the IGD's
WANIPv6FirewallControl:1), where map prints the pinhole's UniqueID, by which
alone unmap --pinhole-id deletes it.

Options:
  --external-port N   The external port wanted, and no other (default: PORT
                      if free, else any the gateway picks).
  --lifetime SECONDS  The lease asked for (default 3600; 0 asks UPnP for a
                      permanent mapping).
  --to ADDR           Map to this LAN address instead of this machine's
                      (UPnP, or PCP THIRD_PARTY where the gateway allows it:
                      NAT-PMP maps only the asking host). An IPv6 address:
                      a pinhole (PCP or UPnP).
  --allow PREFIX[,PORT]
                      Admit inbound traffic only from PREFIX (and from PORT);
                      repeat for more peers (PCP FILTER).
  --nonce HEX         PCP: this nonce instead of the --nonce-key one (for
                      unmap, the one map printed).
  --pinhole-id N      unmap of a UPnP pinhole (--to its IPv6 address): the
                      UniqueID map printed.
  --description TEXT  The description stored with the mapping (UPnP).
  --replace           If another host holds the external port, delete its
                      mapping and take the port (UPnP).
  --json              Print the result as JSON.
`

const listHelp = `Usage: portlease list [options]

list prints the gateway's port mapping table, read over UPnP IGD
(GetGenericPortMappingEntry). NAT-PMP and PCP have no way to list mappings,
and IPv6 pinholes are not listed: neither PCP nor UPnP's
WANIPv6FirewallControl:1 has an action that lists them.

Options:
  --json   Print the table as JSON.

`

const probeHelp = `Usage: portlease probe [options]

probe prints every gateway found (the IPv4 and IPv6 default routes of each
interface, and UPnP IGDs answering SSDP), the protocols each one answers
(PCP, NAT-PMP, UPnP IGD; an IPv6 router is asked PCP only), its external
address, and a warning when that address is private or carrier-grade NAT
(100.64.0.0/10): a mapping there is not reachable from the internet.

Options:
  --json   Print the result as JSON.

`

func runOneShot(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portlease "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	var cf clientFlags
	cf.register(fs, "warn")
	asJSON := fs.Bool("json", false, "")
	var (
		extPort     = new(uint)
		lifetime    = new(uint)
		to          = new(string)
		description = new(string)
		replace     = new(bool)
		allow       filterFlags
		nonce       = new(string)
		nonceKey    = new(string)
		pinholeID   = new(uint)
	)
	help := listHelp
	switch cmd {
	case "map", "unmap":
		help = mapHelp + fmt.Sprintf(nonceKeyHelp, nonceKeyLen) + "\n"
		fs.UintVar(extPort, "external-port", 0, "")
		fs.UintVar(lifetime, "lifetime", 3600, "")
		fs.StringVar(to, "to", "", "")
		fs.StringVar(description, "description", "portlease", "")
		fs.BoolVar(replace, "replace", false, "")
		fs.Var(&allow, "allow", "")
		fs.StringVar(nonce, "nonce", "", "")
		fs.StringVar(nonceKey, "nonce-key", "", "")
		fs.UintVar(pinholeID, "pinhole-id", 0, "")
	case "probe":
		help = probeHelp
	}
	help += clientFlagsHelp
	pos, err := cliflags.ParseInterleaved(fs, args)
	if err != nil {
		return handleParseError(err, cmd, help, stdout, stderr)
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "portlease %s: %v\n", cmd, err)
		return 1
	}
	level, err := logLevel(cf.logLevel)
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := cf.config(log)
	if err != nil {
		return fail(err)
	}

	var req client.Request
	switch cmd {
	case "map", "unmap":
		if len(pos) != 2 {
			return fail(fmt.Errorf("want PROTO PORT, e.g. portlease %s tcp 8080", cmd))
		}
		if req.Protocol, err = parseProtocol(pos[0]); err != nil {
			return fail(err)
		}
		if req.InternalPort, err = parsePort("port", pos[1]); err != nil {
			return fail(err)
		}
		if *extPort > 65535 {
			return fail(fmt.Errorf("--external-port %d: not a port", *extPort))
		}
		req.ExternalPort = uint16(*extPort)
		req.Lifetime = time.Duration(*lifetime) * time.Second
		req.Description = *description
		if *replace {
			req.OnConflict = client.ConflictReplace
		}
		if *to != "" {
			if req.InternalAddr, err = netip.ParseAddr(*to); err != nil {
				return fail(fmt.Errorf("--to %q: not an IP address", *to))
			}
		}
		req.Filters = allow
		if *nonce != "" {
			if req.Nonce, err = client.ParseNonce(*nonce); err != nil {
				return fail(fmt.Errorf("--nonce: %w", err))
			}
		}
		if *pinholeID != 0 {
			switch {
			case cmd != "unmap":
				return fail(errors.New("--pinhole-id: only unmap takes it (map prints it)"))
			case *pinholeID > 65535:
				return fail(fmt.Errorf("--pinhole-id %d: want a UniqueID, 1 to 65535", *pinholeID))
			case !req.InternalAddr.Is6():
				return fail(errors.New("--pinhole-id: give the pinhole's IPv6 address with --to"))
			}
			req.PinholeID = uint16(*pinholeID)
		}
		if err := applyNonceKey(&cfg, *nonceKey); err != nil {
			return fail(err)
		}
	default:
		if len(pos) != 0 {
			return fail(fmt.Errorf("unexpected argument %q", pos[0]))
		}
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := client.New(cfg)
	if err != nil {
		return fail(err)
	}
	defer c.Close()

	switch cmd {
	case "map":
		res, err := c.Map(ctx, req)
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			return printJSON(stdout, resultJSON(res))
		}
		what := "mapped"
		if res.Pinhole {
			what = "pinhole"
		}
		fmt.Fprintf(stdout, "%s %s %s -> %s, %s, via %s (gateway %s)\n",
			what, res.Protocol, res.External, res.Internal, lifetimeText(res.Lifetime), res.Method, res.Gateway)
		unmap := fmt.Sprintf("portlease unmap %s %d", strings.ToLower(string(res.Protocol)), res.Internal.Port())
		if req.InternalAddr.IsValid() {
			unmap += " --to " + req.InternalAddr.String()
		}
		switch {
		case res.Method == client.PCP:
			fmt.Fprintf(stdout, "nonce %s (%s --nonce %s)\n", res.Nonce, unmap, res.Nonce)
		case res.PinholeID != 0:
			fmt.Fprintf(stdout, "pinhole id %d (%s --pinhole-id %d)\n", res.PinholeID, unmap, res.PinholeID)
		}
	case "unmap":
		if err := c.Unmap(ctx, req); err != nil {
			return fail(err)
		}
		if *asJSON {
			return printJSON(stdout, map[string]any{"deleted": true, "protocol": req.Protocol, "port": req.InternalPort})
		}
		fmt.Fprintf(stdout, "deleted %s\n", req)
	case "list":
		entries, err := c.List(ctx)
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			out := make([]map[string]any, len(entries))
			for i, e := range entries {
				out[i] = map[string]any{"protocol": e.Protocol, "external_port": e.ExternalPort, "internal": e.Internal.String(),
					"description": e.Description, "lifetime": int(e.Lifetime / time.Second), "remote_host": e.RemoteHost, "enabled": e.Enabled}
			}
			return printJSON(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROTO\tEXTERNAL\tINTERNAL\tLIFETIME\tDESCRIPTION")
		for _, e := range entries {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", e.Protocol, e.ExternalPort, e.Internal, lifetimeText(e.Lifetime), e.Description)
		}
		tw.Flush()
		fmt.Fprintf(stdout, "%d mappings\n", len(entries))
		// WANIPv6FirewallControl:1 has no action that lists pinholes,
		// PCP none that lists anything: say so rather than show none.
		fmt.Fprintln(stdout, "IPv6 pinholes are not listed: UPnP's WANIPv6FirewallControl:1 and PCP cannot list them")
	case "probe":
		gws, err := c.Probe(ctx)
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			return printJSON(stdout, gws)
		}
		printProbe(stdout, gws)
	}
	return 0
}

func lifetimeText(d time.Duration) string {
	if d == 0 {
		return "permanent"
	}
	return fmt.Sprintf("for %d s", int(d/time.Second))
}

func resultJSON(r client.Result) map[string]any {
	out := map[string]any{
		"protocol": r.Protocol, "internal": r.Internal.String(), "external": r.External.String(),
		"lifetime": int(r.Lifetime / time.Second), "method": r.Method, "gateway": r.Gateway.String(), "interface": r.Interface,
	}
	if r.Method == client.PCP {
		out["nonce"] = r.Nonce.String()
	}
	if r.Method == client.PCP || r.Pinhole {
		out["pinhole"] = r.Pinhole
	}
	if r.PinholeID != 0 {
		out["pinhole_id"] = r.PinholeID
	}
	return out
}

func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}

func printProbe(w io.Writer, gws []client.Gateway) {
	if len(gws) == 0 {
		fmt.Fprintln(w, "no gateway found")
		return
	}
	for _, g := range gws {
		fmt.Fprintf(w, "gateway %s on %s (this host: %s)\n", g.Address, g.Interface, g.Local)
		if g.PCP != nil {
			fmt.Fprintf(w, "  PCP: yes, epoch %d s\n", g.PCP.Epoch)
		} else {
			fmt.Fprintln(w, "  PCP: no answer")
		}
		if g.Address.Is6() {
			if g.PCP != nil {
				fmt.Fprintf(w, "  IPv6: pinholes to %s can be opened over PCP\n", g.Local)
			} else {
				fmt.Fprintf(w, "  IPv6: no PCP answer: pinholes to %s go over UPnP where the IGD has WANIPv6FirewallControl\n", g.Local)
			}
			continue
		}
		if g.NATPMP != nil {
			if g.NATPMP.PCPOnly {
				fmt.Fprintln(w, "  NAT-PMP: no (the gateway speaks PCP only, which maps instead)")
			} else {
				fmt.Fprintf(w, "  NAT-PMP: yes, external address %s, epoch %d s\n", g.NATPMP.ExternalAddress, g.NATPMP.Epoch)
			}
		} else {
			fmt.Fprintln(w, "  NAT-PMP: no answer")
		}
		if len(g.UPnP) == 0 {
			fmt.Fprintln(w, "  UPnP IGD: none found")
		}
		for _, u := range g.UPnP {
			state := "connected"
			if !u.Connected {
				state = "not connected"
			}
			service := strings.TrimPrefix(u.Service, "urn:schemas-upnp-org:service:")
			fmt.Fprintf(w, "  UPnP IGD: %s at %s (%s), %s, external address %s\n", service, u.Location, u.FriendlyName, state, u.ExternalAddress)
		}
		switch {
		case !g.ExternalAddress.IsValid():
			fmt.Fprintln(w, "  external address: unknown")
		case g.DoubleNAT:
			fmt.Fprintf(w, "  external address: %s\n  WARNING: %s is not a public address: there is another NAT beyond this gateway (double NAT or carrier-grade NAT), and mappings here are not reachable from the internet.\n", g.ExternalAddress, g.ExternalAddress)
		default:
			fmt.Fprintf(w, "  external address: %s\n", g.ExternalAddress)
		}
	}
}

// filterFlags collects --allow PREFIX[,PORT] (PCP FILTER).
type filterFlags []client.Filter

func (f *filterFlags) String() string { return fmt.Sprint([]client.Filter(*f)) }

// Set reads "198.51.100.7", "2001:db8::/32" or "203.0.113.0/24,4662".
func (f *filterFlags) Set(s string) error {
	text, portText, hasPort := strings.Cut(s, ",")
	var flt client.Filter
	if hasPort {
		p, err := parsePort("port", portText)
		if err != nil {
			return err
		}
		flt.Port = p
	}
	if p, err := netip.ParsePrefix(text); err == nil {
		flt.Remote = p
	} else if a, err := netip.ParseAddr(text); err == nil {
		flt.Remote = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	} else {
		return fmt.Errorf("%q: want an address or a prefix", text)
	}
	*f = append(*f, flt)
	return nil
}
