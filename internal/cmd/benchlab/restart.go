package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/natpmp"
)

const (
	// restartPollInterval is how often the startup prober sends its
	// request.
	restartPollInterval = 2 * time.Millisecond
	// restartProfile is the length of the CPU profile of a start, with
	// -profile: from the exec (within a few milliseconds) on.
	restartProfile = 5 * time.Second
)

// restartResult is one start of portleased with a state file holding the
// leases of the series (issue 9: serving again within 1 s with 100,000).
type restartResult struct {
	// How is how the previous run ended and what became of the kernel's
	// table before the start.
	How string `json:"how"`
	// Leases is the number of leases in the state file (the series'
	// table), KernelBefore what the kernel held before the start.
	Leases       int `json:"leases"`
	KernelBefore int `json:"kernel_before"`
	// FirstAnswerSeconds runs from the exec to the first NAT-PMP answer
	// to the prober's external address request, of any result code;
	// FirstSuccessSeconds to the first with result Success.
	FirstAnswerSeconds  float64 `json:"first_answer_seconds"`
	FirstSuccessSeconds float64 `json:"first_success_seconds"`
	// Epoch is the Seconds Since Start of Epoch of the first success
	// (RFC 6886 §3.6): it continues across a restart that kept the state.
	Epoch uint32 `json:"epoch"`
	// Logged is when the daemon logged the messages of loggedSteps, in
	// seconds from the exec (the log's times have millisecond resolution).
	Logged map[string]float64 `json:"logged_seconds,omitempty"`
	// ReconcileSeconds is the "took" of nftfw's "nftables mappings
	// reconciled" line: the kernel's reconciliation alone.
	ReconcileSeconds float64 `json:"reconcile_seconds"`
	// Restored and the Kernel counts are the "leases restored" line's.
	Restored      int `json:"restored"`
	KernelAdopted int `json:"kernel_adopted"`
	KernelAdded   int `json:"kernel_added"`
	KernelRemoved int `json:"kernel_removed"`
	// KernelAfter is what the kernel holds once the daemon serves.
	KernelAfter int    `json:"kernel_after"`
	Note        string `json:"note,omitempty"`
}

// Log messages of a start with a state file, in order: the file read, the
// kernel reconciled with the leases, the leases back in the table and the
// kernel reconciled, the servers up.
const (
	logLoaded     = "state file loaded"
	logReconciled = "nftables mappings reconciled"
	logRestored   = "leases restored"
	logServing    = "serving NAT-PMP"
)

// loggedSteps are the messages whose times restart notes.
var loggedSteps = []string{logLoaded, logReconciled, logRestored, logServing}

// restarts starts portleased again with the n leases of its state file,
// three ways: after SIGTERM, which leaves the kernel's table in place (the
// start adopts every element); after SIGKILL, as a crash (the same, and
// nothing was written at exit); after SIGKILL and `nft delete table inet
// portleased` (the start adds every element). Each is timed from the exec
// to the first answer to a NAT-PMP request sent every 2 ms from the second
// LAN host; with -profile, a CPU profile of each start is saved as
// cpu-start-<label>.pprof. It returns the results, and stops at the first
// start that fails (the daemon is then stopped).
func (s *series) restarts(ctx context.Context) []*restartResult {
	pl, n := s.pl, s.current
	ways := []struct {
		how, label  string
		end         func() error
		deleteTable bool
	}{
		{"SIGTERM (table kept)", "sigterm", pl.Stop, false},
		{"SIGKILL (table kept)", "sigkill", pl.Kill, false},
		{"SIGKILL, then nft delete table inet portleased", "deleted", pl.Kill, true},
	}
	var out []*restartResult
	for _, w := range ways {
		r := &restartResult{How: w.how, Leases: n}
		out = append(out, r)
		say("portleased-state: restart with %d leases: %s", n, w.how)
		if err := s.restart(ctx, r, "start-"+w.label, w.end, w.deleteTable); err != nil {
			r.Note = err.Error()
			say("portleased-state: %v", err)
			return out
		}
		say("portleased-state:   first answer %.3f s, success %.3f s; restored %d (adopted %d, added %d, removed %d); kernel holds %d",
			r.FirstAnswerSeconds, r.FirstSuccessSeconds, r.Restored, r.KernelAdopted, r.KernelAdded, r.KernelRemoved, r.KernelAfter)
		if r.Note != "" {
			say("portleased-state:   %s", r.Note)
		}
	}
	return out
}

