package labpeers

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/netlab"
)

// Firewall runs a firewall program (nft, iptables-legacy-save,
// iptables-nft-restore, ...) with args in host's namespace, with input on
// its standard input when it is not empty, and returns what it prints on
// its standard output. The test fails, with the program's standard error,
// when the program fails or runs longer than 30 s: a reading of the kernel
// that could not be made is never an empty one, a change that could not be
// made is never silently missing.
func Firewall(t testing.TB, host *netlab.Host, input, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := host.Command(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if input != "" {
		cmd.Stdin = strings.NewReader(input)
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("labpeers: %s %s in %s: %v: %s", name, strings.Join(args, " "), host.NS, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String()
}

// RequirePrograms skips the test unless every one of names (programs
// looked up in PATH, or paths) is installed; with CI=true it fails it
// instead, as netlab.RequireRoot does.
func RequirePrograms(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		requireProgram(t, name)
	}
}
