// Command benchlab is `make bench`: it measures portleased and miniupnpd
// side by side in the network lab (issue 5), portleased a second time
// with a state file (issue 9), and portleased on its iptables backends,
// iptables-nft and iptables-legacy (issue 13), at the sizes up to
// -iptables-max-size. For each gateway, in a fresh lab, it fills
// the gateway's table from a LAN host to each size of -sizes with the load
// generator plbench, and at each size measures new NAT-PMP mappings as fast
// as the gateway answers and (portleased) offered at a fixed rate, their
// deletion, UPnP AddPortMapping and DeletePortMapping, the daemon's
// resident memory and what the kernel holds (nftables: the elements of
// portleased's inbound4 map; iptables: the DNAT rules of its PORTLEASE-*
// chains, through that variant's iptables-save). At the end it times the
// removal of the whole table (portleased: SIGTERM until exit; miniupnpd: a
// NAT-PMP "delete all") while another LAN host keeps asking for the
// external address. A step that runs out of its budget ends that
// gateway's series, and the results say where and why.
//
// portleased-state, portleased with its state file on the disk of
// -state-dir (not a tmpfs, where fsync costs nothing), runs alongside
// portleased, size by size, and at each size the two make new NAT-PMP
// mappings in alternating rounds for the ratio of their rates. Its series
// ends with restarts instead of the removal: portleased is started again
// with the leases of the largest size in its state file, and the time from
// the exec to the first NAT-PMP answer is measured.
//
// It writes results.json, BENCHMARKS-generated.md and rate.png (through
// gnuplot) in -out. Everything that talks to a gateway runs inside the
// lab's namespaces.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portlease/portlease/internal/netlab"
)

const (
	// leaseLifetime is the lifetime every load asks for: longer than a run.
	leaseLifetime = 86400
	// firstPort is the first internal port of the prefill: above the
	// gateways' own service ports (SSDP 1900, UPnP HTTP 5000, NAT-PMP
	// 5350-5351), which neither hands out. A mapping of such an internal
	// port gets a random external port instead, which a later UPnP step of
	// the same host may take over (AddPortMapping replaces the host's own
	// mapping of a port), and the kernel would hold one mapping less than
	// counted. 100,000 mappings (TCP and UDP on 50,000 ports) and the
	// measured ones of each size, in blocks from 65535 down
	// (measuredPorts), still fit.
	firstPort = 5352
	// removalBudget bounds the removal of the whole table.
	removalBudget = 120 * time.Second
)

// bench is one benchlab run: its settings and results.
type bench struct {
	portleasedPath string
	plbenchPath    string
	out            string
	sizes          []int
	gateways       []string
	mapN           int
	pacedRate      float64
	upnpN          int
	clients        int
	prefillBudget  time.Duration
	stepBudget     time.Duration
	timeout        time.Duration
	tries          int
	stateDir       string
	stateRounds    int
	pcpRounds      int
	iptablesMax    int
	profile        bool
}

// The gateways benchlab measures: portleased on nftables with "state file
// none", the same with a state file, portleased on each iptables backend
// (state file none), and miniupnpd.
const (
	gwPortleased       = "portleased"
	gwPortleasedState  = "portleased-state"
	gwIptablesNFT      = "portleased-iptables-nft"
	gwIptablesLegacy   = "portleased-iptables-legacy"
	gwMiniUPnPd        = "miniupnpd"
	defaultGateways    = gwPortleased + "," + gwPortleasedState + "," + gwIptablesNFT + "," + gwIptablesLegacy + "," + gwMiniUPnPd
	defaultIptablesMax = 10000
)

// firewallOf returns the value of the "firewall" line of portleased's
// configuration for the gateway named name: the backend it measures.
func firewallOf(name string) string {
	switch name {
	case gwIptablesNFT:
		return "iptables-nft"
	case gwIptablesLegacy:
		return "iptables-legacy"
	}
	return "nftables"
}

// isPortleased tells whether the gateway named name is portleased, on any
// backend, with or without a state file.
func isPortleased(name string) bool {
	return name == gwPortleased || name == gwPortleasedState || isIptables(name)
}

// isIptables tells whether the gateway named name is portleased on an
// iptables backend.
func isIptables(name string) bool { return name == gwIptablesNFT || name == gwIptablesLegacy }

// isNftables tells whether the gateway named name is portleased on
// nftables, with or without a state file: the ones measured at a fixed
// rate and over PCP too.
func isNftables(name string) bool { return name == gwPortleased || name == gwPortleasedState }

