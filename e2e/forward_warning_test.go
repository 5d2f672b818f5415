package e2e

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// forwardChain is how portleased names the lab's default-drop IPv6 forward
// chain in its warning (slog quotes the value).
const forwardChain = `chain="table inet filter chain forward"`

// markRuleHandleRE finds the handle of the operator's accept line in
// `nft -a list chain` output.
var markRuleHandleRE = regexp.MustCompile(`(?m)^\s*meta mark & 0x10000000 == 0x10000000 accept # handle (\d+)$`)

// TestForwardChainWarning: in a lab whose gateway forward chain (table inet
// filter, policy drop) lacks the line that accepts portleased's mark,
// portleased warns at start, naming the chain and the line; and the
// warning is true: a PCP pinhole does not let the WAN host in. With the
// line back, a restarted portleased does not warn and the pinhole works.
func TestForwardChainWarning(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	chain := labpeers.NFT(t, lab.Gateway, "-a", "list", "chain", "inet", "filter", "forward")
	m := markRuleHandleRE.FindStringSubmatch(chain)
	if m == nil {
		t.Fatalf("the lab's forward chain has no %q line:\n%s", netlab.PinholeAcceptRule, chain)
	}
	labpeers.NFT(t, lab.Gateway, "delete", "rule", "inet", "filter", "forward", "handle", m[1])
	if chain := labpeers.NFT(t, lab.Gateway, "list", "chain", "inet", "filter", "forward"); strings.Contains(chain, "meta mark") {
		t.Fatalf("the accept line is still in the forward chain:\n%s", chain)
	}

	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	if err := d.WaitLog(t.Context(), forwardChain); err != nil {
		t.Fatalf("no start-up warning naming the forward chain: %v", err)
	}
	if !strings.Contains(d.Log(), netlab.PinholeAcceptRule) {
		t.Errorf("the warning does not give the line to add, %q", netlab.PinholeAcceptRule)
	}

	lan := lab.LAN[0]
	const greeting = "hello past the operator's firewall"
	server := netip.AddrPortFrom(lanHost6, 8084)
	serveTCP6(t, lan, server.Port(), greeting)
	r := portleaseMapJSON(t, lan, "tcp", "8084", "--to", lanHost6.String(), "--protocol", "pcp")
	if !r.Pinhole {
		t.Fatalf("portlease map --to %v granted %+v; want a pinhole", lanHost6, r)
	}
	mustNotReach(t, "through a pinhole the forward chain drops", lab.WAN, anySource, server)

	labpeers.NFT(t, lab.Gateway, "add", "rule", "inet", "filter", "forward", netlab.PinholeAcceptRule)
	if err := d.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d.Log()[strings.LastIndex(d.Log(), "started again"):], forwardChain) {
		t.Fatalf("portleased warned again with the accept line in place:\n%s", d.Log())
	}
	r = portleaseMapJSON(t, lan, "tcp", "8084", "--to", lanHost6.String(), "--protocol", "pcp")
	if !r.Pinhole {
		t.Fatalf("portlease map --to %v granted %+v; want a pinhole", lanHost6, r)
	}
	mustReach(t, "through the pinhole with the line back", lab.WAN, anySource, server, greeting)
}
