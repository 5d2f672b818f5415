package main

import (
	"context"
	"slices"
)

// stateCostStep compares the NAT-PMP new-mapping rates of portleased
// without and with a state file at one table size.
type stateCostStep struct {
	Size int `json:"size"`
	// Without and With are the rates of the rounds, in the order measured.
	Without []float64 `json:"without"`
	With    []float64 `json:"with"`
	// Ratio is the median of With over the median of Without.
	Ratio float64  `json:"ratio"`
	Notes []string `json:"notes,omitempty"`
}

// compareRates makes -n new NAT-PMP mappings on each of none (state file
// none) and state (a state file) and deletes them again, -state-rounds
// times, alternating which goes first (none, state, state, none, none,
// ...), so that a change of the machine's load weighs on both alike. It
// returns the rates and the ratio of their medians; nil when no round was
// asked for or none succeeded on both.
func (b *bench) compareRates(ctx context.Context, none, state *series) *stateCostStep {
	if b.stateRounds <= 0 {
		return nil
	}
	c := &stateCostStep{Size: none.current}
	say("rate with and without a state file @ %d: %d rounds of %d new NAT-PMP mappings each", c.Size, b.stateRounds, b.mapN)
	for round := range b.stateRounds {
		order := []*series{none, state}
		if round%2 == 1 {
			order = []*series{state, none}
		}
		for _, s := range order {
			first := firstPort + portSpan(s.current)
			gw := s.lab.GatewayLANAddr4.String()
			r, err := b.plbench(ctx, s.lab.LAN[0], gw, load{"natpmp", "map", b.mapN, first, b.stepBudget, 0})
			switch {
			case err != nil:
				c.Notes = append(c.Notes, s.name+": "+err.Error())
			case r.Errors > 0 || r.StoppedEarly:
				c.Notes = append(c.Notes, s.name+": a round with errors or cut short, not counted")
			case s == none:
				c.Without = append(c.Without, r.Rate)
			default:
				c.With = append(c.With, r.Rate)
			}
			if _, err := b.plbench(ctx, s.lab.LAN[0], gw, load{"natpmp", "delete", b.mapN, first, b.stepBudget, 0}); err != nil {
				c.Notes = append(c.Notes, s.name+": deleting: "+err.Error())
			}
		}
	}
	if len(c.Without) == 0 || len(c.With) == 0 {
		say("rate with and without a state file @ %d: no round succeeded on both", c.Size)
		return c
	}
	c.Ratio = median(c.With) / median(c.Without)
	say("rate with and without a state file @ %d: median %.0f/s with, %.0f/s without: %.0f%%",
		c.Size, median(c.With), median(c.Without), 100*c.Ratio)
	return c
}

// median returns the median of xs, which must not be empty.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