// parseGateways reads -gateways.
func parseGateways(s string) ([]string, error) {
	var gateways []string
	for g := range strings.SplitSeq(s, ",") {
		g = strings.TrimSpace(g)
		if !isPortleased(g) && g != gwMiniUPnPd {
			return nil, fmt.Errorf("-gateways: unknown gateway %q", g)
		}
		if slices.Contains(gateways, g) {
			return nil, fmt.Errorf("-gateways: %q twice", g)
		}
		gateways = append(gateways, g)
	}
	return gateways, nil
}

// sizesOf returns the sizes of -sizes the gateway named name is measured
// at: on iptables, those up to -iptables-max-size.
func (b *bench) sizesOf(name string) []int {
	if !isIptables(name) {
		return b.sizes
	}
	i := 0
	for i < len(b.sizes) && b.sizes[i] <= b.iptablesMax {
		i++
	}
	return b.sizes[:i]
}

func main() {
	var b bench
	var sizes, gateways string
	flag.StringVar(&b.portleasedPath, "portleased", "bin/portleased", "the portleased binary")
	flag.StringVar(&b.plbenchPath, "plbench", "bin/plbench", "the plbench load generator")
	flag.StringVar(&b.out, "out", "bench", "the directory for results.json, BENCHMARKS-generated.md and rate.png")
	flag.StringVar(&sizes, "sizes", "0,1000,10000,100000", "table sizes to measure at, ascending, comma-separated")
	flag.StringVar(&gateways, "gateways", defaultGateways, "gateways to measure, in order: portleased (nftables, state file none), portleased-state (nftables, a state file in -state-dir), portleased-iptables-nft and portleased-iptables-legacy (portleased with 'firewall iptables-nft' or 'firewall iptables-legacy', state file none), miniupnpd")
	flag.IntVar(&b.iptablesMax, "iptables-max-size", defaultIptablesMax, "the largest size of -sizes portleased on iptables is measured at (each iptables transaction costs time that grows with the rules present)")
	flag.IntVar(&b.pcpRounds, "pcp-rounds", 5, "portleased on nftables only: rounds of -n new mappings (and their deletion) over NAT-PMP, PCP MAP and PCP MAP for IPv6 pinholes at each size, alternating, for the ratio of their rates; 0: none")
	flag.IntVar(&b.stateRounds, "state-rounds", 5, "with portleased and portleased-state: rounds of -n new NAT-PMP mappings (and their deletion) on each at each size, alternating, for the ratio of their rates")
	flag.StringVar(&b.stateDir, "state-dir", "/var/tmp", "the directory portleased-state keeps its state file in (a temporary directory is made there): on the machine's disk, not a tmpfs")
	flag.IntVar(&b.mapN, "n", 2000, "NAT-PMP mappings made, then deleted, at each size")
	flag.IntVar(&b.upnpN, "upnp-n", 1000, "UPnP mappings added, then deleted, at each size")
	flag.Float64Var(&b.pacedRate, "paced-rate", 20000, "portleased on nftables only: -n more NAT-PMP mappings at each size, offered at this rate (plbench -rate), for the latency at that load; 0: none")
	flag.IntVar(&b.clients, "c", 16, "concurrent clients of plbench")
	flag.DurationVar(&b.prefillBudget, "prefill-budget", 120*time.Second, "time allowed to fill the table up to each size")
	flag.DurationVar(&b.stepBudget, "step-budget", 60*time.Second, "time allowed to each measured step")
	flag.DurationVar(&b.timeout, "timeout", time.Second, "plbench -timeout: the NAT-PMP retransmission interval (longer than plbench's 250ms, so that a slow gateway is not flooded with duplicates); a UPnP request gets -timeout times -tries")
	flag.IntVar(&b.tries, "tries", 4, "plbench -tries: sends of a NAT-PMP request")
	flag.BoolVar(&b.profile, "profile", false, "profile portleased: a CPU profile and an execution trace of each fill (up to 3 s of it), an execution trace of each fixed-rate step and a heap profile after each size's new mappings, in -out/profiles (portleased-state's in -out/profiles/state, portleased-iptables-nft's in -out/profiles/iptables-nft, ...; go tool pprof, go tool trace)")
	cmdline := flag.String("cmdline", "", "the command to print as the one that produced the results (default: benchlab's own command line)")
	flag.Parse()
	var err error
	if b.sizes, err = parseSizes(sizes); err != nil {
		fatal(err)
	}
	if b.gateways, err = parseGateways(gateways); err != nil {
		fatal(err)
	}
	if portSpan(max(b.sizes[len(b.sizes)-1], 0))+len(b.sizes)*b.measuredBlock() > 65536-firstPort {
		fatal(fmt.Errorf("-sizes, and -n (twice: NAT-PMP and PCP) and -upnp-n at each size, need more internal ports than %d-65535 give", firstPort))
	}
	if *cmdline == "" {
		*cmdline = strings.Join(append([]string{"benchlab"}, os.Args[1:]...), " ")
	}
	if err := b.run(*cmdline); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "benchlab: %v\n", err)
	os.Exit(1)
}

