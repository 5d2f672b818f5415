package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/netlab"
)

// output collects a process's output.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLab runs the example on the lab's LAN host against portleased on the
// lab's gateway: it maps the four ports, and deletes them on SIGINT.
func TestLab(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", dir, "../../cmd/portleased", ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	conf := filepath.Join(dir, "portleased.conf")
	if err := os.WriteFile(conf, []byte("interface wan0\nlisten on lan0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var dlog output
	daemon := lab.Gateway.Command(context.Background(), filepath.Join(dir, "portleased"), "-d", "-f", conf)
	daemon.Stdout, daemon.Stderr = &dlog, &dlog
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
		if t.Failed() {
			t.Logf("portleased:\n%s", dlog.String())
		}
	})
	eventually(t, "portleased serves", func() bool { return strings.Contains(dlog.String(), "serving NAT-PMP") })

	var out, errs output
	ed2k := lab.LAN[0].Command(context.Background(), filepath.Join(dir, "ed2k"), "-ec", "4712", "-check-interval", "1s")
	ed2k.Stdout, ed2k.Stderr = &out, &errs
	if err := ed2k.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- ed2k.Wait() }()
	t.Cleanup(func() {
		ed2k.Process.Kill()
		if t.Failed() {
			t.Logf("ed2k output:\n%s\nlog:\n%s", out.String(), errs.String())
		}
	})
	want := []string{"mapped TCP 4662 -> 203.0.113.1:4662", "mapped UDP 4665 -> 203.0.113.1:4665",
		"mapped UDP 4672 -> 203.0.113.1:4672", "mapped TCP 4712 -> 203.0.113.1:4712", "external address 203.0.113.1"}
	for _, w := range want {
		eventually(t, w, func() bool { return strings.Contains(out.String(), w) })
	}
	ruleset := func() string {
		s, err := lab.Gateway.Run(context.Background(), "nft", "list", "ruleset")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if r := ruleset(); !strings.Contains(r, "4662") || !strings.Contains(r, "4712") {
		t.Fatalf("the kernel holds no mapping:\n%s", r)
	}

	ed2k.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("ed2k exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ed2k did not stop")
	}
	for _, w := range []string{"deleted TCP 4662", "deleted UDP 4665", "deleted UDP 4672", "deleted TCP 4712", "stopped"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if r := ruleset(); strings.Contains(r, "4662") {
		t.Fatalf("the mappings are still in the kernel:\n%s", r)
	}
}
