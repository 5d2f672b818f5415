package nftfw

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/netlab"
)

// requireRoot skips t unless it runs as root with the ip and nft commands.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("nftfw: kernel tests need root")
	}
	for _, cmd := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("nftfw: no %s command", cmd)
		}
	}
}

// testNS is a bare network namespace of a test: loopback only.
type testNS struct {
	name string
	fd   int
}

// newNS creates a network namespace named pltest-nft-<pid>-<random>, removed
// when the test ends.
func newNS(t testing.TB) testNS {
	t.Helper()
	requireRoot(t)
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("pltest-nft-%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
	runCmd(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return testNS{name: name, fd: int(f.Fd())}
}

// nft runs nft with args inside the namespace and returns its output.
func (ns testNS) nft(t testing.TB, args ...string) string {
	t.Helper()
	return runCmd(t, "ip", append([]string{"netns", "exec", ns.name, "nft"}, args...)...)
}

// nftInput runs `nft -f -` inside the namespace with script on its input.
func (ns testNS) nftInput(t testing.TB, script string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f -: %v: %s\n%s", err, out, script)
	}
}

// hasTable reports whether the namespace holds table "family name".
func (ns testNS) hasTable(t testing.TB, family, name string) bool {
	t.Helper()
	for _, line := range strings.Split(ns.nft(t, "list", "tables"), "\n") {
		if strings.TrimSpace(line) == "table "+family+" "+name {
			return true
		}
	}
	return false
}

func runCmd(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// monitor counts the nftables transactions committed in a namespace, by
// reading `nft monitor`.
type monitor struct {
	cmd   *exec.Cmd
	lines chan string
}

// startMonitor starts `nft monitor` in ns and waits until it is listening.
func startMonitor(t *testing.T, ns testNS) *monitor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.name, "nft", "monitor")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &monitor{cmd: cmd, lines: make(chan string, 1<<16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			m.lines <- sc.Text()
		}
		close(m.lines)
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		<-done
	})
	// Commit a marker transaction until the monitor reports one: then it
	// is listening.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ns.nft(t, "add", "table", "ip", "pltest_marker")
		ns.nft(t, "delete", "table", "ip", "pltest_marker")
		if m.waitGenerations(t, 300*time.Millisecond) > 0 {
			m.drain()
			return m
		}
		if time.Now().After(deadline) {
			t.Fatal("nft monitor reports nothing")
		}
	}
}

// waitGenerations returns the number of "new generation" lines read until
// the monitor has been quiet for d.
func (m *monitor) waitGenerations(t testing.TB, d time.Duration) int {
	t.Helper()
	n := 0
	for {
		select {
		case line, ok := <-m.lines:
			if !ok {
				return n
			}
			if strings.HasPrefix(line, "# new generation") {
				n++
			}
		case <-time.After(d):
			return n
		}
	}
}

// drain discards what the monitor has read so far.
func (m *monitor) drain() {
	for {
		select {
		case <-m.lines:
		default:
			return
		}
	}
}

// labGateway returns the testNS of lab's gateway namespace, its file open
// until the test ends.
func labGateway(t testing.TB, lab *netlab.Lab) testNS {
	t.Helper()
	nsFile, err := os.Open("/run/netns/" + lab.Gateway.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsFile.Close() })
	return testNS{name: lab.Gateway.NS, fd: int(nsFile.Fd())}
}