// parseSizes reads -sizes.
func parseSizes(s string) ([]int, error) {
	var sizes []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("-sizes: %q is not a table size", f)
		}
		if len(sizes) > 0 && n <= sizes[len(sizes)-1] {
			return nil, errors.New("-sizes: sizes must ascend")
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// say prints a progress line.
func say(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bench) run(cmdline string) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root, to create network namespaces and nftables tables")
	}
	var err error
	for _, p := range []*string{&b.portleasedPath, &b.plbenchPath} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
		if _, err := os.Stat(*p); err != nil {
			return err
		}
	}
	for _, g := range b.gateways {
		if !isIptables(g) {
			continue
		}
		for _, prog := range []string{firewallOf(g) + "-restore", firewallOf(g) + "-save"} {
			if _, err := exec.LookPath(prog); err != nil {
				return fmt.Errorf("%s needs %s (Debian package iptables, scripts/install-deps.sh): %w", g, prog, err)
			}
		}
	}
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		return err
	}
	res := &results{
		Command: cmdline,
		Machine: describeMachine(),
		Started: time.Now().UTC().Format(time.RFC3339),
		Sizes:   b.sizes,
		MapN:    b.mapN,
		UPnPN:   b.upnpN,
		Clients: b.clients,
	}
	if slices.ContainsFunc(b.gateways, isIptables) {
		res.IptablesMax = b.iptablesMax
	}
	if slices.ContainsFunc(b.gateways, isNftables) {
		res.PacedRate = b.pacedRate // only portleased on nftables is measured at a fixed rate
	}
	start := time.Now()
	_ = netlab.RemoveStale(context.Background())
	// With and without a state file, portleased is measured side by
	// side, size by size, for the ratio of their rates.
	paired := slices.Contains(b.gateways, gwPortleased) && slices.Contains(b.gateways, gwPortleasedState)
	// A gateway that fails (does not start, or its load generator
	// fails) is reported as such and the others are measured: the run
	// writes its results and then fails.
	var failed []error
	fail := func(err error, names ...string) {
		for _, g := range names {
			say("%s: %v", g, err)
			why := "failed: " + strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
			res.Gateways = append(res.Gateways, &gatewayRun{Name: g, StopReason: why})
			failed = append(failed, fmt.Errorf("%s: %w", g, err))
		}
	}
	for _, g := range b.gateways {
		if paired && g == gwPortleasedState {
			continue // measured with portleased
		}
		if paired && g == gwPortleased {
			say("=== %s and %s, side by side", gwPortleased, gwPortleasedState)
			runs, cost, err := b.runPair()
			if err != nil {
				fail(err, gwPortleased, gwPortleasedState)
				continue
			}
			res.Gateways = append(res.Gateways, runs...)
			res.StateCost, res.StateRounds = cost, b.stateRounds
			continue
		}
		say("=== %s", g)
		run, err := b.runGateway(g)
		if err != nil {
			fail(err, g)
			continue
		}
		res.Gateways = append(res.Gateways, run)
	}
	res.Seconds = time.Since(start).Seconds()
	if err := res.write(b.out); err != nil {
		return err
	}
	return errors.Join(failed...)
}

