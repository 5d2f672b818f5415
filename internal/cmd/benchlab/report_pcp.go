package main

import "fmt"

// pcpMarkdown writes the PCP rates of portleased beside its NAT-PMP rate
// at each table size (issue 10's target: each at least 90% of NAT-PMP's in
// the same run, and flat with table size).
func (r *results) pcpMarkdown(p func(format string, args ...any)) {
	type row struct {
		gateway string
		s       *sizeResult
	}
	var rows []row
	for _, g := range r.Gateways {
		for _, s := range g.Steps {
			if s.PCPMap != nil || s.PinholeMap != nil {
				rows = append(rows, row{g.Name, s})
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	p("## PCP beside NAT-PMP")
	p("")
	p("At each size, after the NAT-PMP step, %d new mappings (TCP and UDP) are asked over PCP MAP for IPv4 NAT "+
		"mappings, on ports of their own that no mapping held before (as the NAT-PMP step's), then over PCP MAP for "+
		"IPv6 firewall pinholes of the LAN host's global address on the NAT-PMP step's ports (plbench pcp to "+
		"198.51.100.1 and to 2001:db8:100::1), and deleted again. The table holds the size's NAT-PMP mappings "+
		"meanwhile. The ratio is to the NAT-PMP rate of the same step.", r.MapN)
	p("")
	p("| gateway | table size | NAT-PMP new/s | PCP MAP new/s | ratio | PCP deletions/s | pinholes new/s | ratio | pinhole deletions/s |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	rate := func(l *loadResult) string {
		if l == nil {
			return "–"
		}
		return fmt.Sprintf("%.0f", l.Rate)
	}
	ratio := func(l, base *loadResult) string {
		if l == nil || base == nil || base.Rate == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f%%", 100*l.Rate/base.Rate)
	}
	for _, w := range rows {
		s := w.s
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |", w.gateway, thousands(s.Size), rate(s.Map),
			rate(s.PCPMap), ratio(s.PCPMap, s.Map), rate(s.PCPDelete),
			rate(s.PinholeMap), ratio(s.PinholeMap, s.Map), rate(s.PinholeDelete))
	}
	p("")
}
