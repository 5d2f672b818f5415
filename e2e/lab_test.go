// Package e2e holds the end-to-end tests: the real portleased, the real
// kernel (nftables in network namespaces) and real peers (natpmpc), in the
// lab of internal/netlab. Nothing here leaves the lab's namespaces.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// binDir holds the client and the example, built once for the whole run;
// labpeers builds portleased.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portlease-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir, "../cmd/portlease", "../examples/ed2k")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	// portlease keeps its PCP nonce key in $XDG_STATE_HOME/portlease
	// (as root, /var/lib/portlease without it): in the run's own
	// directory, never the machine's.
	if err := os.Setenv("XDG_STATE_HOME", dir+"/state"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var mappedRE = regexp.MustCompile(`Mapped public port (\d+) protocol (\w+) to local port (\d+) liftime (\d+)`)

// natpmpc runs natpmpc on a LAN host against the lab's gateway.
func natpmpc(t *testing.T, lab *netlab.Lab, host *netlab.Host, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := host.Run(ctx, "natpmpc", append([]string{"-g", lab.GatewayLANAddr4.String()}, args...)...)
	if err != nil {
		t.Fatalf("natpmpc %v: %v", args, err)
	}
	return out
}

// natpmpcMap maps a port with natpmpc and returns the external port.
func natpmpcMap(t *testing.T, lab *netlab.Lab, host *netlab.Host, public, private int, proto string, lifetime int) int {
	t.Helper()
	out := natpmpc(t, lab, host, "-a", strconv.Itoa(public), strconv.Itoa(private), proto, strconv.Itoa(lifetime))
	m := mappedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("natpmpc -a %d %d %s %d printed no mapping:\n%s", public, private, proto, lifetime, out)
	}
	if !strings.EqualFold(m[2], proto) || m[3] != strconv.Itoa(private) || m[4] != strconv.Itoa(lifetime) {
		t.Fatalf("natpmpc mapped %s; want %s to local port %d for %d s", m[0], proto, private, lifetime)
	}
	port, _ := strconv.Atoi(m[1])
	return port
}

// natpmpcDelete deletes LAN host host's mapping of eport to iport with
// natpmpc (lifetime 0, RFC 6886 §3.4); the test fails unless natpmpc
// reports a zero lifetime.
func natpmpcDelete(t *testing.T, lab *netlab.Lab, host *netlab.Host, eport, iport int, proto string) {
	t.Helper()
	out := natpmpc(t, lab, host, "-a", strconv.Itoa(eport), strconv.Itoa(iport), proto, "0")
	// natpmpc spells it "liftime".
	if !strings.Contains(out, "lifetime 0") && !strings.Contains(out, "liftime 0") {
		t.Fatalf("natpmpc deleting %d/%s printed no zero lifetime:\n%s", eport, proto, out)
	}
}

// nftRuleset returns the gateway namespace's whole ruleset; the test fails
// when nft does.
func nftRuleset(t *testing.T, lab *netlab.Lab) string {
	t.Helper()
	return labpeers.NFT(t, lab.Gateway, "list", "ruleset")
}

// eventually polls cond until it holds or a generous deadline passes: it
// asserts that something happens, not how fast.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
