package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/internal/privdrop"
)

// TestDetached: without -d, portleased detaches once it serves, writes and
// locks its PID file, drops its privileges, refuses a second instance with
// a clear message, and on SIGTERM removes its table and empties its PID
// file.
func TestDetached(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	dir := t.TempDir()
	conf := filepath.Join(dir, "portleased.conf")
	pidFile := filepath.Join(dir, "portleased.pid")
	text, err := labpeers.PortleasedConfig{}.Text(lab)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	portleased := func(args ...string) (string, error) {
		cmd := lab.Gateway.Command(context.Background(), labpeers.PortleasedBinary(t), args...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := portleased("-f", conf, "-p", pidFile); err != nil {
		t.Fatalf("portleased (detaching) = %v:\n%s", err, out)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("PID file holds %q", b)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("process %d from the PID file: %v", pid, err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	threads, err := privdrop.ReadThreads(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := privdrop.CheckThreads(threads, privdrop.Options{}, privdrop.Options{}.Mask()); err != nil {
		t.Errorf("the detached daemon: %v", err)
	}
	if out := natpmpc(t, lab, lab.LAN[0]); !strings.Contains(out, "Public IP address : 203.0.113.1") {
		t.Fatalf("the detached daemon does not serve:\n%s", out)
	}

	out, err := portleased("-f", conf, "-p", pidFile)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, pidFile) || !strings.Contains(out, strconv.Itoa(pid)) {
		t.Fatalf("a second instance on the same PID file: %v, %q; want a failure naming %s and pid %d", err, out, pidFile, pid)
	}
	out, err = portleased("-d", "-f", conf)
	if !errors.As(err, &exit) || !strings.Contains(out, "already running in this network namespace") {
		t.Fatalf("a second instance in the same namespace: %v, %q; want a refusal", err, out)
	}

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the daemon exits after SIGTERM", func() bool { return syscall.Kill(pid, 0) != nil })
	// The daemon, no longer root, cannot remove a file of root's
	// directory: it empties it instead.
	if b, err := os.ReadFile(pidFile); err != nil && !os.IsNotExist(err) || len(b) > 0 {
		t.Errorf("PID file after SIGTERM holds %q (%v); want it empty or gone", b, err)
	}
	if rs := nftRuleset(t, lab); strings.Contains(rs, "portleased") {
		t.Errorf("after SIGTERM the ruleset holds portleased:\n%s", rs)
	}
}
