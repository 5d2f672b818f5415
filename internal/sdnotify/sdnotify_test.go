package sdnotify

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen opens a unixgram socket at name (a path, or '@' and an abstract
// name) that plays systemd's side, closed at the end of the test.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("ListenUnixgram(%q): %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receive reads one datagram from c, failing the test after 5 s.
func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatalf("reading the notification: %v", err)
	}
	return string(b[:n])
}

func TestNotifyPathSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	sock := listen(t, path)
	n, err := New(path)
	if err != nil {
		t.Fatalf("New(%q): %v", path, err)
	}
	for _, tc := range []struct {
		states []string
		want   string
	}{
		{[]string{Ready}, "READY=1\n"},
		{[]string{Stopping}, "STOPPING=1\n"},
		{[]string{Ready, "STATUS=serving 3 leases"}, "READY=1\nSTATUS=serving 3 leases\n"},
	} {
		if err := n.Notify(tc.states...); err != nil {
			t.Fatalf("Notify(%q): %v", tc.states, err)
		}
		if got := receive(t, sock); got != tc.want {
			t.Errorf("Notify(%q) sent %q; want %q", tc.states, got, tc.want)
		}
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	var id [8]byte
	rand.Read(id[:])
	name := "@portlease-sdnotify-test-" + hex.EncodeToString(id[:])
	sock := listen(t, name)
	n, err := FromEnv(func(key string) string {
		if key != EnvSocket {
			t.Errorf("FromEnv read %q; want %q", key, EnvSocket)
		}
		return name
	})
	if err != nil {
		t.Fatalf("FromEnv(%q): %v", name, err)
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatalf("Notify(READY=1) to %q: %v", name, err)
	}
	if got := receive(t, sock); got != "READY=1\n" {
		t.Errorf("sent %q; want %q", got, "READY=1\n")
	}
}

// TestReloadSendsMonotonicTime checks RELOADING=1 comes with the current
// CLOCK_MONOTONIC time in microseconds, as systemd 253 and later ask.
func TestReloadSendsMonotonicTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	sock := listen(t, path)
	n, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	var before, after unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &before); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &after); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(receive(t, sock), "\n"), "\n")
	if len(lines) != 2 || lines[0] != Reloading || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("Reload sent %q; want RELOADING=1 and MONOTONIC_USEC=N", lines)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC: %v", err)
	}
	if usec < before.Nano()/1000 || usec > after.Nano()/1000 {
		t.Errorf("MONOTONIC_USEC=%d; want between %d and %d", usec, before.Nano()/1000, after.Nano()/1000)
	}
}

func TestUnsetSocketSendsNothing(t *testing.T) {
	n, err := New("")
	if err != nil || n != nil {
		t.Fatalf(`New("") = %v, %v; want nil, nil`, n, err)
	}
	if err := n.Notify(Ready); err != nil {
		t.Errorf("nil Notifier: Notify = %v; want nil", err)
	}
	if err := n.Reload(); err != nil {
		t.Errorf("nil Notifier: Reload = %v; want nil", err)
	}
}

func TestNewRefusesOtherAddresses(t *testing.T) {
	for _, s := range []string{"relative/path", "@", "vsock:2:1234"} {
		if n, err := New(s); err == nil {
			t.Errorf("New(%q) = %v, nil; want an error", s, n)
		}
	}
}

func TestNotifyRefusesMalformedStates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	listen(t, path)
	n, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"READY", "READY=1\nSTOPPING=1"} {
		if err := n.Notify(s); err == nil {
			t.Errorf("Notify(%q) = nil; want an error", s)
		}
	}
}

// TestNotifyWithoutListenerFails checks a socket nobody listens on is an
// error, not a silent loss.
func TestNotifyWithoutListenerFails(t *testing.T) {
	n, err := New(filepath.Join(t.TempDir(), "absent"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(Ready); err == nil {
		t.Error("Notify to a missing socket = nil; want an error")
	}
}
