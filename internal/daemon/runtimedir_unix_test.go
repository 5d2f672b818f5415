//go:build unix && !darwin

package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRuntimeDirCreated: RuntimeDir makes $XDG_RUNTIME_DIR/portlease with
// mode 0700 and the default PID file lies in it.
func TestRuntimeDirCreated(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	dir, err := RuntimeDir()
	if want := filepath.Join(xdg, "portlease"); err != nil || dir != want {
		t.Fatalf("RuntimeDir() = %q, %v; want %q", dir, err, want)
	}
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the runtime directory: %v, %v; want a directory of mode 0700", fi.Mode(), err)
	}
	path, err := DefaultPIDFile("keep.pid")
	if want := filepath.Join(xdg, "portlease", "keep.pid"); err != nil || path != want {
		t.Fatalf("DefaultPIDFile() = %q, %v; want %q", path, err, want)
	}
}

// TestRuntimeDirRefused: a symbolic link planted in place of the runtime
// directory, or a directory others may write to, is refused.
func TestRuntimeDirRefused(t *testing.T) {
	t.Run("symlink", func(t *testing.T) {
		xdg := t.TempDir()
		t.Setenv("XDG_RUNTIME_DIR", xdg)
		if err := os.Symlink(t.TempDir(), filepath.Join(xdg, "portlease")); err != nil {
			t.Fatal(err)
		}
		if dir, err := RuntimeDir(); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("RuntimeDir() with a symlink planted = %q, %v; want a refusal", dir, err)
		}
	})
	t.Run("world-writable", func(t *testing.T) {
		xdg := t.TempDir()
		t.Setenv("XDG_RUNTIME_DIR", xdg)
		dir := filepath.Join(xdg, "portlease")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if got, err := RuntimeDir(); err == nil || !strings.Contains(err.Error(), "others may write") {
			t.Fatalf("RuntimeDir() with a world-writable directory = %q, %v; want a refusal", got, err)
		}
	})
}
