package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/portlease/portlease/gateway/config"
)

// TestReadmeExamples: every configuration example in README.md parses.
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	n := 0
	for _, b := range blocks {
		if !strings.Contains(b[1], "interface ") || !strings.Contains(b[1], "listen on") || strings.Contains(b[1], "Usage:") {
			continue
		}
		n++
		if _, err := config.Parse("README.md example", strings.NewReader(b[1])); err != nil {
			t.Errorf("README example does not parse:\n%s\n%v", b[1], err)
		}
	}
	if n < 2 {
		t.Fatalf("found %d configuration examples in README.md; want at least 2", n)
	}
}

// TestCheckOnly: -n prints "configuration OK" and the firewall backend,
// or each error as file:line: message, with exit status 0 or 1. It touches no network.
func TestCheckOnly(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(good, []byte("interface em0\nlisten on 192.168.1.1\nfirewall nftables\n"), 0o644)
	os.WriteFile(bad, []byte("interface em0\nlisten on 192.168.1.1\nport range 0-10\nlisen on x\n"), 0o644)
	var out, errOut bytes.Buffer
	if code := run([]string{"-n", "-f", good}, &out, &errOut); code != 0 || out.String() != "configuration OK\nfirewall: nftables (set by the firewall directive)\n" {
		t.Fatalf("-n on a good file: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-n", "-f", bad}, &out, &errOut); code != 1 {
		t.Fatalf("-n on a bad file: exit %d; want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], bad+":3: ") || !strings.HasPrefix(lines[1], bad+":4: ") {
		t.Fatalf("-n on a bad file printed %q; want one error for line 3 and one for line 4", errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"-n", "-f", filepath.Join(dir, "missing.conf")}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "missing.conf") {
		t.Fatalf("-n on a missing file: exit %d, %q; want 1 and the file named", code, errOut.String())
	}
}

// TestHelp: -h prints the whole manual and exits 0.
func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	for _, want := range []string{"Usage: portleased [-dnv]", "SIGHUP", "listen on", "allow|deny", "firewall auto|nftables|iptables|iptables-legacy|iptables-nft", "Exit status"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h output lacks %q", want)
		}
	}
	if code := run([]string{"-x"}, &out, &errOut); code != 1 {
		t.Errorf("unknown flag: exit %d; want 1", code)
	}
}
