package e2e

import (
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

const (
	healMappings = 100
	// healDeadline is issue 9's bound: every mapping forwards again
	// within 1 s of another program deleting them.
	healDeadline = time.Second
)

// TestKernelHealed: with 100 mappings and an IPv6 pinhole live, `nft flush
// ruleset` (which also deletes the lab's own masquerade and filter tables:
// inbound mappings need neither) and then `nft delete table inet
// portleased`: each time all 100 elements are back in the kernel and the
// WAN host reaches a LAN server through one of them within 1 s, the pinhole
// is back (and, with the lab's default-drop IPv6 forward chain still there
// after the table's deletion, lets the WAN host through again), the daemon
// logs the repair, the kernel equals the table, and a new natpmpc request
// succeeds.
func TestKernelHealed(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{StateFile: filepath.Join(labpeers.StateDir(t), "leases")})
	lan := lab.LAN[0]
	keepOneShot(t, lan, d, "natpmp", restartCSV(healMappings, 21000, 3000, "heal"))
	table := readTable(t, lan, d)
	if len(table.entries) != healMappings {
		t.Fatalf("the table holds %d mappings; want %d:\n%s", len(table.entries), healMappings, table.description)
	}
	want := kernelInbound(t, lab)
	kernelMatchesTable(t, want, table)

	const served = "reached after the repair"
	serveTCP(t, lan, 21000, served)
	ext := fmt.Sprintf("%s:%d", lab.GatewayWANAddr4, 21000)
	if got, err := fetchTCP(lab.WAN, ext); err != nil || got != served {
		t.Fatalf("before any change the WAN host through %s got %q, %v", ext, got, err)
	}
	const served6 = "reached through the pinhole after the repair"
	pinhole := netip.AddrPortFrom(lanHost6, 21500)
	serveTCP6(t, lan, pinhole.Port(), served6)
	if r := portleaseMapJSON(t, lan, "tcp", "21500", "--to", lanHost6.String(), "--protocol", "pcp", "--lifetime", "3600"); !r.Pinhole {
		t.Fatalf("portlease map --to %v granted %+v; want a pinhole", lanHost6, r)
	}
	mustReach(t, "before any change", lab.WAN, anySource, pinhole, served6)

	for i, change := range [][]string{{"flush", "ruleset"}, {"delete", "table", "inet", "portleased"}} {
		what := "nft " + strings.Join(change, " ")
		repairs := strings.Count(d.Log(), "nftables changed by another program; repaired")
		labpeers.NFT(t, lab.Gateway, change...)
		changed := time.Now()
		var elems int
		var fetched string
		var fetchErr error
		back := waitFor(changed.Add(healDeadline), func() bool {
			out, err := runQuiet(lab.Gateway, healDeadline, "nft", "-j", "list", "map", "inet", "portleased", "inbound4")
			if err != nil {
				return false
			}
			got, err := parseInbound(out)
			if err != nil {
				return false
			}
			elems = len(got)
			if !sameInternals(got, want) {
				return false
			}
			fetched, fetchErr = fetchTCP(lab.WAN, ext)
			return fetchErr == nil && fetched == served
		})
		if !back {
			t.Fatalf("%s: %v later the kernel held %d of the %d mappings, and the WAN host through %s got %q, %v",
				what, time.Since(changed).Round(time.Millisecond), elems, healMappings, ext, fetched, fetchErr)
		}
		t.Logf("%s: all %d mappings forward again %v later", what, healMappings, time.Since(changed).Round(time.Millisecond))
		pinholeBack := waitFor(changed.Add(healDeadline), func() bool {
			out, err := runQuiet(lab.Gateway, healDeadline, "nft", "list", "set", "inet", "portleased", "pinhole6")
			return err == nil && strings.Contains(out, lanHost6.String()+" . tcp . 21500")
		})
		if !pinholeBack {
			t.Fatalf("%s: %v later the kernel's pinhole6 set lacks the pinhole to %v", what, time.Since(changed).Round(time.Millisecond), pinhole)
		}
		mustReach(t, what+": through the pinhole", lab.WAN, anySource, pinhole, served6)
		eventually(t, what+": portleased logs the repair", func() bool {
			return strings.Count(d.Log(), "nftables changed by another program; repaired") > repairs
		})
		port := 22000 + i
		natpmpcMap(t, lab, lan, port, port, "tcp", 3600)
		after := readTable(t, lan, d)
		if len(after.entries) != healMappings+i+1 {
			t.Fatalf("%s: the table holds %d mappings; want %d:\n%s", what, len(after.entries), healMappings+i+1, after.description)
		}
		kernelMatchesTable(t, kernelInbound(t, lab), after)
		want = kernelInbound(t, lab)
	}
}

// sameInternals reports whether two readings of the inbound map hold the
// same mappings to the same internal endpoints (their expiry aside).
func sameInternals(a, b map[mappingKey]kernelElement) bool {
	return maps.EqualFunc(a, b, func(x, y kernelElement) bool { return x.internal == y.internal })
}
