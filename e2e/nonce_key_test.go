package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// The PCP nonce key (portlease --nonce-key; TestMain points XDG_STATE_HOME
// at the run's directory): a mapping's nonce is the same in every run, so
// that a later portlease renews and deletes what an earlier one made (RFC
// 6887 §11.3, §15: another nonce gets NOT_AUTHORIZED).

// TestUnmapWithoutNonce: portlease map tcp 8080 over PCP, then portlease
// unmap tcp 8080 without --nonce deletes it; the key file was made with
// mode 0600.
func TestUnmapWithoutNonce(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	key := filepath.Join(t.TempDir(), "pcp-key")

	out, code := portlease(t, lan, "map", "tcp", "8080", "--protocol", "pcp", "--nonce-key", key)
	if code != 0 || !strings.Contains(out, "via pcp") {
		t.Fatalf("portlease map tcp 8080 --protocol pcp: exit %d:\n%s", code, out)
	}
	if !inKernel(inboundElements(t, lab), "TCP", 8080, "198.51.100.10:8080") {
		t.Fatalf("portlease map granted TCP 8080 but the kernel lacks it:\n%s", inboundElements(t, lab))
	}
	fi, err := os.Stat(key)
	if err != nil {
		t.Fatalf("the key file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %04o; want 0600", perm)
	}

	out, code = portlease(t, lan, "unmap", "tcp", "8080", "--protocol", "pcp", "--nonce-key", key)
	if code != 0 {
		t.Fatalf("portlease unmap tcp 8080 without --nonce: exit %d:\n%s", code, out)
	}
	if in := inboundElements(t, lab); inKernel(in, "TCP", 8080, "198.51.100.10:8080") {
		t.Fatalf("after unmap the kernel still has TCP 8080:\n%s", in)
	}

	// The default key ($XDG_STATE_HOME/portlease/pcp-key) and auto,
	// which prefers PCP with portleased.
	out, code = portlease(t, lan, "map", "tcp", "8081")
	if code != 0 || !strings.Contains(out, "via pcp") {
		t.Fatalf("portlease map tcp 8081: exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("XDG_STATE_HOME"), "portlease", "pcp-key")); err != nil {
		t.Errorf("the default key file: %v", err)
	}
	if out, code = portlease(t, lan, "unmap", "tcp", "8081"); code != 0 {
		t.Fatalf("portlease unmap tcp 8081: exit %d:\n%s", code, out)
	}
	if in := inboundElements(t, lab); inKernel(in, "TCP", 8081, "198.51.100.10:8081") {
		t.Fatalf("after unmap the kernel still has TCP 8081:\n%s", in)
	}
}

// mappedLine is the log line of a mapping granted by keep.
var mappedLine = regexp.MustCompile(`(?m)level=INFO msg=Mapped request="(\w+ \d+)" external=([\d.]+:\d+)`)

// waitMapped waits (30 s at most) for keep's log to tell every mapping of
// restartPorts granted and returns their external endpoints by request.
func waitMapped(t *testing.T, keep *background) map[string]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := make(map[string]string)
		for _, m := range mappedLine.FindAllStringSubmatch(keep.Output(), -1) {
			got[m[1]] = m[2]
		}
		if len(got) == len(restartPorts) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("keep told %d of %d mappings granted:\n%s", len(got), len(restartPorts), keep.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKeepRestartRenews: portlease keep --protocol pcp killed (its mappings
// stay on portleased) and started again renews them: the same external
// ports, no NOT_AUTHORIZED (with a random nonce per run it was refused
// until the leases ended).
func TestKeepRestartRenews(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	has := func() (string, func(string, int) bool) { return portleasedInbound(t, lab) }

	first := startKeep(t, lab, "pcp")
	before := waitMapped(t, first)
	waitAll(t, "keep maps the file", 30*time.Second, has)
	first.stop(syscall.SIGKILL)

	second := startKeep(t, lab, "pcp")
	after := waitMapped(t, second)
	for req, ext := range before {
		if after[req] != ext {
			t.Errorf("%s: external %s after keep's restart; want %s as before", req, after[req], ext)
		}
	}
	if log := second.Output(); strings.Contains(log, "NOT_AUTHORIZED") || strings.Contains(log, "mapping failed") {
		t.Errorf("the restarted keep was refused:\n%s", log)
	}
	waitAll(t, "the mappings are on portleased after keep's restart", 5*time.Second, has)
	if code := second.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("keep exit %d after SIGTERM:\n%s", code, second.Output())
	}
}
