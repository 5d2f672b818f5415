package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/netlab"
)

// serveTCP6 runs a TCP server on host's IPv6 addresses that greets every
// connection with greeting.
func serveTCP6(t *testing.T, host *netlab.Host, port uint16, greeting string) {
	t.Helper()
	netlab.ServeGreeting(t, host, "tcp6", port, greeting)
}

// fetchTCP6 connects from host, from source endpoint src (any address when
// not valid, any port when 0), to the IPv6 endpoint to and returns the
// first line it reads. A connection the gateway drops times out after 3 s.
func fetchTCP6(host *netlab.Host, src netip.AddrPort, to netip.AddrPort) (string, error) {
	return netlab.FetchLineFrom(host, "tcp6", src, to.String())
}

// reaches reports whether host, from src, gets greeting from to.
func reaches(host *netlab.Host, src netip.AddrPort, to netip.AddrPort, greeting string) (bool, string) {
	got, err := fetchTCP6(host, src, to)
	if err != nil {
		return false, err.Error()
	}
	return got == greeting, fmt.Sprintf("read %q", got)
}

// mustReach fails the test unless host, from src, gets greeting from to.
func mustReach(t *testing.T, what string, host *netlab.Host, src netip.AddrPort, to netip.AddrPort, greeting string) {
	t.Helper()
	if ok, why := reaches(host, src, to, greeting); !ok {
		t.Fatalf("%s: %v from %v to %v: %s; want %q", what, host.Name, src, to, why, greeting)
	}
}

// mustNotReach fails the test when host, from src, gets anything from to.
func mustNotReach(t *testing.T, what string, host *netlab.Host, src netip.AddrPort, to netip.AddrPort) {
	t.Helper()
	if got, err := fetchTCP6(host, src, to); err == nil {
		t.Fatalf("%s: %v from %v reached %v: %q; want the gateway to drop it", what, host.Name, src, to, got)
	}
}

// eventuallyUnreachable waits, within a generous deadline, until host can no
// longer reach to from src.
func eventuallyUnreachable(t *testing.T, what string, host *netlab.Host, src netip.AddrPort, to netip.AddrPort) {
	t.Helper()
	eventually(t, what, func() bool {
		_, err := fetchTCP6(host, src, to)
		return err != nil
	})
}

// addWANAddr6 gives the lab's WAN host a further IPv6 address on its link;
// the test fails when ip does.
func addWANAddr6(t *testing.T, lab *netlab.Lab, addr netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := lab.WAN.Run(ctx, "ip", "-6", "addr", "add", netip.PrefixFrom(addr, 64).String(),
		"dev", lab.WAN.Link, "nodad"); err != nil {
		t.Fatalf("add %v to the WAN host: %v\n%s", addr, err, out)
	}
}

// pinholeJSON is what portlease map --json prints for a pinhole.
type pinholeJSON struct {
	Protocol string `json:"protocol"`
	Internal string `json:"internal"`
	External string `json:"external"`
	Lifetime int    `json:"lifetime"`
	Method   string `json:"method"`
	Nonce    string `json:"nonce"`
	Pinhole  bool   `json:"pinhole"`
}

// portleaseMapJSON runs portlease map --json on host with args and decodes
// what it prints; the test fails when portlease exits non-zero.
func portleaseMapJSON(t *testing.T, host *netlab.Host, args ...string) pinholeJSON {
	t.Helper()
	args = append([]string{"map", "--json"}, args...)
	out, code := portlease(t, host, args...)
	if code != 0 {
		t.Fatalf("portlease %s: exit %d:\n%s", strings.Join(args, " "), code, out)
	}
	var r pinholeJSON
	start := strings.Index(out, "{")
	if start < 0 {
		t.Fatalf("portlease %s printed no JSON:\n%s", strings.Join(args, " "), out)
	}
	if err := json.NewDecoder(strings.NewReader(out[start:])).Decode(&r); err != nil {
		t.Fatalf("portlease %s: %v:\n%s", strings.Join(args, " "), err, out)
	}
	return r
}
