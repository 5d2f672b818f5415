package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// TestPCPClientMapIPv4: our client (portlease map --protocol pcp) maps an
// IPv4 port on portleased over PCP MAP (RFC 6887 §11) and the WAN host
// reaches the LAN server through it; the same request again is a renewal
// that keeps the port; a request and a deletion under another nonce (another
// nonce key) are refused with NOT_AUTHORIZED and leave the mapping in
// force (§11.3, §15); the deletion with the mapping's nonce removes it and
// the WAN host no longer gets through.
func TestPCPClientMapIPv4(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	const greeting = "hello through a PCP mapping"
	serveTCP(t, lan, 8086, greeting)
	dir := t.TempDir()
	own, other := filepath.Join(dir, "own-key"), filepath.Join(dir, "other-key")

	r := portleaseMapJSON(t, lan, "tcp", "8086", "--protocol", "pcp", "--nonce-key", own, "--lifetime", "3600")
	if r.Method != "pcp" || r.Nonce == "" || r.Pinhole || !strings.HasPrefix(r.External, lab.GatewayWANAddr4.String()+":") {
		t.Fatalf("portlease map tcp 8086 --protocol pcp granted %+v; want a PCP mapping on %v with a nonce", r, lab.GatewayWANAddr4)
	}
	reach := func(what string, want bool) {
		t.Helper()
		got, err := fetchTCP(lab.WAN, r.External)
		if ok := err == nil && got == greeting; ok != want {
			t.Fatalf("%s: the WAN host through %s got %q, %v; want reached %v", what, r.External, got, err, want)
		}
	}
	reach("through the mapping", true)

	again := portleaseMapJSON(t, lan, "tcp", "8086", "--protocol", "pcp", "--nonce-key", own, "--lifetime", "3600")
	if again.External != r.External || again.Nonce != r.Nonce {
		t.Fatalf("the renewal granted %+v; want the port and nonce of %+v", again, r)
	}
	reach("after the renewal", true)

	for _, cmd := range [][]string{
		{"map", "tcp", "8086", "--protocol", "pcp", "--nonce-key", other},
		{"unmap", "tcp", "8086", "--protocol", "pcp", "--nonce-key", other},
	} {
		out, code := portlease(t, lan, cmd...)
		if code == 0 || !strings.Contains(out, "NOT_AUTHORIZED") {
			t.Fatalf("portlease %s under another nonce: exit %d:\n%s\nwant a NOT_AUTHORIZED refusal", strings.Join(cmd, " "), code, out)
		}
		reach("after portlease "+cmd[0]+" under another nonce", true)
	}

	if out, code := portlease(t, lan, "unmap", "tcp", "8086", "--protocol", "pcp", "--nonce-key", own); code != 0 {
		t.Fatalf("portlease unmap with the mapping's nonce: exit %d:\n%s", code, out)
	}
	reach("after the deletion", false)
}
