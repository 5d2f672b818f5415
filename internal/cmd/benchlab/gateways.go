package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

const (
	// startTimeout bounds the wait for a started gateway to serve.
	startTimeout = 20 * time.Second
	// stopTimeout bounds the wait after SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second
	// httpPort is the UPnP HTTP port of both gateways.
	httpPort = 5000
)

// gateway is a daemon under test, running in a lab's gateway namespace.
type gateway interface {
	// pid returns the daemon's process id in the machine's PID namespace.
	pid(ctx context.Context) (int, error)
	// upnpURL returns the root device description URL.
	upnpURL() string
	// kernelMappings counts the mappings the daemon holds in the kernel.
	kernelMappings(ctx context.Context) (int, error)
	// stop ends the daemon; stopping a stopped gateway does nothing.
	stop()
}

// descriptionURL is the root description both gateways serve.
func descriptionURL(lab *netlab.Lab) string {
	return "http://" + netip.AddrPortFrom(lab.GatewayLANAddr4, httpPort).String() + "/rootDesc.xml"
}

// portleased is portleased -d running on the lab's gateway, its log
// written to a file too.
type portleased struct {
	*labpeers.Portleased
	lab      *netlab.Lab
	logf     *os.File
	firewall string // the backend: the configuration's "firewall" line
}

// portleasedOptions are the settings of a portleased the gateways differ
// in.
type portleasedOptions struct {
	// firewall is the value of the configuration's "firewall" line:
	// nftables, iptables-nft or iptables-legacy.
	firewall string
	// profileSocket, when not empty, is passed as -profile-socket.
	profileSocket string
	// stateFile, when not empty, is the state file (otherwise "state
	// file none").
	stateFile string
}

// logBackend is the message portleased logs once at start with the
// firewall backend it uses (backend=...).
const logBackend = "firewall backend"

// startPortleased runs bin on lab's gateway, its configuration in dir,
// logging to logPath, and waits until it serves, on the firewall backend
// opts asks for. Stop waits up to removalBudget for the exit: the removal
// of a large table is measured with it.
func startPortleased(ctx context.Context, lab *netlab.Lab, bin, dir, logPath string, opts portleasedOptions) (*portleased, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cfg := labpeers.PortleasedConfig{
		Binary: bin,
		Dir:    dir,
		// The backend measured; every port, the longest lifetime the
		// load asks for, no fair shares and no request rate: the tables
		// are filled from one LAN host, thousands of requests a second.
		ExtraLines: []string{"firewall " + opts.firewall, "port range 1024-65535", "lifetime max 86400",
			"max mappings per host none", "max mappings none", "request rate per host none"},
		StateFile:   opts.stateFile,
		Log:         logf,
		StopTimeout: removalBudget,
	}
	if opts.profileSocket != "" {
		cfg.Args = []string{"-profile-socket", opts.profileSocket}
	}
	d, err := labpeers.NewPortleased(lab, cfg)
	if err == nil {
		err = d.Start(ctx)
	}
	if err == nil {
		if err = checkBackend(d.Log(), opts.firewall); err != nil {
			_ = d.Stop()
		}
	}
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("%w; log %s", err, logPath)
	}
	return &portleased{Portleased: d, lab: lab, logf: logf, firewall: opts.firewall}, nil
}

// checkBackend checks in log that portleased runs on the firewall backend
// it was configured with: its "firewall backend" line must name it. On
// nftables, a daemon that logs no such line (from before the iptables
// backend) passes: it has no other.
func checkBackend(log, firewall string) error {
	attrs, ok := logAttrs(log, logBackend)
	switch {
	case !ok && firewall == "nftables":
		return nil
	case !ok:
		return fmt.Errorf("portleased logged no %q line: it does not run on %s", logBackend, firewall)
	case attrs["backend"] != firewall:
		return fmt.Errorf("portleased runs on firewall backend %q, not %s", attrs["backend"], firewall)
	}
	return nil
}

func (p *portleased) pid(context.Context) (int, error) {
	if pid := p.PID(); pid != 0 {
		return pid, nil
	}
	return 0, errors.New("portleased is stopped")
}

func (p *portleased) upnpURL() string { return descriptionURL(p.lab) }

// kernelMappings counts the IPv4 mappings portleased holds in the kernel:
// on nftables the elements of its inbound4 map, on iptables the DNAT rules
// of its PORTLEASE-* chains (countDNATMappings).
func (p *portleased) kernelMappings(ctx context.Context) (int, error) {
	if p.firewall != "nftables" {
		save, err := iptablesSave(ctx, p.lab.Gateway, p.firewall, false, "nat")
		if err != nil {
			return 0, err
		}
		return countDNATMappings(save)
	}
	out, err := p.lab.Gateway.Command(ctx, "nft", "-j", "list", "map", "inet", "portleased", "inbound4").Output()
	if err != nil {
		return 0, fmt.Errorf("nft list map: %w", err)
	}
	elems, err := labpeers.MapElements(out)
	if err != nil {
		return 0, err
	}
	return len(elems), nil
}

