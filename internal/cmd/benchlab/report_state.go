package main

import (
	"fmt"
	"strings"
)

// stateRateTarget is issue 9's target for the NAT-PMP rate with a state
// file, as a share of the rate without.
const stateRateTarget = 0.90

// stateRestartTarget is issue 9's target for the time from the start to
// serving with 100,000 restored leases, in seconds.
const stateRestartTarget = 1.0

// gateway returns the series of the gateway named name, nil if none.
func (r *results) gateway(name string) *gatewayRun {
	for _, g := range r.Gateways {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// rates writes a list of rates: "25012, 24100".
func rates(xs []float64) string {
	f := make([]string, len(xs))
	for i, x := range xs {
		f[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(f, ", ")
}

// stateMarkdown writes the section on the state file's cost with p: the
// NAT-PMP rate with and without a state file at each size, and the
// restarts, and a blank line after them. It writes nothing when
// portleased-state was not measured.
func (r *results) stateMarkdown(p func(format string, args ...any)) {
	st := r.gateway(gwPortleasedState)
	if st == nil || st.StateFile == "" {
		return // not measured, or failed before its state file was made
	}
	p("## The state file's cost (issue 9)")
	p("")
	p("portleased-state is portleased with a state file, %s: every batch of the group commit is one write "+
		"and one fsync. Its series is the same as portleased's (`state file none`), in a lab of its own.", st.StateFile)
	if len(r.StateCost) > 0 {
		p("")
		p("portleased and portleased-state are measured side by side: each is filled to a size and measured there "+
			"(the rows of both in the table above) before either goes on to the next, and then, at that size, they "+
			"make %d new NAT-PMP mappings (and delete them) in %d alternating rounds each, none first, then state, "+
			"state, none, none, and so on. The ratio is the median rate of portleased-state over that of portleased.",
			r.MapN, r.StateRounds)
		p("")
		p("| table size | new mappings/s, no state file (median) | with a state file (median) | ratio (target ≥ %.0f%%) | no state file: rounds | with: rounds | notes |",
			stateRateTarget*100)
		p("|---:|---:|---:|---:|---|---|---|")
		for _, c := range r.StateCost {
			if len(c.Without) == 0 || len(c.With) == 0 {
				p("| %s | – | – | – | %s | %s | %s |", thousands(c.Size), rates(c.Without), rates(c.With), strings.Join(c.Notes, "; "))
				continue
			}
			p("| %s | %.0f | %.0f | %.0f%% | %s | %s | %s |", thousands(c.Size), median(c.Without), median(c.With),
				100*c.Ratio, rates(c.Without), rates(c.With), strings.ReplaceAll(strings.Join(c.Notes, "; "), "|", "/"))
		}
	}
	defer p("")
	if len(st.Restarts) == 0 {
		return
	}
	p("")
	p("### Start with the leases of the state file")
	p("")
	p("portleased-state is then started again with the %s leases of its state file, three ways. The time runs from "+
		"the exec to the first answer to a NAT-PMP external address request that the second LAN host sends every %v "+
		"(target: under %.0f s with 100,000). The log columns are when the daemon logged that step, from the exec "+
		"(millisecond resolution): the state file read (%q), the kernel reconciled with the leases (%q; \"took\" is "+
		"the reconciliation's own time; from the file read to the reconciliation's start, the leases are put back "+
		"into the table), "+
		"the servers up (%q). Restored, adopted, added and removed are the counts of its %q line; "+
		"the kernel column counts the elements of its inbound4 map once it serves.", thousands(st.Restarts[0].Leases),
		restartPollInterval, stateRestartTarget, logLoaded, logReconciled, logServing, logRestored)
	p("")
	p("| previous run ended by | kernel before | first answer s | first success s | log: file read | reconciled | took | serving | restored | adopted | added | removed | kernel after | epoch s | note |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, x := range st.Restarts {
		logged := func(msg string) string {
			if t, ok := x.Logged[msg]; ok {
				return fmt.Sprintf("%.3f", t)
			}
			return "–"
		}
		p("| %s | %s | %.3f | %.3f | %s | %s | %.3f | %s | %s | %s | %s | %s | %s | %d | %s |", x.How, thousands(x.KernelBefore),
			x.FirstAnswerSeconds, x.FirstSuccessSeconds, logged(logLoaded), logged(logReconciled), x.ReconcileSeconds, logged(logServing),
			thousands(x.Restored), thousands(x.KernelAdopted), thousands(x.KernelAdded), thousands(x.KernelRemoved),
			thousands(x.KernelAfter), x.Epoch, strings.ReplaceAll(x.Note, "|", "/"))
	}
}
