package dist

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// verify runs systemd-analyze verify on the unit file path (with --user
// for a user unit) and returns its output and error.
func verify(t *testing.T, tool, path string, user bool) (string, error) {
	t.Helper()
	args := []string{"verify"}
	if user {
		args = append(args, "--user")
	}
	cmd := exec.Command(tool, append(args, path)...)
	// A user manager needs a runtime directory; the test's own.
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir(), "SYSTEMD_LOG_LEVEL=notice")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestUnitsVerify: systemd-analyze verify accepts the units make install
// lays out, portleased's, the keep template's and the keep user unit. The
// programs they run are the ones installed into DESTDIR: each unit is
// checked from a copy whose paths point into DESTDIR, since verify fails
// when ExecStart's program does not exist (checked too, so that a pass
// means verify read the unit).
func TestUnitsVerify(t *testing.T) {
	tool := need(t, "systemd-analyze")
	dest := t.TempDir()
	const prefix = "/usr/local"
	install(t, dest, prefix, t.TempDir(), filepath.Join(t.TempDir(), "calls"))
	for _, u := range []struct {
		path string
		user bool
	}{
		{"lib/systemd/system/portleased.service", false},
		{"lib/systemd/system/portlease-keep@.service", false},
		{"lib/systemd/user/portlease-keep.service", true},
	} {
		t.Run(filepath.Base(u.path), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dest, prefix, u.path))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			copy := filepath.Join(dir, filepath.Base(u.path))
			text := strings.ReplaceAll(string(b), "="+prefix+"/", "="+filepath.Join(dest, prefix)+"/")
			if err := os.WriteFile(copy, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := verify(t, tool, copy, u.user); err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("systemd-analyze verify %s: %v\n%s", u.path, err, out)
			}

			missing := filepath.Join(t.TempDir(), filepath.Base(u.path))
			text = strings.ReplaceAll(string(b), "="+prefix+"/", "=/nonexistent"+prefix+"/")
			if err := os.WriteFile(missing, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := verify(t, tool, missing, u.user); err == nil || !strings.Contains(out, "/nonexistent") {
				t.Errorf("systemd-analyze verify of %s with its program missing: %v, %q; want a failure naming it", u.path, err, out)
			}
		})
	}
}
