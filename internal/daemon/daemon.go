// Package daemon detaches a program from its terminal the way a Go program
// can (it cannot fork): it starts itself again in a new session, and the
// parent waits until the child reports that it is serving, or why it could
// not, so that the parent's exit status tells the truth. It also keeps a
// locked PID file.
package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// readyFD is the descriptor of the pipe the child reports on (ExtraFiles[0]).
const readyFD = 3

// Detach starts the running program again in the background, in a session
// of its own, with env (NAME=value) added to its environment and its
// standard streams on /dev/null. It returns when the child has called Ready
// (nil) or Fail (the child's message), or has exited without either. What
// the child passes to Warn before that is written to warnings, a line each.
func Detach(env string, warnings io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("daemon: find own executable: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), env)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("daemon: start: %w", err)
	}
	w.Close()
	status := bufio.NewReader(r)
	var line string
	for {
		line, err = status.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("daemon: read child's status: %w", err)
		}
		line = strings.TrimSpace(line)
		msg, ok := strings.CutPrefix(line, warnPrefix)
		if !ok {
			break
		}
		fmt.Fprintln(warnings, msg)
	}
	switch {
	case line == "ok":
		_ = cmd.Process.Release()
		return nil
	case line != "":
		_ = cmd.Wait()
		return errors.New(line)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("daemon: exited before it was ready: %w", err)
	}
	return errors.New("daemon: exited before it was ready")
}

// IsChild reports whether this process was started by Detach with env
// (NAME=value) in its environment.
func IsChild(env string) bool {
	name, value, _ := strings.Cut(env, "=")
	return os.Getenv(name) == value
}

const warnPrefix = "warn: "

// report writes one line to the parent's pipe. It uses the descriptor
// directly: an *os.File for it would close it when collected.
func report(msg string, last bool) {
	_, _ = syscall.Write(readyFD, []byte(msg+"\n"))
	if last {
		_ = syscall.Close(readyFD)
	}
}

// Warn passes msg to the waiting parent, which prints it and goes on
// waiting. It is a no-op in a process that Detach did not start.
func Warn(env, msg string) {
	if IsChild(env) {
		report(warnPrefix+strings.ReplaceAll(msg, "\n", "; "), false)
	}
}

// Ready tells the waiting parent that the child is serving. It is a no-op
// in a process that Detach did not start.
func Ready(env string) {
	if IsChild(env) {
		report("ok", true)
	}
}

// Fail tells the waiting parent why the child stops.
func Fail(env string, err error) {
	if IsChild(env) {
		report(strings.ReplaceAll(err.Error(), "\n", "; "), true)
	}
}

// PIDFile is a PID file held with an exclusive lock for as long as the
// process runs: a second instance that tries to take it fails at once.
type PIDFile struct {
	f    *os.File
	path string
}

// ErrLocked means another running process holds the PID file.
var ErrLocked = errors.New("daemon: PID file locked by another process")

// WritePIDFile creates or opens path, locks it and writes the process ID.
// If another process holds it, the error wraps ErrLocked and names that
// process.
func WritePIDFile(path string) (*PIDFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("daemon: PID file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				return nil, fmt.Errorf("%w: %s (pid %d)", ErrLocked, path, pid)
			}
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("daemon: lock PID file %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("daemon: PID file %s: %w", path, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("daemon: PID file %s: %w", path, err)
	}
	return &PIDFile{f: f, path: path}, nil
}

// Remove deletes the PID file and releases its lock. A process that has
// given up root since it wrote the file in a directory only root may
// change (/run) cannot delete it: it empties the file through the
// descriptor it holds instead, so that no stale process ID is left, and
// the next start (as root) writes it again. It is safe to call on a nil
// *PIDFile and more than once.
func (p *PIDFile) Remove() error {
	if p == nil || p.f == nil {
		return nil
	}
	err := os.Remove(p.path)
	if errors.Is(err, fs.ErrPermission) {
		err = p.f.Truncate(0)
	}
	p.f.Close()
	p.f = nil
	return err
}
