package netlab

import (
	"os"
	"os/exec"
	"testing"
)

// RequireRoot skips the test unless the lab can be built here: running as
// root, with the ip and nft commands and network namespace support. When the
// CI environment variable is "true" it fails the test instead, because lab
// tests must run in CI.
func RequireRoot(t testing.TB) {
	t.Helper()
	reason := ""
	switch {
	case os.Geteuid() != 0:
		reason = "not running as root"
	case !onPath("ip"):
		reason = "no ip command"
	case !onPath("nft"):
		reason = "no nft command"
	case !exists("/proc/self/ns/net"):
		reason = "no network namespace support"
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("netlab: %s; lab tests must run in CI", reason)
	}
	t.Skipf("netlab: %s", reason)
}

// New builds a lab for a test: it calls RequireRoot, removes the namespaces
// of crashed earlier runs, runs Setup and registers Close with t.Cleanup.
func New(t testing.TB, cfg Config) *Lab {
	t.Helper()
	RequireRoot(t)
	if err := RemoveStale(t.Context()); err != nil {
		t.Fatal(err)
	}
	l, err := Setup(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

func onPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
