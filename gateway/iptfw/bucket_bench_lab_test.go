package iptfw

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/netlab"
)

// BenchmarkLabDeleteRule measures what a bucket layout is for: the time
// of one iptables-restore --noflush transaction deleting a rule by its
// specification (as Apply does) while 10,000 DNAT rules sit in one chain
// or spread over 16, 64 or 256, with each variant's program in a lab's
// gateway namespace. iptables-nft-restore fetches the rules of the chains
// the transaction names; iptables-legacy-restore replaces the whole table
// whatever the layout.
func BenchmarkLabDeleteRule(b *testing.B) {
	for _, v := range []Variant{NFT, Legacy} {
		prog := "iptables-" + string(v) + "-restore"
		if _, err := exec.LookPath(prog); err != nil {
			b.Skipf("no %s", prog)
		}
		lab := netlab.New(b, netlab.Config{})
		restore := func(in string) {
			cmd := lab.Gateway.Command(b.Context(), prog, "--noflush")
			cmd.Stdin = strings.NewReader(in)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%s: %v: %s", prog, err, out)
			}
		}
		const rules = 10000
		for _, chains := range []int{1, 16, 64, 256} {
			chain := func(port int) string { return fmt.Sprintf("PORTLEASE-BENCH-%d-%d", chains, port*chains/65536) }
			rule := func(port int) string {
				return fmt.Sprintf("%s -p tcp -m tcp --dport %d -j DNAT --to-destination 198.51.100.10:%d", chain(port), port, port)
			}
			var fill, clear strings.Builder
			fill.WriteString("*nat\n")
			clear.WriteString("*nat\n")
			for i := range chains {
				fmt.Fprintf(&fill, ":PORTLEASE-BENCH-%d-%d - [0:0]\n", chains, i)
				fmt.Fprintf(&clear, "-F PORTLEASE-BENCH-%d-%d\n-X PORTLEASE-BENCH-%d-%d\n", chains, i, chains, i)
			}
			for i := range rules {
				fmt.Fprintf(&fill, "-A %s\n", rule(1+i*6))
			}
			fill.WriteString("COMMIT\n")
			clear.WriteString("COMMIT\n")
			restore(fill.String())
			b.Run(fmt.Sprintf("%s/chains=%d", v, chains), func(b *testing.B) {
				i := 0
				for b.Loop() {
					port := 1 + (i*977%rules)*6
					i++
					restore("*nat\n-D " + rule(port) + "\nCOMMIT\n")
					b.StopTimer()
					restore("*nat\n-A " + rule(port) + "\nCOMMIT\n")
					b.StartTimer()
				}
			})
			restore(clear.String())
		}
	}
}
