package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// notifySocket plays systemd's side of sd_notify for one portleased: a
// unixgram socket in a directory of its own that every user may reach (the
// daemon reports after dropping to its user; t.TempDir() is root's alone),
// and a wrapper program that starts the daemon with NOTIFY_SOCKET naming it,
// as systemd does for Type=notify.
type notifySocket struct {
	conn    *net.UnixConn
	wrapper string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "portleased-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "portleased")
	script := fmt.Sprintf("#!/bin/sh\nNOTIFY_SOCKET='%s' exec '%s' \"$@\"\n", path, labpeers.PortleasedBinary(t))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return &notifySocket{conn: conn, wrapper: wrapper}
}

// next returns the next message the daemon sent, failing the test when none
// comes within 30 s.
func (n *notifySocket) next(t *testing.T, what string) string {
	t.Helper()
	if err := n.conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	c, err := n.conn.Read(b)
	if err != nil {
		t.Fatalf("no sd_notify message %s: %v", what, err)
	}
	return string(b[:c])
}

// none fails the test if the daemon sent a message within d.
func (n *notifySocket) none(t *testing.T, d time.Duration, what string) {
	t.Helper()
	if err := n.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	if c, err := n.conn.Read(b); err == nil {
		t.Errorf("sd_notify message %q %s; want none", b[:c], what)
	}
}

// TestSystemdNotify: started as systemd starts a Type=notify service,
// portleased sends READY=1 once it serves (a NAT-PMP request from the LAN
// is answered the moment READY=1 arrives), RELOADING=1 with MONOTONIC_USEC
// and then READY=1 around a SIGHUP reload, and STOPPING=1 at SIGTERM
// before it exits.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	notify := newNotifySocket(t)
	d, err := labpeers.NewPortleased(lab, labpeers.PortleasedConfig{Binary: notify.wrapper, Dir: labpeers.StateDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("portleased log:\n%s", d.Log())
		}
	})
	started := make(chan error, 1)
	go func() { started <- d.Start(context.Background()) }()

	if got := notify.next(t, "at start"); got != "READY=1\n" {
		t.Fatalf("first sd_notify message %q; want READY=1", got)
	}
	if !answers(t, lab.LAN[0], lab.GatewayLANAddr4.String()) {
		t.Fatal("portleased said READY=1 but does not answer a NAT-PMP request")
	}
	if err := <-started; err != nil {
		t.Fatal(err)
	}

	n := strings.Count(d.Log(), "configuration reloaded")
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloading := notify.next(t, "at SIGHUP")
	lines := strings.Split(strings.TrimSuffix(reloading, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("sd_notify message at SIGHUP %q; want RELOADING=1 and MONOTONIC_USEC=N", reloading)
	}
	if got := notify.next(t, "after the reload"); got != "READY=1\n" {
		t.Fatalf("sd_notify message after the reload %q; want READY=1", got)
	}
	// The log reaches the test through a pipe, so it may trail READY=1 a
	// little; the reload must have been logged, once.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := d.WaitLog(ctx, "configuration reloaded"); err != nil || strings.Count(d.Log(), "configuration reloaded") != n+1 {
		t.Errorf("no reload logged around READY=1 (%v); log:\n%s", err, d.Log())
	}
	notify.none(t, 500*time.Millisecond, "while serving")

	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := notify.next(t, "at SIGTERM"); got != "STOPPING=1\n" {
		t.Fatalf("sd_notify message at SIGTERM %q; want STOPPING=1", got)
	}
}
