package main

import "fmt"

// pcpMarkdown writes portleased's rates over NAT-PMP, PCP MAP and PCP
// pinholes at each table size (issue 10's target: PCP MAP and pinholes each
// at least 90% of NAT-PMP's rate in the same run, and flat with table size).
func (r *results) pcpMarkdown(p func(format string, args ...any)) {
	type row struct {
		gateway string
		c       *protocolRates
	}
	var rows []row
	rounds := 0
	for _, g := range r.Gateways {
		for _, s := range g.Steps {
			if s.Protocols != nil {
				rows = append(rows, row{g.Name, s.Protocols})
				rounds = max(rounds, len(s.Protocols.NATPMP))
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	p("## PCP beside NAT-PMP")
	p("")
	p("At each size, portleased makes %d new mappings (TCP and UDP) and deletes them again over NAT-PMP, over PCP MAP "+
		"for IPv4 NAT mappings (plbench pcp to 198.51.100.1) and over PCP MAP for IPv6 firewall pinholes of the LAN host's "+
		"global address (plbench pcp to 2001:db8:100::1), in %d rounds whose order of the three turns each round, all on "+
		"the same internal ports, while the table holds the size's NAT-PMP mappings. The rates are the medians of the "+
		"rounds; the ratios are to NAT-PMP's.", r.MapN, rounds)
	p("")
	p("| gateway | table size | NAT-PMP new/s | PCP MAP new/s | ratio | pinholes new/s | ratio | NAT-PMP deletions/s | PCP deletions/s | pinhole deletions/s | errors |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	rate := func(xs []float64) string {
		if len(xs) == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f", medianOr0(xs))
	}
	for _, w := range rows {
		c := w.c
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |", w.gateway, thousands(c.Size), rate(c.NATPMP),
			rate(c.PCP), ratio(c.PCP, c.NATPMP), rate(c.Pinhole), ratio(c.Pinhole, c.NATPMP),
			rate(c.NATPMPDelete), rate(c.PCPDelete), rate(c.PinholeDelete), c.Errors)
	}
	p("")
	for _, w := range rows {
		for _, n := range w.c.Notes {
			p("- %s @ %s: %s", w.gateway, thousands(w.c.Size), n)
		}
	}
	p("")
}
