//go:build unix

package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// CanDetach reports whether Detach can start the program in the background
// on this system.
const CanDetach = true

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

// report writes one line to the parent's pipe. It uses the descriptor
// directly: an *os.File for it would close it when collected.
func report(msg string, last bool) {
	_, _ = syscall.Write(readyFD, []byte(msg+"\n"))
	if last {
		_ = syscall.Close(readyFD)
	}
}
