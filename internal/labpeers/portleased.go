package labpeers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/internal/netlab"
)

const (
	// portleasedStopTimeout is the default wait after SIGTERM before
	// SIGKILL.
	portleasedStopTimeout = 15 * time.Second
	// portleasedServing is what portleased logs once its NAT-PMP and UPnP
	// servers are up (UPnP, when on, starts first).
	portleasedServing = "serving NAT-PMP"
	// restartMark separates the runs in Portleased.Log.
	restartMark = "--- labpeers: portleased started again ---"
)

// PortleasedConfig describes a portleased for NewPortleased and
// StartPortleased. The zero value is the lab's gateway: "interface wan0",
// "listen on lan0", the state file none, run with -d.
type PortleasedConfig struct {
	// Binary is the portleased program. StartPortleased builds
	// cmd/portleased when it is empty (see PortleasedBinary);
	// NewPortleased needs it.
	Binary string
	// Dir holds the configuration file, which portleased reads again on
	// SIGHUP as ServiceUser: StateDir makes one. StartPortleased uses
	// StateDir(t) when it is empty; NewPortleased needs it.
	Dir string
	// Directives are the configuration's lines; nil means the lab's
	// gateway: "interface <lab.GatewayWANLink>" and "listen on
	// <lab.GatewayLANLink>".
	Directives []string
	// ExtraLines are appended to Directives, such as "port range
	// 40000-40001".
	ExtraLines []string
	// StateFile is the absolute path of the file the leases are kept in
	// across restarts, in a directory ServiceUser can write, typically
	// filepath.Join(StateDir(t), "leases"); empty means "state file
	// none". The configuration always carries a "state file" line, after
	// the other lines, so that no two daemons share the default file;
	// Directives and ExtraLines must not have one.
	StateFile string
	// Verbose runs portleased -v: renewals, deletions and refused packets
	// are logged too.
	Verbose bool
	// Args are further command-line arguments, such as "-profile-socket",
	// path.
	Args []string
	// Log, if set, also receives everything portleased writes on its
	// standard output and error, as it writes it. It must not block for
	// long: portleased waits for it.
	Log io.Writer
	// Service, if set, starts portleased as a systemd unit with these
	// settings does, already unprivileged (see ServiceCredentials); nil
	// starts it as root, and it drops to ServiceUser itself.
	Service *ServiceCredentials
	// StopTimeout bounds the wait for the exit after SIGTERM in Stop,
	// before SIGKILL; 0 means 15 s.
	StopTimeout time.Duration
}

// ControlSocketName is the name of the control socket in
// PortleasedConfig.Dir.
const ControlSocketName = "control"

// isControlSocketLine reports whether l is a "control socket" directive.
func isControlSocketLine(l string) bool {
	f := strings.Fields(l)
	return len(f) >= 2 && f[0] == "control" && f[1] == "socket"
}

// Text returns the configuration file's text for lab: Directives (or the
// lab's gateway), ExtraLines, a "control socket" line unless they have
// one (ControlSocketName in Dir; none without a Dir) and the "state file"
// line, in that order, one a line. It fails if a line already sets the
// state file.
func (c PortleasedConfig) Text(lab *netlab.Lab) (string, error) {
	lines := c.Directives
	if lines == nil {
		lines = []string{"interface " + lab.GatewayWANLink, "listen on " + lab.GatewayLANLink}
	}
	lines = append(lines[:len(lines):len(lines)], c.ExtraLines...)
	for _, l := range lines {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "state" && f[1] == "file" {
			return "", fmt.Errorf("labpeers: portleased configuration line %q: set PortleasedConfig.StateFile instead", l)
		}
	}
	state := "none"
	if c.StateFile != "" {
		if !filepath.IsAbs(c.StateFile) {
			return "", fmt.Errorf("labpeers: portleased state file %q is not an absolute path", c.StateFile)
		}
		state = c.StateFile
	}
	if !slices.ContainsFunc(lines, isControlSocketLine) {
		// Each daemon its own socket: the lab's run side by side, and
		// none may take the machine's /run/portleased/control.
		control := "none"
		if c.Dir != "" {
			control = filepath.Join(c.Dir, ControlSocketName)
		}
		lines = append(lines, "control socket "+control)
	}
	lines = append(lines, "state file "+state)
	return strings.Join(lines, "\n") + "\n", nil
}

