package iptfw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// runner runs the iptables programs of a variant, in the Firewall's
// network namespace, serialised with other programs' legacy iptables runs
// through the xtables lock.
type runner struct {
	variant Variant
	netns   int
	// lock is the system's xtables lock (/run/xtables.lock), opened before
	// the daemon dropped root; nil: the programs take it themselves.
	lock *os.File
	// lockFile is the private lock file the programs take instead
	// (XTABLES_LOCKFILE); empty: theirs.
	lockFile string
}

// program returns the name of the variant's program: "restore" or "save"
// of iptables (or ip6tables when v6).
func (r *runner) program(v6 bool, what string) string {
	name := "iptables"
	if v6 {
		name = "ip6tables"
	}
	if r.variant != System {
		name += "-" + string(r.variant)
	}
	return name + "-" + what
}

// restore runs iptables-restore --noflush (ip6tables- when v6) with input.
func (r *runner) restore(ctx context.Context, v6 bool, input []byte) error {
	if r.lock != nil {
		if err := flockContext(ctx, r.lock); err != nil {
			return err
		}
		defer func() { _ = unix.Flock(int(r.lock.Fd()), unix.LOCK_UN) }()
	}
	_, err := r.run(ctx, r.program(v6, "restore"), input, "--noflush")
	return err
}

// save runs iptables-save (ip6tables- when v6) for the tables the backend
// writes, nat and filter (filter alone for IPv6), and returns their dumps
// one after the other. Each table is named with -t: without it
// iptables-legacy-save reads /proc/net/ip_tables_names, which only root
// may read, and the daemon runs it after its privilege drop. Both tables
// exist once New has installed its chains, so naming them creates
// nothing.
func (r *runner) save(ctx context.Context, v6 bool) (string, error) {
	tables := []string{"nat", "filter"}
	if v6 {
		tables = tables[1:]
	}
	var dump []byte
	for _, t := range tables {
		out, err := r.run(ctx, r.program(v6, "save"), nil, "-t", t)
		if err != nil {
			return "", err
		}
		dump = append(dump, out...)
	}
	return string(dump), nil
}

// run runs prog with args and input, in the namespace, and returns its
// output; a failure carries what it wrote to stderr.
func (r *runner) run(ctx context.Context, prog string, input []byte, args ...string) ([]byte, error) {
	path, err := exec.LookPath(prog)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, statErr := os.Stat(dir + "/" + prog); statErr == nil {
				path, err = dir+"/"+prog, nil
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("iptfw: %s: %w", prog, err)
		}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	if input != nil {
		cmd.Stdin = bytes.NewReader(input)
	}
	if r.lockFile != "" {
		cmd.Env = append(os.Environ(), "XTABLES_LOCKFILE="+r.lockFile)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := startIn(r.netns, cmd); err != nil {
		return nil, fmt.Errorf("iptfw: %s: %w", prog, err)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("iptfw: %s: %w: %s", prog, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// startIn starts cmd in network namespace netns (0: the caller's own).
// Go forks a child from the calling thread, so the child starts in that
// thread's namespace: the thread enters netns, starts the child and
// returns to its own namespace. A thread that cannot return is not given
// back to the scheduler (it ends with its goroutine). Entering a namespace
// needs CAP_SYS_ADMIN: the daemon, without it, runs in its own (0).
func startIn(netns int, cmd *exec.Cmd) error {
	if netns == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("own network namespace: %w", err)
			return
		}
		defer unix.Close(own)
		if err := unix.Setns(netns, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		startErr := cmd.Start()
		if err := unix.Setns(own, unix.CLONE_NEWNET); err != nil {
			// The thread stays locked, so it ends with this goroutine.
			if startErr == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			errc <- errors.Join(startErr, fmt.Errorf("return to own network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- startErr
	}()
	return <-errc
}

// flockContext takes an exclusive flock of f, waiting until ctx is done.
func flockContext(ctx context.Context, f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("iptfw: xtables lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("iptfw: xtables lock: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
