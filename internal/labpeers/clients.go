package labpeers

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/netlab"
)

const (
	// UPnPCPath and NATPMPCPath are the clients of Debian's miniupnpc and
	// natpmpc packages.
	UPnPCPath   = "/usr/bin/upnpc"
	NATPMPCPath = "/usr/bin/natpmpc"

	// clientTimeout bounds one run of a client. natpmpc retries for about
	// two minutes when nothing answers (RFC 6886 §3.1's nine doublings
	// from 250 ms).
	clientTimeout = 30 * time.Second
)

// UPnPC runs upnpc on a LAN host against the lab gateway and returns its
// combined output. It always passes -i, which makes upnpc accept an IGD
// whose external address is reserved (203.0.113.1 is; see docs/peers.md);
// pass "-u", m.DescriptionURL() among args to skip discovery. The test
// fails on a non-zero exit (upnpc exits 1 when it finds no IGD, 2 when an
// action such as AddPortMapping fails); use RunUPnPC to allow it. Skipped,
// like StartMiniUPnPd, where upnpc is not installed.
func UPnPC(t testing.TB, host *netlab.Host, args ...string) string {
	t.Helper()
	requireProgram(t, UPnPCPath)
	out, err := RunUPnPC(t.Context(), host, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// RunUPnPC is UPnPC that returns the failure instead of failing the test:
// the output, and an error carrying the output when upnpc exits non-zero or
// runs longer than 30 s.
func RunUPnPC(ctx context.Context, host *netlab.Host, args ...string) (string, error) {
	if !slices.Contains(args, "-i") {
		args = append([]string{"-i"}, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	return host.Run(ctx, UPnPCPath, args...)
}

// NATPMPC runs natpmpc with args on a LAN host and returns its combined
// output; pass "-g", the gateway's LAN address, or natpmpc looks for it in
// the routing table. The test fails on a non-zero exit or after 30 s.
// natpmpc -a may print the wrong packet ("Mapped public port 369 protocol
// UNKNOWN ...", read from a late external address response) although the
// mapping was made: check the mapping elsewhere.
func NATPMPC(t testing.TB, host *netlab.Host, args ...string) string {
	t.Helper()
	requireProgram(t, NATPMPCPath)
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	out, err := host.Run(ctx, NATPMPCPath, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// requireProgram skips the test unless path is an executable; with
// CI=true it fails it instead, as netlab.RequireRoot does.
func requireProgram(t testing.TB, path string) {
	t.Helper()
	netlab.RequireRoot(t)
	if _, err := exec.LookPath(path); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("labpeers: %s not installed (docs/peers.md); lab tests must run in CI", path)
	}
	t.Skipf("labpeers: %s not installed (docs/peers.md)", path)
}