// measure runs the measured steps at one table size. It returns why the
// series must stop, or "".
func (s *series) measure(ctx context.Context, step *sizeResult) string {
	b, lab, gw, name, current := s.b, s.lab, s.gw, s.name, s.current
	lan := lab.LAN[0]
	natpmpGW := lab.GatewayLANAddr4.String()
	first, upnpFirst, pcpFirst := b.measuredPorts(s.measured)
	s.measured++
	stop := ""
	note := func(format string, args ...any) {
		step.Notes = append(step.Notes, fmt.Sprintf(format, args...))
	}
	check := func(what string, n int, r *loadResult, err error) bool {
		if err != nil {
			note("%s: %v", what, err)
			stop = what + " failed"
			return false
		}
		if r.StoppedEarly {
			note("%s: %d of %d done in the %v budget", what, r.OK, n, b.stepBudget)
			stop = fmt.Sprintf("%s took more than %v", what, b.stepBudget)
		}
		if r.Errors > 0 {
			note("%s: %d errors %v", what, r.Errors, r.ErrorsByKind)
		}
		return true
	}

	say("%s @ %d: %d new NAT-PMP mappings", name, current, b.mapN)
	r, err := b.plbench(ctx, lan, natpmpGW, load{"natpmp", "map", b.mapN, first, b.stepBudget, 0})
	step.Map = r
	if check("NAT-PMP map", b.mapN, r, err) {
		say("%s @ %d:   %.0f/s p50 %.2f ms p99 %.2f ms errors %d", name, current, r.Rate, r.P50ms, r.P99ms, r.Errors)
	}
	b.sample(ctx, gw, step, current+okOf(r))
	if s.prof != nil {
		if err := s.prof.heap(ctx, strconv.Itoa(current)); err != nil {
			say("%s: %v", name, err)
		}
	}
	say("%s @ %d: deleting them", name, current)
	r, err = b.plbench(ctx, lan, natpmpGW, load{"natpmp", "delete", b.mapN, first, b.stepBudget, 0})
	step.Delete = r
	if check("NAT-PMP delete", b.mapN, r, err) {
		say("%s @ %d:   %.0f/s p50 %.2f ms p99 %.2f ms errors %d", name, current, r.Rate, r.P50ms, r.P99ms, r.Errors)
	}
	if b.pacedRate > 0 && isNftables(name) && stop == "" {
		// The same load offered at a fixed rate: the latency at that
		// load, where the step above measures it at saturation. The
		// ports of the step above are free again.
		say("%s @ %d: %d new NAT-PMP mappings at %.0f/s", name, current, b.mapN, b.pacedRate)
		var traced func() error
		if s.prof != nil {
			traced = s.prof.trace(ctx, time.Second, fmt.Sprintf("paced-%d", current))
		}
		r, err = b.plbench(ctx, lan, natpmpGW, load{"natpmp", "map", b.mapN, first, b.stepBudget, b.pacedRate})
		if traced != nil {
			if err := traced(); err != nil {
				say("%s: %v", name, err)
			}
		}
		step.PacedMap = r
		if check("NAT-PMP map at a fixed rate", b.mapN, r, err) {
			say("%s @ %d:   %.0f/s p50 %.2f ms p99 %.2f ms errors %d", name, current, r.Rate, r.P50ms, r.P99ms, r.Errors)
		}
		say("%s @ %d: deleting them", name, current)
		r, err = b.plbench(ctx, lan, natpmpGW, load{"natpmp", "delete", b.mapN, first, b.stepBudget, 0})
		step.PacedDelete = r
		check("NAT-PMP delete after the fixed rate", b.mapN, r, err)
	}
	if isNftables(name) && stop == "" && b.pcpRounds > 0 {
		step.Protocols = b.compareProtocols(ctx, s, pcpFirst)
	}
	if b.upnpN > 0 && stop == "" {
		say("%s @ %d: %d UPnP AddPortMapping", name, current, b.upnpN)
		r, err = b.plbench(ctx, lan, gw.upnpURL(), load{"upnp", "map", b.upnpN, upnpFirst, b.stepBudget, 0})
		step.UPnPMap = r
		if check("UPnP add", b.upnpN, r, err) {
			say("%s @ %d:   %.0f/s p50 %.2f ms p99 %.2f ms errors %d", name, current, r.Rate, r.P50ms, r.P99ms, r.Errors)
		}
		say("%s @ %d: deleting them", name, current)
		r, err = b.plbench(ctx, lan, gw.upnpURL(), load{"upnp", "delete", b.upnpN, upnpFirst, b.stepBudget, 0})
		step.UPnPDelete = r
		if check("UPnP delete", b.upnpN, r, err) {
			say("%s @ %d:   %.0f/s p50 %.2f ms p99 %.2f ms errors %d", name, current, r.Rate, r.P50ms, r.P99ms, r.Errors)
		}
	}
	if n, err := gw.kernelMappings(ctx); err != nil {
		note("kernel: %v", err)
	} else {
		step.KernelMappings = &n
		if n != current {
			note("kernel holds %s, the table %s", thousands(n), thousands(current))
		}
	}
	return stop
}

// profileSeconds is how long to profile a fill of n new mappings: about
// the time it takes at 20,000 a second, from 1 to 3 s. The profile may end
// after the fill; its samples are then idle time.
func profileSeconds(n int) time.Duration {
	return time.Duration(min(max(n/20000, 1), 3)) * time.Second
}

