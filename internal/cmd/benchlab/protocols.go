package main

import (
	"context"
	"fmt"
	"slices"
)

// protocolRates compares the new-mapping rates of the three ways to ask
// portleased for a mapping over UDP port 5351 (issue 10's target: PCP MAP
// and IPv6 pinholes each at least 90% of NAT-PMP's rate, in the same run).
type protocolRates struct {
	Size int `json:"size"`
	// Each list holds one rate per round, of -n new mappings.
	NATPMP  []float64 `json:"natpmp"`
	PCP     []float64 `json:"pcp"`
	Pinhole []float64 `json:"pinhole"`
	// The deletions' rates, likewise.
	NATPMPDelete  []float64 `json:"natpmp_delete"`
	PCPDelete     []float64 `json:"pcp_delete"`
	PinholeDelete []float64 `json:"pinhole_delete"`
	Errors        int       `json:"errors"`
	Notes         []string  `json:"notes,omitempty"`
}

// compareProtocols makes -n new mappings and deletes them again over
// NAT-PMP, over PCP MAP for IPv4 and over PCP MAP for IPv6 pinholes of the
// LAN host's global address, -pcp-rounds times, the order of the three
// turning each round so that a change of the machine's load weighs on each
// alike, all on the internal ports from first (so that each asks for ports
// the others held before, alike: a grant of a port held before costs a
// conntrack dump in the background). It returns the rates of every round.
func (b *bench) compareProtocols(ctx context.Context, s *series, first int) *protocolRates {
	lab := s.lab
	gw4, gw6 := lab.GatewayLANAddr4.String(), lab.GatewayLANAddr6.String()
	type way struct {
		name, proto, gw string
		maps, dels      *[]float64
	}
	c := &protocolRates{Size: s.current}
	ways := []way{
		{"NAT-PMP", "natpmp", gw4, &c.NATPMP, &c.NATPMPDelete},
		{"PCP MAP", "pcp", gw4, &c.PCP, &c.PCPDelete},
		{"PCP pinhole", "pcp", gw6, &c.Pinhole, &c.PinholeDelete},
	}
	say("%s @ %d: %d rounds of %d new mappings over NAT-PMP, PCP MAP and PCP pinholes", s.name, c.Size, b.pcpRounds, b.mapN)
	for round := range b.pcpRounds {
		for k := range ways {
			w := ways[(k+round)%len(ways)]
			for _, op := range []string{"map", "delete"} {
				r, err := b.plbench(ctx, lab.LAN[0], w.gw, load{w.proto, op, b.mapN, first, b.stepBudget, 0})
				switch {
				case err != nil:
					c.Notes = append(c.Notes, fmt.Sprintf("%s %s: %v", w.name, op, err))
					continue
				case r.Errors > 0 || r.StoppedEarly:
					c.Errors += r.Errors
					c.Notes = append(c.Notes, fmt.Sprintf("%s %s: a round with errors %v or cut short, not counted", w.name, op, r.ErrorsByKind))
					continue
				case op == "map":
					*w.maps = append(*w.maps, r.Rate)
				default:
					*w.dels = append(*w.dels, r.Rate)
				}
			}
		}
	}
	if len(c.NATPMP) > 0 {
		say("%s @ %d: medians: NAT-PMP %.0f/s, PCP MAP %.0f/s (%s), pinholes %.0f/s (%s)", s.name, c.Size,
			medianOr0(c.NATPMP), medianOr0(c.PCP), ratio(c.PCP, c.NATPMP), medianOr0(c.Pinhole), ratio(c.Pinhole, c.NATPMP))
	}
	return c
}

// medianOr0 is the median of xs, 0 for none.
func medianOr0(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return median(slices.Clone(xs))
}

// ratio formats the ratio of the medians of xs and base as a percentage,
// "–" when either has none.
func ratio(xs, base []float64) string {
	if len(xs) == 0 || len(base) == 0 || medianOr0(base) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*medianOr0(xs)/medianOr0(base))
}
