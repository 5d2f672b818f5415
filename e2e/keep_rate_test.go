package e2e

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// TestKeepManyUnderDefaultRate: `portlease keep` with a file of 300 lines,
// against portleased with its default configuration (request rate 50/s
// burst 200, default shares), ends with all 300 mapped, over NAT-PMP and
// over UPnP: the requests over the rate are refused (NAT-PMP result 4, UPnP
// HTTP 503) and the keeper tries them again with backoff.
func TestKeepManyUnderDefaultRate(t *testing.T) {
	const lines = 300
	for _, proto := range []string{"natpmp", "upnp"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{})
			d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{})
			lan := lab.LAN[0]
			file := writeFile(t, "many.csv", restartCSV(lines, 20000, 3600, "many"))
			want := make(map[string]bool, lines) // protocol and internal endpoint: "tcp 198.51.100.10:20000"
			for i := range lines {
				want[fmt.Sprintf("%s %s:%d", [2]string{"tcp", "udp"}[i%2], lan.Addr4, 20000+i)] = true
			}
			args := []string{"keep", "--foreground", "-f", file, "--protocol", proto,
				"--pid-file", filepath.Join(t.TempDir(), "keep.pid")}
			if proto == "upnp" {
				args = append(args, "--url", d.DescriptionURL())
			}
			start := time.Now()
			keep := startBackground(t, lan, filepath.Join(binDir, "portlease"), args...)

			var missing []string
			all := waitFor(start.Add(60*time.Second), func() bool {
				mapped := make(map[string]bool, len(want))
				for k, e := range kernelInbound(t, lab) {
					mapped[k.proto+" "+e.internal] = true
				}
				missing = missing[:0]
				for w := range want {
					if !mapped[w] {
						missing = append(missing, w)
					}
				}
				return len(missing) == 0
			})
			if !all {
				t.Fatalf("after 60 s %d of the %d lines are not mapped in the kernel (e.g. %s); keep's output:\n%s\nportleased's log:\n%s",
					len(missing), lines, missing[0], keep.Output(), d.Log())
			}
			t.Logf("all %d lines mapped over %s %v after keep started; the daemon refused over the rate: %q", lines, proto,
				time.Since(start).Round(100*time.Millisecond), logLine(d, "requests over the rate refused"))
			table := readTable(t, lan, d)
			var own int
			for k, m := range table.entries {
				if want[k.proto+" "+m.Internal] {
					own++
				}
			}
			if own != lines {
				t.Fatalf("the gateway's table lists %d of keep's %d mappings:\n%s", own, lines, table.description)
			}
			if code := keep.stop(syscall.SIGTERM); code != 0 {
				t.Errorf("keep exit %d after SIGTERM:\n%s", code, keep.Output())
			}
		})
	}
}
