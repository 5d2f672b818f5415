package labpeers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// PortleasedPackage is the import path of the gateway daemon.
const PortleasedPackage = "github.com/portlease/portlease/cmd/portleased"

// BuildProgram builds the main package pkg (an import path of this module)
// into dir with `go build` and returns the program's path.
func BuildProgram(ctx context.Context, pkg, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "build", "-o", dir, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("labpeers: go build %s: %w\n%s", pkg, err, out)
	}
	return filepath.Join(dir, path.Base(pkg)), nil
}

// PortleasedBinary returns portleased built from this tree, once per test
// process (see Program).
func PortleasedBinary(t testing.TB) string {
	t.Helper()
	return Program(t, PortleasedPackage)
}

// Program returns the main package pkg (an import path of this module)
// built from this tree, once per test process when the test binary runs
// under `go test`: the program is kept next to the test binary, in the
// work directory that go test removes when it ends, and a lock file there
// makes concurrent tests build it once. A test binary run otherwise builds
// the program for each test, into t.TempDir(). The test fails if the build
// does.
func Program(t testing.TB, pkg string) string {
	t.Helper()
	dir, err := programCache()
	if err != nil {
		t.Fatal(err)
	}
	if dir == "" {
		bin, err := BuildProgram(t.Context(), pkg, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return bin
	}
	bin, err := cachedProgram(t.Context(), dir, pkg)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// programCache returns the directory programs are kept in for this test
// process, "" when the test binary does not run in go test's work
// directory (named go-build*).
func programCache() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("labpeers: %w", err)
	}
	dir := filepath.Dir(exe)
	if !strings.Contains(dir, string(filepath.Separator)+"go-build") {
		return "", nil
	}
	return filepath.Join(dir, "labpeers-programs"), nil
}

// cachedProgram returns pkg's program in cache, building it first unless an
// earlier call did. The build goes to a temporary directory renamed into
// place, under an exclusive lock on cache/lock.
func cachedProgram(ctx context.Context, cache, pkg string) (string, error) {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("labpeers: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("labpeers: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("labpeers: lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	dir := filepath.Join(cache, strings.ReplaceAll(pkg, "/", "_"))
	bin := filepath.Join(dir, path.Base(pkg))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("labpeers: %w", err)
	}
	tmp, err := os.MkdirTemp(cache, "build-")
	if err != nil {
		return "", fmt.Errorf("labpeers: %w", err)
	}
	defer os.RemoveAll(tmp)
	if _, err := BuildProgram(ctx, pkg, tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("labpeers: %w", err)
	}
	return bin, nil
}
