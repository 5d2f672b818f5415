package main

import (
	"strings"
	"testing"
)

func TestStateMarkdownShowsTheRatioAndTheRestarts(t *testing.T) {
	r := &results{
		Gateways: []*gatewayRun{
			{Name: gwPortleased, Removal: &removalResult{Others: &probeStats{}}},
			{Name: gwPortleasedState, StateFile: "/var/tmp/x/leases (ext4 on /dev/vda)", Restarts: []*restartResult{{
				How: "SIGTERM (table kept)", Leases: 100000, KernelBefore: 100000, FirstAnswerSeconds: 0.75, FirstSuccessSeconds: 0.76,
				Logged:   map[string]float64{logLoaded: 0.2, logReconciled: 0.7, logServing: 0.74},
				Restored: 100000, KernelAdopted: 100000, KernelAfter: 100000, ReconcileSeconds: 0.4,
			}}},
		},
		StateCost:   []*stateCostStep{{Size: 1000, Without: []float64{100, 200, 300}, With: []float64{90, 180, 270}, Ratio: 0.9}},
		StateRounds: 3,
	}
	checkMarkdownHas(t, r.markdown(""),
		"(portleased twice: with `state file none`",
		"/var/tmp/x/leases (ext4 on /dev/vda)",
		"| 1,000 | 200 | 180 | 90% | 100, 200, 300 | 90, 180, 270 |  |",
		"| SIGTERM (table kept) | 100,000 | 0.750 | 0.760 | 0.200 | 0.700 | 0.400 | 0.740 | 100,000 | 100,000 | 0 | 0 | 100,000 | 0 |  |",
	)
	r.Gateways = r.Gateways[:1]
	if md := r.markdown(""); strings.Contains(md, "state file") {
		t.Errorf("markdown without portleased-state mentions the state file:\n%s", md)
	}
}

// checkMarkdownHas fails t for each of wants that md lacks.
func checkMarkdownHas(t *testing.T, md string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
