// Package e2e holds the end-to-end tests: the real portleased, the real
// kernel (nftables in network namespaces) and real peers (natpmpc), in the
// lab of internal/netlab. Nothing here leaves the lab's namespaces.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/netlab"
)

// binDir holds the programs built once for the whole run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portlease-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir, "../cmd/portleased", "../cmd/portlease", "../examples/ed2k")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a portleased running in the lab's gateway namespace.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	conf string
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	err  error
}

func (d *daemon) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.Write(p)
}

// Log returns what the daemon has logged so far.
func (d *daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

const labConfig = `# the lab's gateway, in OpenBSD natpmpd.conf syntax plus portleased's rules
interface wan0
listen on lan0
`

// startDaemon writes conf and runs portleased -d -v with it in the gateway
// namespace, and waits until it serves.
func startDaemon(t *testing.T, lab *netlab.Lab, conf string) *daemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portleased.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, conf: path, done: make(chan struct{})}
	d.cmd = lab.Gateway.Command(context.Background(), filepath.Join(binDir, "portleased"), "-d", "-v", "-f", path)
	d.cmd.Stdout, d.cmd.Stderr = d, d
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("portleased log:\n%s", d.Log())
		}
	})
	d.waitLog(t, "serving NAT-PMP")
	d.waitLog(t, "external address")
	return d
}

// waitLog waits for the daemon to log a line containing s.
func (d *daemon) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(d.Log(), s) {
		select {
		case <-d.done:
			t.Fatalf("portleased exited (%v) before logging %q:\n%s", d.err, s, d.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("portleased never logged %q:\n%s", s, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signal sends sig and, for SIGTERM and SIGKILL, waits for the exit.
func (d *daemon) stop(sig syscall.Signal) error {
	select {
	case <-d.done:
		return d.err
	default:
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	return d.err
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

// nftRuleset returns the gateway namespace's whole ruleset.
func nftRuleset(t *testing.T, lab *netlab.Lab) string {
	t.Helper()
	out, err := lab.Gateway.Run(context.Background(), "nft", "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	return out
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