// okOf is r.OK, 0 for no result.
func okOf(r *loadResult) int {
	if r == nil {
		return 0
	}
	return r.OK
}

// sample records the daemon's resident memory with n mappings.
func (b *bench) sample(ctx context.Context, gw gateway, step *sizeResult, n int) {
	pid, err := gw.pid(ctx)
	if err == nil {
		var kib int
		if kib, err = vmRSS(pid); err == nil {
			step.RSSKiB = kib
			step.RSSAt = n
			return
		}
	}
	step.Notes = append(step.Notes, fmt.Sprintf("RSS: %v", err))
}

// removal times the removal of the whole table of current mappings while
// the second LAN host keeps asking for the external address.
func (b *bench) removal(ctx context.Context, lab *netlab.Lab, pl *portleased, mu *miniupnpd, current int) *removalResult {
	rr := &removalResult{Size: current}
	var gw gateway = mu
	if pl != nil {
		gw = pl
	}
	// What the kernel holds: requests that timed out may have been carried
	// out after all.
	if n, err := gw.kernelMappings(ctx); err == nil {
		rr.Size = n
	}
	p := startProber(ctx, lab.LAN[1], lab.GatewayLANAddr4, time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	switch {
	case pl != nil && pl.firewall != "nftables":
		rr.Method = "SIGTERM until exit (PORTLEASE chains and the jumps to them removed)"
		say("portleased on %s: SIGTERM with %d mappings", pl.firewall, rr.Size)
		d, err := pl.terminate()
		rr.Seconds = d.Seconds()
		if err != nil {
			rr.Note = err.Error()
		} else if left, err := iptablesLeftovers(ctx, lab.Gateway, pl.firewall); err != nil {
			rr.Note = "the tables after exit: " + err.Error()
		} else if len(left) > 0 {
			rr.Note = fmt.Sprintf("%d lines of portleased's left after exit, the first %q", len(left), left[0])
		}
	case pl != nil:
		rr.Method = "SIGTERM until exit (table inet portleased removed)"
		say("portleased: SIGTERM with %d mappings", rr.Size)
		d, err := pl.terminate()
		rr.Seconds = d.Seconds()
		if err != nil {
			rr.Note = err.Error()
		} else if out, err := lab.Gateway.Run(ctx, "nft", "list", "tables"); err != nil {
			rr.Note = "the tables after exit: " + err.Error()
		} else if strings.Contains(out, "portleased") {
			rr.Note = "table inet portleased still present after exit"
		}
	default:
		rr.Method = `NAT-PMP "delete all" of the LAN host, TCP and UDP at once`
		say("miniupnpd: NAT-PMP delete all with %d mappings", rr.Size)
		dctx, cancel := context.WithTimeout(ctx, removalBudget)
		d, err := deleteAll(dctx, lab.LAN[0], lab.GatewayLANAddr4)
		cancel()
		rr.Seconds = d.Seconds()
		if err != nil {
			rr.Note = err.Error()
		} else if n, err := mu.kernelMappings(ctx); err == nil && n != 0 {
			rr.Note = fmt.Sprintf("%d mappings left in the kernel", n)
		}
	}
	s := p.stop()
	rr.Others = &s
	say("%s: removal %.3f s; other client: %d answered (max %.2f ms, %d over 10 ms), %d unanswered",
		rr.Method, rr.Seconds, s.Answered, s.Maxms, s.Over10ms, s.Unanswered)
	return rr
}

// gitRevision is the working tree's commit, "+ changes" when it has some.
func gitRevision() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "an unknown commit"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += " + changes"
	}
	return rev
}

// measuredBlock is the number of internal ports the measured steps of one
// size use: NAT-PMP's, UPnP's and PCP MAP's (TCP and UDP on each port).
func (b *bench) measuredBlock() int {
	return 2*portSpan(b.mapN) + portSpan(b.upnpN)
}

// measuredPorts returns the first internal ports of the NAT-PMP, UPnP and
// PCP MAP steps of the i-th size measured: a block of its own for each size,
// from the top of the port space down, above the table's fill (which grows
// from firstPort up), so that every measured step asks for ports no mapping
// held before. A grant of a port another mapping held earlier costs a
// conntrack dump (nftfw's flowChanges): the steps, and the protocols, are
// compared without it.
func (b *bench) measuredPorts(i int) (natpmp, upnp, pcp int) {
	natpmp = 65536 - (i+1)*b.measuredBlock()
	upnp = natpmp + portSpan(b.mapN)
	return natpmp, upnp, upnp + portSpan(b.upnpN)
}