// terminate sends SIGTERM and waits for the exit, up to removalBudget;
// it returns the time from the signal to the exit, and why the stop failed
// (no exit within the budget, or an exit status other than 0).
func (p *portleased) terminate() (time.Duration, error) {
	start := time.Now()
	err := p.Stop()
	return time.Since(start), err
}

// stop ends the daemon if it still runs, and closes the log file.
func (p *portleased) stop() {
	if err := p.Stop(); err != nil {
		say("portleased: %v", err)
	}
	p.logf.Close()
}

// miniupnpdChains makes table inet filter afresh in the gateway namespace
// (docs/peers.md): hooked chains that accept and jump to the three chains
// miniupnpd fills, so that the lab's own NAT keeps working.
const miniupnpdChains = `table inet filter
delete table inet filter
table inet filter {
	chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
	chain miniupnpd { }
	chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
	chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
	chain prerouting_miniupnpd { }
	chain postrouting_miniupnpd { }
}
`

// miniupnpdWrapper runs miniupnpd as a daemon in the gateway namespace, as
// labpeers does. It is the init of a PID namespace of its own, so that the
// daemon miniupnpd forks is its child, never the machine's, and dies with
// it. It mounts a private /dev first (`ip netns exec` gives it a mount
// namespace of its own): miniupnpd logs with openlog(LOG_CONS), and
// without a /dev/log glibc would write to the machine's console. /dev/log
// is linked to the syslog socket $1. The other arguments are miniupnpd's
// ("-P pidfile -f conf"). The shell passes SIGTERM and SIGINT to every
// process and waits until none is left.
const miniupnpdWrapper = `set -e
mount -n -t tmpfs -o mode=0755,size=64k benchlab-dev /dev
mknod -m 0666 /dev/null c 1 3
mknod -m 0666 /dev/zero c 1 5
mknod -m 0666 /dev/random c 1 8
mknod -m 0666 /dev/urandom c 1 9
ln -s "$1" /dev/log
shift
set +e
trap 'kill -TERM -1 2>/dev/null' TERM INT
` + labpeers.MiniUPnPdPath + ` "$@" || exit
while kill -0 -1 2>/dev/null; do sleep 0.1; done
`

// miniupnpd is miniupnpd 2.3.1 running as a daemon (no -d) on the lab's
// gateway.
type miniupnpd struct {
	lab    *netlab.Lab
	cmd    *exec.Cmd
	done   chan struct{} // closed when the wrapper has been waited for
	stun   net.PacketConn
	syslog *net.UnixConn
	logf   *os.File
	sock   string // the syslog socket's directory
}

// miniupnpdConf returns the configuration of docs/peers.md for lab, its
// files in dir.
func miniupnpdConf(lab *netlab.Lab, dir string) string {
	lines := []string{
		"ext_ifname=" + lab.GatewayWANLink,
		"listening_ip=" + lab.GatewayLANLink,
		"http_port=" + strconv.Itoa(httpPort),
		"enable_natpmp=yes",
		"enable_upnp=yes",
		"ipv6_disable=yes",
		"secure_mode=yes",
		"lease_file=" + filepath.Join(dir, "upnp.leases"),
		"minissdpdsocket=" + filepath.Join(dir, "minissdpd.sock"),
		"uuid=" + labpeers.MiniUPnPdUUID,
		"upnp_table_name=filter",
		"upnp_nat_table_name=filter",
		"upnp_forward_chain=miniupnpd",
		"upnp_nat_chain=prerouting_miniupnpd",
		"upnp_nat_postrouting_chain=postrouting_miniupnpd",
		"ext_perform_stun=yes",
		"ext_stun_host=" + lab.WAN.Addr4.String(),
		"ext_stun_port=" + strconv.Itoa(labpeers.STUNPort),
		"allow 1024-65535 " + netip.PrefixFrom(lab.GatewayLANAddr4, 24).Masked().String() + " 1024-65535",
		"deny 0-65535 0.0.0.0/0 0-65535",
	}
	return strings.Join(lines, "\n") + "\n"
}

