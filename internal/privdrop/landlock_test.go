package privdrop

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteRightsFollowTheABI(t *testing.T) {
	const later = unix.LANDLOCK_ACCESS_FS_REFER | unix.LANDLOCK_ACCESS_FS_TRUNCATE
	if r := writeRights(1); r&later != 0 || r&unix.LANDLOCK_ACCESS_FS_WRITE_FILE == 0 {
		t.Errorf("writeRights(1) = %#x; want WRITE_FILE and neither REFER nor TRUNCATE", r)
	}
	if r := writeRights(3); r&later != later {
		t.Errorf("writeRights(3) = %#x; want REFER and TRUNCATE", r)
	}
	const reads = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_EXECUTE
	if r := writeRights(7); r&reads != 0 {
		t.Errorf("writeRights(7) = %#x handles reading", r)
	}
	if r := writeRights(0); r != 0 {
		t.Errorf("writeRights(0) = %#x; want none", r)
	}
}

// Environment of the child run by TestRestrictWritesEveryThread: the
// directory it works in, and the one it may write in ("" for none).
const (
	landlockBaseEnv  = "PRIVDROP_LANDLOCK_BASE"
	landlockAllowEnv = "PRIVDROP_LANDLOCK_ALLOW"
)

// TestRestrictWritesEveryThread drops a child process with threads of its
// own to nobody, restricts its writes to one directory (then to none), and
// has every thread try to change files beneath it and outside it, in
// directories whose modes let anyone write: what fails fails because of
// Landlock.
func TestRestrictWritesEveryThread(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		restrictChild()
		return
	}
	needRoot(t)
	abi, err := LandlockABI()
	if err != nil {
		t.Fatal(err)
	}
	if abi == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("privdrop: the kernel has no Landlock")
		}
		t.Skip("the kernel has no Landlock")
	}
	for _, allow := range []bool{true, false} {
		base := reachableTemp(t)
		for _, d := range []string{"allowed", "outside"} {
			if err := os.Mkdir(filepath.Join(base, d), 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(base, d), 0o777); err != nil {
				t.Fatal(err)
			}
		}
		// Anyone may remove it, as far as the modes go.
		if err := os.WriteFile(filepath.Join(base, "outside", "victim"), nil, 0o666); err != nil {
			t.Fatal(err)
		}
		// Root's, as the PID file: the child opens it before the drop.
		if err := os.WriteFile(filepath.Join(base, "pid"), []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestRestrictWritesEveryThread$")
		cmd.Env = append(os.Environ(), childEnv+"=1", landlockBaseEnv+"="+base, landlockAllowEnv+"=")
		if allow {
			cmd.Env[len(cmd.Env)-1] += filepath.Join(base, "allowed")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("child allowed to write beneath %q: %v\n%s", cmd.Env[len(cmd.Env)-1], err, out)
		}
	}
}

// restrictChild opens the PID file, starts locked threads, drops to
// nobody, restricts writes, and checks files from each thread.
func restrictChild() {
	fail := func(err error) {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	base, allow := os.Getenv(landlockBaseEnv), os.Getenv(landlockAllowEnv)
	pidPath := filepath.Join(base, "pid")
	pid, err := os.OpenFile(pidPath, os.O_RDWR, 0)
	if err != nil {
		fail(err)
	}
	start := make(chan struct{})
	results := make(chan error)
	const threads = 4
	for i := range threads {
		go func() {
			runtime.LockOSThread()
			<-start
			results <- checkWrites(base, allow, fmt.Sprint("t", i, "-", unix.Gettid()))
		}()
	}
	acct, err := Lookup("nobody")
	if err != nil {
		fail(err)
	}
	if err := Become(acct, Options{}); err != nil {
		fail(err)
	}
	abi, err := RestrictWrites(allow)
	if err != nil {
		fail(err)
	}
	if abi == 0 {
		fail(errors.New("RestrictWrites found no Landlock"))
	}
	close(start)
	var errs []error
	for range threads {
		errs = append(errs, <-results)
	}
	runtime.LockOSThread()
	errs = append(errs, checkWrites(base, allow, fmt.Sprint("main-", unix.Gettid())))
	if err := pid.Truncate(0); err != nil {
		errs = append(errs, fmt.Errorf("truncate the PID file through its descriptor: %w", err))
	}
	if _, err := os.ReadFile(pidPath); err != nil {
		errs = append(errs, fmt.Errorf("read outside: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		fail(err)
	}
	os.Exit(0)
}

// checkWrites checks, on the calling thread, that files named after name
// can be made, written, truncated, renamed and removed beneath allow and
// nowhere else in base.
func checkWrites(base, allow, name string) error {
	var errs []error
	denied := func(what string, err error) {
		if !errors.Is(err, syscall.EACCES) {
			errs = append(errs, fmt.Errorf("%s: %v; want EACCES", what, err))
		}
	}
	outside := filepath.Join(base, "outside", name)
	denied("create "+outside, os.WriteFile(outside, []byte("x"), 0o666))
	denied("mkdir "+outside+".dir", os.Mkdir(outside+".dir", 0o777))
	victim := filepath.Join(base, "outside", "victim")
	denied("remove "+victim, os.Remove(victim))
	inside := filepath.Join(base, "allowed", name)
	if allow == "" {
		denied("create "+inside, os.WriteFile(inside, []byte("x"), 0o666))
		return errors.Join(errs...)
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"create", func() error { return os.WriteFile(inside, []byte("x"), 0o666) }},
		{"truncate", func() error { return os.WriteFile(inside, []byte("y"), 0o666) }},
		{"rename", func() error { return os.Rename(inside, inside+".renamed") }},
		{"mkdir", func() error { return os.Mkdir(inside+".dir", 0o777) }},
		{"remove dir", func() error { return os.Remove(inside + ".dir") }},
		{"remove", func() error { return os.Remove(inside + ".renamed") }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			errs = append(errs, fmt.Errorf("%s beneath the allowed directory: %w", s.what, err))
		}
	}
	return errors.Join(errs...)
}
