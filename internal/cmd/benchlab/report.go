package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// results is everything a run measured: results.json.
type results struct {
	Command string  `json:"command"`
	Machine machine `json:"machine"`
	Started string  `json:"started"`
	Seconds float64 `json:"seconds"`
	Sizes   []int   `json:"sizes"`
	MapN    int     `json:"natpmp_n"`
	// PacedRate is the rate of the paced NAT-PMP step, 0 for none.
	PacedRate float64 `json:"natpmp_paced_rate,omitempty"`
	// IptablesMax is -iptables-max-size when portleased was measured on
	// iptables.
	IptablesMax int           `json:"iptables_max_size,omitempty"`
	UPnPN       int           `json:"upnp_n"`
	Clients     int           `json:"clients"`
	Gateways    []*gatewayRun `json:"gateways"`
	// StateCost compares portleased's rate without and with a state
	// file, size by size (issue 9).
	StateCost []*stateCostStep `json:"state_cost,omitempty"`
	// StateRounds is the number of rounds of StateCost at each size.
	StateRounds int `json:"state_rounds,omitempty"`
}

// gatewayRun is one gateway's series.
type gatewayRun struct {
	Name    string        `json:"name"`
	Version string        `json:"version"`
	Log     string        `json:"log"`
	Steps   []*sizeResult `json:"steps"`
	// StoppedAt is the size the series stopped at, 0 when it ran through.
	StoppedAt  int    `json:"stopped_at,omitempty"`
	StopReason string `json:"stop_reason,omitempty"`
	// MaxSize, when not 0, is the largest size the series was to reach
	// (-iptables-max-size), below the largest of Sizes.
	MaxSize int `json:"max_size,omitempty"`
	// Removal is the removal of the whole table at the end; nil for
	// portleased-state, whose series ends with Restarts instead.
	Removal *removalResult `json:"removal,omitempty"`
	// StateFile describes portleased-state's state file: its path and
	// the filesystem it is on.
	StateFile string           `json:"state_file,omitempty"`
	Restarts  []*restartResult `json:"restarts,omitempty"`
}

// sizeResult is what was measured at one table size.
type sizeResult struct {
	// Size is the number of mappings present: the size asked for, or as
	// many as the prefill made.
	Size           int         `json:"size"`
	PrefillSeconds float64     `json:"prefill_seconds,omitempty"`
	Prefill        *loadResult `json:"prefill,omitempty"`
	Map            *loadResult `json:"natpmp_map,omitempty"`
	Delete         *loadResult `json:"natpmp_delete,omitempty"`
	// PacedMap is the same load as Map offered at bench.pacedRate, and
	// PacedDelete the deletion that follows it (portleased only).
	PacedMap    *loadResult `json:"natpmp_paced_map,omitempty"`
	PacedDelete *loadResult `json:"natpmp_paced_delete,omitempty"`
	UPnPMap     *loadResult `json:"upnp_map,omitempty"`
	UPnPDelete  *loadResult `json:"upnp_delete,omitempty"`
	// Protocols compares the rates of NAT-PMP, PCP MAP and PCP pinholes
	// (portleased only).
	Protocols *protocolRates `json:"protocols,omitempty"`
	// RSSKiB is the daemon's VmRSS with RSSAt mappings present (after the
	// NAT-PMP mappings were made).
	RSSKiB int `json:"rss_kib,omitempty"`
	RSSAt  int `json:"rss_at,omitempty"`
	// KernelMappings counts the mappings in the kernel after the measured
	// steps: portleased's inbound4 elements, miniupnpd's DNAT rules.
	KernelMappings *int     `json:"kernel_mappings,omitempty"`
	Notes          []string `json:"notes,omitempty"`
}

// removalResult is the removal of the whole table.
type removalResult struct {
	Method  string      `json:"method"`
	Size    int         `json:"size"`
	Seconds float64     `json:"seconds"`
	Note    string      `json:"note,omitempty"`
	Others  *probeStats `json:"other_client"`
}

