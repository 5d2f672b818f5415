package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// iptablesResults is a run with portleased on nftables and on
// iptables-legacy, the latter measured up to 1,000.
func iptablesResults() *results {
	k := func(n int) *int { return &n }
	step := func(size int, rate float64) *sizeResult {
		return &sizeResult{Size: size, Map: &loadResult{OK: 2000, Rate: rate}, Delete: &loadResult{OK: 2000, Rate: rate},
			KernelMappings: k(size)}
	}
	others := &probeStats{}
	return &results{
		Sizes: []int{0, 1000, 10000}, MapN: 2000, Clients: 16, IptablesMax: 1000,
		Gateways: []*gatewayRun{
			{Name: gwPortleased, Steps: []*sizeResult{step(0, 9000), step(1000, 9100), step(10000, 9200)},
				Removal: &removalResult{Size: 10000, Others: others}},
			{Name: gwIptablesLegacy, MaxSize: 1000, Steps: []*sizeResult{step(0, 300), step(1000, 120)},
				Removal: &removalResult{Size: 1000, Method: "SIGTERM until exit (PORTLEASE chains and the jumps to them removed)", Others: others}},
		},
	}
}

func TestMarkdownShowsTheIptablesSeries(t *testing.T) {
	checkMarkdownHas(t, iptablesResults().markdown(""),
		"portleased-iptables-legacy (`firewall iptables-legacy`): portleased on its iptables backend",
		"the sizes up to 1,000 (-iptables-max-size)",
		"| portleased-iptables-legacy | 1,000 | 120 |",
		"- **portleased-iptables-legacy**: every size up to 1,000 measured (-iptables-max-size).",
		"- **portleased**: every size measured.",
		"| portleased-iptables-legacy | 1,000 | SIGTERM until exit (PORTLEASE chains and the jumps to them removed) |",
	)
	r := iptablesResults()
	r.Gateways = r.Gateways[:1]
	if md := r.markdown(""); strings.Contains(md, "-iptables-max-size") {
		t.Errorf("markdown without iptables gateways mentions them:\n%s", md)
	}
}

func TestPlotDataHasTheIptablesSeries(t *testing.T) {
	dir := t.TempDir()
	iptablesResults().plot(dir)
	dat, err := os.ReadFile(filepath.Join(dir, "rate.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dat), "# portleased-iptables-legacy: table size (0 as 1), new NAT-PMP mappings per second\n1 300.0\n1000 120.0\n") {
		t.Errorf("rate.dat lacks the iptables-legacy series:\n%s", dat)
	}
	gp, err := os.ReadFile(filepath.Join(dir, "rate.gp"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gp), "index 1 using 1:2 with linespoints linewidth 2 pointtype 7 title 'portleased-iptables-legacy'") {
		t.Errorf("rate.gp does not plot the iptables-legacy series:\n%s", gp)
	}
}

func TestMarkdownShowsAFailedGateway(t *testing.T) {
	r := iptablesResults()
	r.Gateways = append(r.Gateways, &gatewayRun{Name: gwIptablesNFT, StopReason: "failed: portleased exited; log x"})
	checkMarkdownHas(t, r.markdown(""), "- **portleased-iptables-nft**: failed: portleased exited; log x.")
}