// Portleased is portleased -d running on a lab's gateway, started, stopped,
// killed and started again by the methods below, always with its
// configuration file and state file. Log and PID may be called at any time;
// the other methods are not safe for concurrent use.
type Portleased struct {
	lab      *netlab.Lab
	cfg      PortleasedConfig
	confPath string
	log      Output

	mu  sync.Mutex
	run *portleasedRun // nil when stopped
}

// portleasedRun is one run of the daemon. `ip netns exec` replaces itself
// with portleased, so cmd's process is the daemon.
type portleasedRun struct {
	proc     *process
	err      error // cmd.Wait's, set before proc.done is closed
	logStart int   // the offset in the log where this run begins
}

// NewPortleased writes the configuration file in cfg.Dir and returns a
// stopped Portleased; Start runs it.
func NewPortleased(lab *netlab.Lab, cfg PortleasedConfig) (*Portleased, error) {
	if cfg.Binary == "" || cfg.Dir == "" {
		return nil, errors.New("labpeers: portleased: Binary and Dir are required")
	}
	if len(lab.LAN) == 0 {
		return nil, errors.New("labpeers: portleased: the lab has no LAN host to probe it from")
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = portleasedStopTimeout
	}
	text, err := cfg.Text(lab)
	if err != nil {
		return nil, err
	}
	p := &Portleased{lab: lab, cfg: cfg, confPath: filepath.Join(cfg.Dir, "portleased.conf")}
	if err := os.WriteFile(p.confPath, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("labpeers: portleased configuration: %w", err)
	}
	return p, nil
}

// StartPortleased runs portleased on lab's gateway and waits until it
// serves (see Start). The test fails, with portleased's log, if it does
// not come up. When the test ends, portleased is stopped with Stop, and the
// test fails if it does not exit 0 or had exited by itself; the log is
// printed when the test failed or LABLOG is set.
func StartPortleased(t testing.TB, lab *netlab.Lab, cfg PortleasedConfig) *Portleased {
	t.Helper()
	if cfg.Binary == "" {
		cfg.Binary = PortleasedBinary(t)
	}
	if cfg.Dir == "" {
		cfg.Dir = StateDir(t)
	}
	p, err := NewPortleased(lab, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("%v", err)
		}
		if t.Failed() || os.Getenv("LABLOG") != "" {
			t.Logf("portleased log:\n%s", p.Log())
		}
	})
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return p
}

// Start runs portleased -d -f ConfigPath() in the gateway namespace and
// waits until it serves: until it has logged "serving NAT-PMP" and answers
// a NAT-PMP external address request (RFC 6886 §3.2) from the lab's first
// LAN host with success, so that its external address is known. ctx bounds
// the wait, as does a limit of 20 s; the daemon itself outlives ctx. If it
// does not come up, Start kills it and fails. Starting a running
// Portleased fails.
func (p *Portleased) Start(ctx context.Context) error {
	if p.current() != nil {
		return errors.New("labpeers: portleased is running already")
	}
	if p.log.Len() > 0 {
		p.log.WriteString(restartMark + "\n")
	}
	args := []string{"-d", "-f", p.confPath}
	if p.cfg.Verbose {
		args = append(args, "-v")
	}
	args = append(args, p.cfg.Args...)
	// Not ctx: the daemon lives until Stop or Kill.
	cmd, err := p.command(args)
	if err != nil {
		return err
	}
	var out io.Writer = &p.log
	if p.cfg.Log != nil {
		out = io.MultiWriter(&p.log, p.cfg.Log)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// If the test binary or the program dies, the daemon goes with it
	// (strictly: when the OS thread that starts it ends, so Start must
	// not run inside netlab's Host.Do).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r := &portleasedRun{logStart: p.log.Len()}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("labpeers: start portleased: %w", err)
	}
	r.proc = &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.proc.done)
	}()
	p.mu.Lock()
	p.run = r
	p.mu.Unlock()
	err = p.waitServing(ctx, r)
	if err == nil {
		err = p.checkDropped(cmd.Process.Pid, p.log.Since(r.logStart))
	}
	if err == nil {
		err = checkRestricted(p.log.Since(r.logStart))
	}
	if err != nil {
		p.take()
		_ = cmd.Process.Kill()
		<-r.proc.done
		return err
	}
	return nil
}

