package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

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
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{})
	bin := labpeers.Program(t, "github.com/portlease/portlease/examples/ed2k")

	var out, errs labpeers.Output
	ed2k := lab.LAN[0].Command(context.Background(), bin, "-ec", "4712", "-check-interval", "1s")
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
	ruleset := func() string { return labpeers.NFT(t, lab.Gateway, "list", "ruleset") }
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