// restart ends the running daemon with end, deletes its kernel table if
// deleteTable, starts it again and fills r; with -profile it saves a CPU
// profile of the start labelled label.
func (s *series) restart(ctx context.Context, r *restartResult, label string, end func() error, deleteTable bool) error {
	lab, pl := s.lab, s.pl
	if err := end(); err != nil {
		return fmt.Errorf("ending the previous run: %w", err)
	}
	if deleteTable {
		if _, err := lab.Gateway.Run(ctx, "nft", "delete", "table", "inet", "portleased"); err != nil {
			return fmt.Errorf("nft delete table: %w", err)
		}
		r.KernelBefore = 0
	} else {
		k, err := pl.kernelMappings(ctx)
		if err != nil {
			return fmt.Errorf("the kernel before the start: %w", err)
		}
		r.KernelBefore = k
	}
	logOff := len(pl.Log())
	pctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	probe, err := startStartupProber(pctx, lab.LAN[1], lab.GatewayLANAddr4)
	if err != nil {
		return err
	}
	var profiled func() error
	if s.prof != nil {
		profiled = s.prof.startup(ctx, restartProfile, label)
	}
	exec := time.Now()
	startErr := pl.Start(ctx)
	first, success, epoch, probeErr := probe.wait()
	if profiled != nil {
		if err := profiled(); err != nil {
			say("portleased-state: profile of the start: %v", err)
		}
	}
	if startErr != nil {
		return startErr
	}
	if probeErr != nil {
		return fmt.Errorf("startup prober: %w", probeErr)
	}
	r.FirstAnswerSeconds = first.Sub(exec).Seconds()
	r.FirstSuccessSeconds = success.Sub(exec).Seconds()
	r.Epoch = epoch

	log := pl.Log()[logOff:]
	r.Logged = map[string]float64{}
	for _, msg := range loggedSteps {
		if t, ok := logTime(log, msg); ok {
			r.Logged[msg] = t.Sub(exec).Seconds()
		}
	}
	if attrs, ok := logAttrs(log, logReconciled); ok {
		if d, err := time.ParseDuration(attrs["took"]); err == nil {
			r.ReconcileSeconds = d.Seconds()
		}
	}
	attrs, ok := logAttrs(log, logRestored)
	if !ok {
		return fmt.Errorf("no %q line in the log", logRestored)
	}
	for key, dst := range map[string]*int{"restored": &r.Restored, "kernel_adopted": &r.KernelAdopted,
		"kernel_added": &r.KernelAdded, "kernel_removed": &r.KernelRemoved} {
		if *dst, err = strconv.Atoi(attrs[key]); err != nil {
			return fmt.Errorf("%q %s=%q: %w", logRestored, key, attrs[key], err)
		}
	}
	if r.KernelAfter, err = pl.kernelMappings(ctx); err != nil {
		return fmt.Errorf("the kernel after the start: %w", err)
	}
	var notes []string
	if r.Restored != r.Leases {
		notes = append(notes, fmt.Sprintf("restored %s of %s leases", thousands(r.Restored), thousands(r.Leases)))
	}
	if r.KernelAfter != r.Leases {
		notes = append(notes, fmt.Sprintf("kernel holds %s mappings, the state file %s", thousands(r.KernelAfter), thousands(r.Leases)))
	}
	r.Note = strings.Join(notes, "; ")
	return nil
}

// logLine returns the last line of log (slog's text format) whose message
// is msg.
func logLine(log, msg string) (string, bool) {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], " msg="+strconv.Quote(msg)) {
			return lines[i], true
		}
	}
	return "", false
}

// logAttrs returns the unquoted key=value attributes of the line logged
// with msg.
func logAttrs(log, msg string) (map[string]string, bool) {
	line, ok := logLine(log, msg)
	if !ok {
		return nil, false
	}
	attrs := map[string]string{}
	for f := range strings.FieldsSeq(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			attrs[k] = v
		}
	}
	return attrs, true
}

// logTime returns the time of the line logged with msg.
func logTime(log, msg string) (time.Time, bool) {
	attrs, ok := logAttrs(log, msg)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, attrs["time"])
	return t, err == nil
}

// startupProber sends a NAT-PMP external address request (RFC 6886 §3.2)
// every restartPollInterval from one socket and notes when the first
// answer, and the first answer with result Success, arrive. Before the
// daemon listens the requests go unanswered (an unconnected UDP socket
// does not see the ICMP port unreachable).
type startupProber struct {
	pc      net.PacketConn
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	first   time.Time
	success time.Time
	epoch   uint32
	err     error
}

func startStartupProber(ctx context.Context, host *netlab.Host, gw netip.Addr) (*startupProber, error) {
	pc, err := host.ListenPacket("udp4", ":0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &startupProber{pc: pc, cancel: cancel}
	if d, ok := ctx.Deadline(); ok {
		_ = pc.SetReadDeadline(d)
	}
	req, err := natpmp.ExternalAddressRequest{}.MarshalBinary()
	if err != nil {
		cancel()
		pc.Close()
		return nil, err
	}
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, natpmp.ServerPort))
	p.wg.Go(func() {
		t := time.NewTicker(restartPollInterval)
		defer t.Stop()
		for {
			_, _ = pc.WriteTo(req, to)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	p.wg.Go(func() {
		defer cancel()
		buf := make([]byte, 64)
		for {
			n, from, err := pc.ReadFrom(buf)
			now := time.Now()
			if err != nil {
				p.err = fmt.Errorf("no successful answer: %w", err)
				return
			}
			if ua, ok := from.(*net.UDPAddr); !ok || ua.AddrPort().Addr().Unmap() != gw {
				continue
			}
			resp, err := natpmp.ParseResponse(buf[:n])
			if err != nil || resp.Header.Opcode != natpmp.OpExternalAddress {
				continue
			}
			if p.first.IsZero() {
				p.first = now
			}
			if resp.Err() == nil {
				p.success, p.epoch = now, resp.Header.Epoch
				return
			}
		}
	})
	return p, nil
}

// wait waits for the first successful answer (or the prober's context to
// end) and returns when the first answer and the first success arrived.
func (p *startupProber) wait() (first, success time.Time, epoch uint32, err error) {
	p.wg.Wait()
	p.pc.Close()
	return p.first, p.success, p.epoch, p.err
}
