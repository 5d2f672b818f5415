package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// portleaseEnv runs portlease on host like portlease(), with env
// (NAME=value) added to its environment.
func portleaseEnv(t *testing.T, host *netlab.Host, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := host.Command(ctx, filepath.Join(binDir, "portlease"), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("portlease %v: %v", args, err)
	}
	return string(out), 0
}

// TestKeepDefaultPIDFile: without --pid-file a detached keep locks
// keep.pid in the runtime directory ($XDG_RUNTIME_DIR/portlease, made
// with mode 0700), a second keep is refused naming that file, and it is
// removed on exit; a symbolic link planted there is refused with a clear
// error and its target is left alone.
func TestKeepDefaultPIDFile(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	file := writeFile(t, "ports.csv", "address;port;protocol;duration;comment\n;20030;TCP;600;web\n")
	logFile := filepath.Join(t.TempDir(), "keep.log")
	runtimeDir := t.TempDir()
	env := []string{"XDG_RUNTIME_DIR=" + runtimeDir}
	pidFile := filepath.Join(runtimeDir, "portlease", "keep.pid")

	out, code := portleaseEnv(t, lan, env, "keep", "-f", file, "--log-file", logFile)
	if code != 0 {
		t.Fatalf("keep (detaching, default PID file): exit %d:\n%s", code, out)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("no PID file in the runtime directory: %v", err)
	}
	var pid int
	if _, err := fmt.Sscanf(string(b), "%d", &pid); err != nil {
		t.Fatalf("PID file holds %q", b)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	if fi, err := os.Stat(filepath.Dir(pidFile)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the runtime directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	logText := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	eventually(t, "the detached keep logs the mapping", func() bool { return strings.Contains(logText(), "msg=mapped") })
	if out, code := portleaseEnv(t, lan, env, "keep", "--foreground", "-f", file); code != 1 || !strings.Contains(out, pidFile) {
		t.Errorf("a second keep on the default PID file: exit %d, %q; want 1 naming %s", code, out, pidFile)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "keep exits after SIGTERM", func() bool { return syscall.Kill(pid, 0) != nil })
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("PID file still there after exit: %v", err)
	}

	victim := writeFile(t, "precious", "precious data\n")
	if err := os.Symlink(victim, pidFile); err != nil {
		t.Fatal(err)
	}
	out, code = portleaseEnv(t, lan, env, "keep", "--foreground", "-f", file)
	if code != 1 || !strings.Contains(out, "symbolic link") || !strings.Contains(out, pidFile) || !strings.Contains(out, victim) {
		t.Errorf("keep with a symlink planted at the default PID file: exit %d, %q; want 1 naming the link and its target", code, out)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious data\n" {
		t.Errorf("the link's target now holds %q (%v); want it untouched", b, err)
	}
}