// startMiniUPnPd makes miniupnpd's chains, serves STUN on the WAN host,
// starts miniupnpd in the gateway namespace, its syslog messages appended
// to logPath, and waits until it answers NAT-PMP with the WAN address and
// serves its UPnP description.
func startMiniUPnPd(ctx context.Context, lab *netlab.Lab, dir, logPath string) (_ *miniupnpd, err error) {
	if _, err := os.Stat(labpeers.MiniUPnPdPath); err != nil {
		return nil, fmt.Errorf("miniupnpd is not installed (package miniupnpd-nftables): %w", err)
	}
	m := &miniupnpd{lab: lab, done: make(chan struct{})}
	defer func() {
		if err != nil {
			m.stop()
		}
	}()
	conf := filepath.Join(dir, "miniupnpd.conf")
	if err := os.WriteFile(conf, []byte(miniupnpdConf(lab, dir)), 0o644); err != nil {
		return nil, err
	}
	if m.logf, err = os.Create(logPath); err != nil {
		return nil, err
	}
	// A short path: a socket's must fit in 108 bytes.
	if m.sock, err = os.MkdirTemp("", "benchlab-"); err != nil {
		return nil, err
	}
	sockPath := filepath.Join(m.sock, "log")
	if m.syslog, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"}); err != nil {
		return nil, err
	}
	go copySyslog(m.syslog, m.logf)
	if m.stun, err = lab.WAN.ListenPacket("udp4", ":"+strconv.Itoa(labpeers.STUNPort)); err != nil {
		return nil, fmt.Errorf("stun: %w", err)
	}
	go func() { _ = labpeers.ServeSTUN(m.stun) }()
	nft := lab.Gateway.Command(ctx, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(miniupnpdChains)
	if out, err := nft.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nft -f: %w: %s", err, bytes.TrimSpace(out))
	}
	m.cmd = lab.Gateway.Command(context.Background(), "sh", "-c", miniupnpdWrapper, "sh", sockPath,
		"-P", filepath.Join(dir, "miniupnpd.pid"), "-f", conf)
	m.cmd.Stdout = m.logf
	m.cmd.Stderr = m.logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		m.cmd = nil
		return nil, fmt.Errorf("start miniupnpd: %w", err)
	}
	go func() {
		_ = m.cmd.Wait()
		close(m.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		err := m.probe(ctx)
		if err == nil {
			return m, nil
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("miniupnpd exited before serving (%v); log %s", err, logPath)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("miniupnpd not serving after %v: %v; log %s", startTimeout, err, logPath)
		}
	}
}

// copySyslog appends each syslog datagram read from c to w as a line.
func copySyslog(c *net.UnixConn, w *os.File) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		msg := bytes.TrimRight(buf[:n], "\n\x00")
		_, _ = w.Write(append(msg, '\n'))
	}
}

// probe checks once that miniupnpd answers NAT-PMP with the WAN address
// and serves its description.
func (m *miniupnpd) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	addr, err := externalAddress(ctx, m.lab.LAN[0], m.lab.GatewayLANAddr4)
	if err != nil {
		return err
	}
	if addr != m.lab.GatewayWANAddr4 {
		return fmt.Errorf("NAT-PMP external address %v; want %v", addr, m.lab.GatewayWANAddr4)
	}
	return getDescription(ctx, m.lab.LAN[0], m.upnpURL())
}

// pid finds the forked daemon among the gateway namespace's processes.
func (m *miniupnpd) pid(ctx context.Context) (int, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", m.lab.Gateway.NS).Output()
	if err != nil {
		return 0, fmt.Errorf("ip netns pids: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == "miniupnpd" {
			return pid, nil
		}
	}
	return 0, errors.New("no miniupnpd process in the gateway namespace")
}

func (m *miniupnpd) upnpURL() string { return descriptionURL(m.lab) }

// kernelMappings counts the DNAT rules in miniupnpd's prerouting chain:
// one per mapping.
func (m *miniupnpd) kernelMappings(ctx context.Context) (int, error) {
	out, err := m.lab.Gateway.Command(ctx, "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd").Output()
	if err != nil {
		return 0, fmt.Errorf("nft list chain: %w", err)
	}
	return bytes.Count(out, []byte(" dnat ")), nil
}

func (m *miniupnpd) stop() {
	if m.cmd != nil {
		select {
		case <-m.done:
		default:
			_ = m.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-m.done:
			case <-time.After(stopTimeout):
				_ = m.cmd.Process.Kill()
				<-m.done
			}
		}
	}
	if m.stun != nil {
		m.stun.Close()
	}
	if m.syslog != nil {
		m.syslog.Close()
	}
	if m.sock != "" {
		os.RemoveAll(m.sock)
	}
	if m.logf != nil {
		m.logf.Close()
	}
}