// machine describes where the run took place.
type machine struct {
	CPUs    int    `json:"cpus"`
	CPU     string `json:"cpu"`
	MemMiB  int    `json:"mem_mib"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	NftVers string `json:"nft"`
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.Atoi(strings.Fields(procField("/proc/meminfo", "MemTotal") + " 0")[0]); err == nil {
		m.MemMiB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("nft", "--version").Output(); err == nil {
		m.NftVers = strings.TrimSpace(string(out))
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc
// file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// vmRSS returns a process's resident memory in KiB.
func vmRSS(pid int) (int, error) {
	v := procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0, fmt.Errorf("no VmRSS for pid %d", pid)
	}
	return strconv.Atoi(f[0])
}

// describeStateFile names the state file at path and the filesystem it is
// on, as findmnt shows it: its type and device.
func describeStateFile(path string) string {
	out, err := exec.Command("findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", filepath.Dir(path)).Output()
	fs := strings.Join(strings.Fields(string(out)), " on ")
	if err != nil || fs == "" {
		fs = fmt.Sprintf("filesystem unknown (findmnt: %v)", err)
	}
	if strings.HasPrefix(fs, "tmpfs") {
		fs += "; a tmpfs, where fsync costs nothing: use -state-dir on a disk"
	}
	return path + " (" + fs + ")"
}

// iptablesVersion is what the program named firewall (iptables-legacy,
// iptables-nft) says its version is.
func iptablesVersion(firewall string) string {
	out, err := exec.Command(firewall, "--version").Output()
	if err != nil {
		return fmt.Sprintf("%s --version: %v", firewall, err)
	}
	return strings.TrimSpace(string(out))
}

// packageVersion is a Debian package's name and version.
func packageVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Package} ${Version}", pkg).Output()
	if err != nil {
		return pkg
	}
	return string(out)
}

// thousands writes n with commas: 100,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// write puts results.json, BENCHMARKS-generated.md, rate.dat, rate.gp and
// rate.png in dir.
func (r *results) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	plotNote := r.plot(dir)
	if err := os.WriteFile(filepath.Join(dir, "BENCHMARKS-generated.md"), []byte(r.markdown(plotNote)), 0o644); err != nil {
		return err
	}
	say("wrote %s", filepath.Join(dir, "results.json"))
	say("wrote %s", filepath.Join(dir, "BENCHMARKS-generated.md"))
	return nil
}

// plotCaption describes rate.png.
const plotCaption = "NAT-PMP new-mapping rate against the number of mappings already present, " +
	"log scales on both axes; a table size of 0 is plotted at 1."

// plot writes rate.dat and rate.gp and runs gnuplot. It returns a note for
// the markdown when the plot could not be made.
func (r *results) plot(dir string) string {
	var data, plots strings.Builder
	block := 0
	for _, g := range r.Gateways {
		n := 0
		for _, s := range g.Steps {
			if s.Map == nil || s.Map.OK == 0 {
				continue
			}
			if n == 0 {
				if block > 0 {
					data.WriteString("\n\n")
				}
				fmt.Fprintf(&data, "# %s: table size (0 as 1), new NAT-PMP mappings per second\n", g.Name)
			}
			fmt.Fprintf(&data, "%d %.1f\n", max(s.Size, 1), s.Map.Rate)
			n++
		}
		if n == 0 {
			continue
		}
		if block > 0 {
			plots.WriteString(", \\\n     ")
		}
		fmt.Fprintf(&plots, "'rate.dat' index %d using 1:2 with linespoints linewidth 2 pointtype 7 title '%s'", block, g.Name)
		block++
	}
	if block == 0 {
		return "no NAT-PMP rate was measured: no plot."
	}
	script := `# rate.gp: made by benchlab; gnuplot rate.gp writes rate.png.
set terminal png size 900,560
set output 'rate.png'
set title "NAT-PMP new mappings per second (` + strconv.Itoa(r.Clients) + ` clients)\n0 mappings present plotted at 1"
set logscale xy
set xlabel 'mappings already present'
set ylabel 'new mappings per second'
set xrange [0.5:300000]
set format x '10^{%L}'
set format y '10^{%L}'
set grid
set key top right
plot ` + plots.String() + "\n"
	if err := os.WriteFile(filepath.Join(dir, "rate.dat"), []byte(data.String()), 0o644); err != nil {
		return err.Error()
	}
	if err := os.WriteFile(filepath.Join(dir, "rate.gp"), []byte(script), 0o644); err != nil {
		return err.Error()
	}
	cmd := exec.Command("gnuplot", "rate.gp")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		say("gnuplot: %v: %s", err, out)
		return fmt.Sprintf("gnuplot failed (%v): rate.png was not made; rate.dat and rate.gp are there.", err)
	}
	say("wrote %s", filepath.Join(dir, "rate.png"))
	return ""
}

// markdown is BENCHMARKS-generated.md.
func (r *results) markdown(plotNote string) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	p("# Gateway benchmark: portleased and miniupnpd")
	p("")
	twice := ""
	if r.gateway(gwPortleasedState) != nil {
		twice = " (portleased twice: with `state file none`, and as portleased-state with a state file)"
	}
	p("Generated by benchlab (`make bench`) on %s, in %s. Each gateway runs in a fresh network lab%s; plbench "+
		"drives it from a LAN host with %d concurrent clients. At each table size (cumulative, filled over NAT-PMP "+
		"with TCP and UDP mappings of lifetime 86400 s, not measured), %d new NAT-PMP mappings are made and deleted, then %d UPnP "+
		"AddPortMapping and DeletePortMapping. Rates count successful requests per second; latencies are per answered request.",
		r.Started, (time.Duration(r.Seconds) * time.Second).String(), twice, r.Clients, r.MapN, r.UPnPN)
	r.iptablesMarkdown(p)
	paced := "–"
	if r.PacedRate > 0 {
		paced = thousands(int(r.PacedRate)) + "/s"
		p("")
		p("New mappings are made twice at each size: as fast as the gateway answers (16 requests always "+
			"outstanding: the rate is the gateway's most, and the latency is mostly waiting in line), then, for "+
			"portleased on nftables, offered at %s (plbench -rate; a request's latency runs from its turn in the schedule, so "+
			"that a late send counts), for the latency at that load.", paced)
	}
	p("")
	p("| gateway | table size | new mappings/s | p50 ms | p99 ms | p50 ms at %s | p99 ms at %s | errors | deletions/s | UPnP adds/s | RSS MiB | notes |", paced, paced)
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, g := range r.Gateways {
		for _, s := range g.Steps {
			cell := func(l *loadResult, f func(*loadResult) string) string {
				if l == nil {
					return "–"
				}
				return f(l)
			}
			rate := func(l *loadResult) string { return fmt.Sprintf("%.0f", l.Rate) }
			var notes []string
			if s.Prefill != nil {
				notes = append(notes, fmt.Sprintf("filled in %.2f s", s.PrefillSeconds))
			}
			if s.KernelMappings != nil && *s.KernelMappings == s.Size {
				notes = append(notes, fmt.Sprintf("kernel holds %s", thousands(*s.KernelMappings)))
			}
			notes = append(notes, s.Notes...)
			rss := "–"
			if s.RSSKiB > 0 {
				rss = fmt.Sprintf("%.1f", float64(s.RSSKiB)/1024)
			}
			errs := cell(s.Map, func(l *loadResult) string {
				n := l.Errors
				for _, o := range []*loadResult{s.Delete, s.PacedMap, s.PacedDelete, s.UPnPMap, s.UPnPDelete} {
					if o != nil {
						n += o.Errors
					}
				}
				return strconv.Itoa(n)
			})
			p50 := func(l *loadResult) string { return fmt.Sprintf("%.2f", l.P50ms) }
			p99 := func(l *loadResult) string { return fmt.Sprintf("%.2f", l.P99ms) }
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", g.Name, thousands(s.Size),
				cell(s.Map, rate), cell(s.Map, p50), cell(s.Map, p99), cell(s.PacedMap, p50), cell(s.PacedMap, p99),
				errs, cell(s.Delete, rate), cell(s.UPnPMap, rate), rss,
				strings.ReplaceAll(strings.Join(notes, "; "), "|", "/"))
		}
	}
	p("")
	p("Errors count every failed request of the measured steps at that size; RSS is the daemon's VmRSS with the new NAT-PMP mappings present. " +
		"What the kernel holds is counted after the measured steps: for portleased on nftables the elements of its inbound4 map, " +
		"on iptables the distinct protocol and port of the DNAT rules in its PORTLEASE-* chains (iptables-save -t nat), " +
		"for miniupnpd the DNAT rules of its chain.")
	p("")
	r.pcpMarkdown(p)
	for _, g := range r.Gateways {
		switch {
		case g.StopReason != "":
			p("- **%s**: %s.", g.Name, g.StopReason)
		case g.MaxSize > 0:
			p("- **%s**: every size up to %s measured (-iptables-max-size).", g.Name, thousands(g.MaxSize))
		default:
			p("- **%s**: every size measured.", g.Name)
		}
	}
	p("")
	p("## Removal of the whole table")
	p("")
	p("| gateway | mappings | how | seconds | other client: answered | p99 ms | max ms | over 10 ms | unanswered | note |")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
	for _, g := range r.Gateways {
		rr := g.Removal
		if rr == nil {
			continue
		}
		o := rr.Others
		p("| %s | %s | %s | %.3f | %d | %.2f | %.2f | %d | %d | %s |", g.Name, thousands(rr.Size), rr.Method, rr.Seconds,
			o.Answered, o.P99ms, o.Maxms, o.Over10ms, o.Unanswered, rr.Note)
	}
	p("")
	p("The other client is a second LAN host asking for the external address over NAT-PMP, one request at a time "+
		"(1 ms apart, %v timeout), from 300 ms before the removal until it ends. After portleased has exited, nothing answers.", probeTimeout)
	p("")
	r.stateMarkdown(p)
	p("## Plot")
	p("")
	if plotNote != "" {
		p("%s", plotNote)
	} else {
		p("![NAT-PMP new-mapping rate against table size](rate.png)")
		p("")
		p("%s", plotCaption)
	}
	p("")
	p("## Machine")
	p("")
	m := r.Machine
	p("- CPUs: %d (%s)", m.CPUs, m.CPU)
	p("- memory: %d MiB", m.MemMiB)
	p("- kernel: Linux %s; %s", m.Kernel, m.NftVers)
	p("- Go: %s", m.Go)
	for _, g := range r.Gateways {
		if g.Version != "" {
			p("- %s: %s", g.Name, g.Version)
		}
	}
	p("- date: %s", r.Started)
	p("")
	p("## Command")
	p("")
	p("```")
	p("%s", r.Command)
	p("```")
	return w.String()
}