// command returns the command that runs portleased with args in the
// gateway namespace: as root, or through setpriv as Service says. `ip
// netns exec` and setpriv replace themselves with the next program, so the
// command's process is the daemon.
func (p *Portleased) command(args []string) (*exec.Cmd, error) {
	if p.cfg.Service == nil {
		return p.lab.Gateway.Command(context.Background(), p.cfg.Binary, args...), nil
	}
	wrap, err := p.cfg.Service.setprivArgs()
	if err != nil {
		return nil, err
	}
	// The built program lies under go test's root-only work directory.
	bin := filepath.Join(p.cfg.Dir, "portleased")
	if _, err := os.Stat(bin); err != nil {
		b, err := os.ReadFile(p.cfg.Binary)
		if err != nil {
			return nil, fmt.Errorf("labpeers: portleased binary: %w", err)
		}
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			return nil, fmt.Errorf("labpeers: portleased binary: %w", err)
		}
	}
	return p.lab.Gateway.Command(context.Background(), "setpriv", append(append(wrap, bin), args...)...), nil
}

// waitServing waits until run r serves, exits, or ctx or startTimeout ends.
func (p *Portleased) waitServing(ctx context.Context, r *portleasedRun) error {
	err := poll(ctx, r.proc.done, startTimeout, func() error {
		if !strings.Contains(p.log.Since(r.logStart), portleasedServing) {
			return errors.New("not logged " + portleasedServing)
		}
		return p.probe(ctx)
	})
	if err != nil {
		return fmt.Errorf("labpeers: portleased not serving: %w%s", err, exitStatus(r))
	}
	return nil
}

// exitStatus returns ", exit: <status>" once run r has ended, "" before.
func exitStatus(r *portleasedRun) string {
	select {
	case <-r.proc.done:
		return fmt.Sprintf(", exit: %v", r.err)
	default:
		return ""
	}
}

// probe asks portleased for its external address once, from the first LAN
// host.
func (p *Portleased) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	addr, err := natpmpExternalAddress(ctx, p.lab.LAN[0], p.lab.GatewayLANAddr4)
	if err == nil && !addr.IsValid() {
		err = errors.New("labpeers: NAT-PMP external address not valid")
	}
	return err
}

// take marks the daemon stopped and returns the run it was in, nil if none.
func (p *Portleased) take() *portleasedRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.run
	p.run = nil
	return r
}

// exitedBySelf returns an error if run r has ended without being asked to.
func exitedBySelf(r *portleasedRun) error {
	if status := exitStatus(r); status != "" {
		return fmt.Errorf("labpeers: portleased had exited by itself%s", status)
	}
	return nil
}

// Stop sends portleased SIGTERM, on which it removes its nftables table
// and exits 0, and waits for the exit. It fails if portleased had exited by
// itself before, if it does not exit within StopTimeout (it is then
// killed), or if its exit status is not 0. Stopping a stopped Portleased
// does nothing.
func (p *Portleased) Stop() error {
	r := p.take()
	if r == nil {
		return nil
	}
	if err := exitedBySelf(r); err != nil {
		return err
	}
	_ = r.proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.proc.done:
	case <-time.After(p.cfg.StopTimeout):
		_ = r.proc.cmd.Process.Kill()
		<-r.proc.done
		return fmt.Errorf("labpeers: portleased still running %v after SIGTERM; killed", p.cfg.StopTimeout)
	}
	if r.err != nil {
		return fmt.Errorf("labpeers: portleased after SIGTERM: %w", r.err)
	}
	return nil
}

// Kill sends portleased SIGKILL, as a crash would, and waits until it is
// gone: its table stays in the kernel. It fails if portleased is not
// running or had exited by itself.
func (p *Portleased) Kill() error {
	r := p.take()
	if r == nil {
		return errors.New("labpeers: Kill: portleased is stopped")
	}
	if err := exitedBySelf(r); err != nil {
		return err
	}
	_ = r.proc.cmd.Process.Kill()
	<-r.proc.done
	return nil
}

// Restart stops portleased if it runs (see Stop), then starts it again
// with the same configuration file and state file (see Start).
func (p *Portleased) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.Start(ctx)
}

