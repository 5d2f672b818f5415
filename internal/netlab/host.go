package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// Host is one namespace of a lab.
type Host struct {
	// Name is the host's role: "gw", "lan0", "lan1", ..., "wan".
	Name string
	// NS is the network namespace name, as used by `ip netns exec NS ...`.
	NS string
	// Addr4 and Addr6 are the host's main addresses; for the gateway, the
	// WAN-side ones.
	Addr4 netip.Addr
	Addr6 netip.Addr
	// Link is the name of the host's main link inside its namespace.
	Link string
}

// Command returns a command that runs name with args inside the host's
// namespace, through `ip netns exec`.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Run runs name with args inside the host's namespace and returns its
// combined output. The error names the command and includes its output.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := h.Command(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), commandError(cmd, err, out)
	}
	return string(out), nil
}

// Do runs fn on an OS thread switched into the host's namespace, then
// switches the thread back. Sockets opened by fn keep the host's namespace
// after the switch back, so Do suits in-process code such as net.Dial or
// net.ListenPacket. Goroutines started by fn do not run in the namespace.
// If the thread cannot be switched back it is never returned to the
// scheduler: it ends with the goroutine Do runs fn on. A panic in fn is
// raised again in the caller's goroutine.
func (h *Host) Do(fn func() error) error {
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		// A goroutine of its own: if restoring the namespace fails, it
		// exits still locked and the runtime ends its thread.
		runtime.LockOSThread()
		res := result{}
		restored := func() bool {
			target, err := netns.GetFromName(h.NS)
			if err != nil {
				res.err = fmt.Errorf("netlab: open namespace %s: %w", h.NS, err)
				return true
			}
			defer target.Close()
			orig, err := netns.Get()
			if err != nil {
				res.err = fmt.Errorf("netlab: open current namespace: %w", err)
				return true
			}
			defer orig.Close()
			if err := netns.Set(target); err != nil {
				res.err = fmt.Errorf("netlab: enter namespace %s: %w", h.NS, err)
				return true
			}
			func() {
				defer func() { res.panic = recover() }()
				res.err = fn()
			}()
			if err := netns.Set(orig); err != nil {
				res.err = errors.Join(res.err, fmt.Errorf("netlab: leave namespace %s: %w", h.NS, err))
				return false
			}
			return true
		}()
		if restored {
			runtime.UnlockOSThread()
		}
		done <- res
	}()
	res := <-done
	if res.panic != nil {
		panic(res.panic)
	}
	return res.err
}

// ListenPacket is net.ListenPacket inside the host's namespace.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// Listen is net.Listen inside the host's namespace.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// Dial is net.Dialer.DialContext inside the host's namespace.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// sysctl sets kernel parameters inside the host's namespace; kv holds
// name, value pairs such as "net.ipv4.ip_forward", "1". Networking sysctls
// under /proc/sys/net follow the namespace of the thread that opens them.
func (h *Host) sysctl(kv ...string) error {
	if len(kv)%2 != 0 {
		return fmt.Errorf("netlab: sysctl: odd number of arguments")
	}
	return h.Do(func() error {
		for i := 0; i < len(kv); i += 2 {
			path := "/proc/sys/" + strings.ReplaceAll(kv[i], ".", "/")
			if err := os.WriteFile(path, []byte(kv[i+1]), 0); err != nil {
				return fmt.Errorf("netlab: sysctl %s=%s in %s: %w", kv[i], kv[i+1], h.NS, err)
			}
		}
		return nil
	})
}

// run runs name with args, feeding it stdin when not empty, and returns its
// standard output. The error names the command and includes its output.
func run(ctx context.Context, stdin, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), commandError(cmd, err, append(stdout.Bytes(), stderr.Bytes()...))
	}
	return stdout.String(), nil
}

// commandError describes the failure err of cmd, whose output was out.
func commandError(cmd *exec.Cmd, err error, out []byte) error {
	line := strings.Join(cmd.Args, " ")
	if out = bytes.TrimSpace(out); len(out) == 0 {
		return fmt.Errorf("netlab: %s: %w", line, err)
	}
	return fmt.Errorf("netlab: %s: %w: %s", line, err, out)
}
