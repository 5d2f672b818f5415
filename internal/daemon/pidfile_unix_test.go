//go:build unix

package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestPIDFileSymlinkRefused: a symbolic link planted at the PID file's
// path is refused with an error naming both ends, and neither its target
// (truncated and overwritten if it were followed) nor, for a dangling
// link, a new file at the target (O_CREAT through the link) is touched.
func TestPIDFileSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "precious")
	if err := os.WriteFile(victim, []byte("precious data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, target string }{
		{"to a file", victim},
		{"dangling", filepath.Join(dir, "created-through-link")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keep.pid")
			if err := os.Symlink(tc.target, path); err != nil {
				t.Fatal(err)
			}
			p, err := WritePIDFile(path)
			if !errors.Is(err, ErrSymlink) {
				p.Remove()
				t.Fatalf("WritePIDFile(symlink to %s) = %v; want ErrSymlink", tc.target, err)
			}
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, tc.target) {
				t.Errorf("error %q; want it to name the link %s and its target %s", msg, path, tc.target)
			}
			if tc.target == victim {
				if b, err := os.ReadFile(victim); err != nil || string(b) != "precious data\n" {
					t.Errorf("the link's target now holds %q (%v); want it untouched", b, err)
				}
			} else if _, err := os.Lstat(tc.target); !os.IsNotExist(err) {
				t.Errorf("the dangling link's target was created (%v)", err)
			}
		})
	}
}

// TestPIDFileNotRegular: a FIFO at the path is refused, not written to.
func TestPIDFileNotRegular(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keep.pid")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := WritePIDFile(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		p.Remove()
		t.Fatalf("WritePIDFile(FIFO) = %v; want a refusal naming it not a regular file", err)
	}
}