// Signal sends sig to portleased, such as SIGHUP to make it read its
// configuration file again (but see Reload).
func (p *Portleased) Signal(sig os.Signal) error {
	r := p.current()
	if r == nil {
		return fmt.Errorf("labpeers: signal %v: portleased is stopped", sig)
	}
	if err := r.proc.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("labpeers: signal %v to portleased: %w", sig, err)
	}
	return nil
}

// SetConfig writes the configuration file again, with directives instead of
// the configuration's Directives and ExtraLines; the "state file" line
// stays last. portleased reads it on SIGHUP or at its next start.
func (p *Portleased) SetConfig(directives ...string) error {
	cfg := p.cfg
	cfg.Directives, cfg.ExtraLines = directives, nil
	if cfg.Directives == nil {
		cfg.Directives = []string{}
	}
	text, err := cfg.Text(p.lab)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.confPath, []byte(text), 0o644); err != nil {
		return fmt.Errorf("labpeers: portleased configuration: %w", err)
	}
	return nil
}

// Reload writes directives as the configuration file (see SetConfig),
// sends SIGHUP and waits until portleased has read the file: it returns nil
// when portleased logs "configuration reloaded", and an error carrying what
// it logged since the signal (the refused lines, by number) when it logs
// "configuration refused".
func (p *Portleased) Reload(ctx context.Context, directives ...string) error {
	if err := p.SetConfig(directives...); err != nil {
		return err
	}
	r := p.current()
	if r == nil {
		return errors.New("labpeers: Reload: portleased is stopped")
	}
	off := p.log.Len()
	if err := p.Signal(syscall.SIGHUP); err != nil {
		return err
	}
	var refused bool
	err := poll(ctx, r.proc.done, startTimeout, func() error {
		log := p.log.Since(off)
		refused = strings.Contains(log, "configuration refused")
		if refused || strings.Contains(log, "configuration reloaded") {
			return nil
		}
		return errors.New("neither reloaded nor refused")
	})
	switch {
	case err != nil:
		return fmt.Errorf("labpeers: portleased after SIGHUP: %w%s", err, exitStatus(r))
	case refused:
		return fmt.Errorf("labpeers: portleased refused the configuration:\n%s", p.log.Since(off))
	}
	return nil
}

// WaitLog waits until portleased has logged a line containing s since it
// was last started. It fails when portleased exits first, when ctx ends, or
// after 20 s.
func (p *Portleased) WaitLog(ctx context.Context, s string) error {
	r := p.current()
	if r == nil {
		return fmt.Errorf("labpeers: wait for %q: portleased is stopped", s)
	}
	err := poll(ctx, r.proc.done, startTimeout, func() error {
		if !strings.Contains(p.log.Since(r.logStart), s) {
			return fmt.Errorf("not logged %q", s)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("labpeers: portleased: %w%s", err, exitStatus(r))
	}
	return nil
}

// current returns the run portleased is in, nil when it is stopped.
func (p *Portleased) current() *portleasedRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run
}

// PID returns portleased's process id in the machine's PID namespace, 0
// when it is stopped.
func (p *Portleased) PID() int {
	r := p.current()
	if r == nil {
		return 0
	}
	return r.proc.cmd.Process.Pid
}

// Log returns everything portleased has written on its standard output and
// error, over all its runs; a line "--- labpeers: portleased started again
// ---" separates them.
func (p *Portleased) Log() string { return p.log.String() }

// ControlSocket returns the path of the daemon's control socket, as its
// configuration names it ("" for none).
func (p *Portleased) ControlSocket() string {
	cfg, err := config.ParseFile(p.confPath)
	if err != nil {
		return ""
	}
	return cfg.Observe.ControlSocket
}

// ConfigPath returns the configuration file's path.
func (p *Portleased) ConfigPath() string { return p.confPath }

// StateFile returns the state file's path, "" for none.
func (p *Portleased) StateFile() string { return p.cfg.StateFile }

// DescriptionURL returns the URL of portleased's UPnP root device
// description at its default HTTP port, as DescriptionURL of MiniUPnPd.
func (p *Portleased) DescriptionURL() string {
	return descriptionURL(p.lab, DefaultHTTPPort)
}
