package labpeers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/natpmp"
)

const (
	// MiniUPnPdPath is the daemon of Debian's miniupnpd-nftables package.
	MiniUPnPdPath = "/usr/sbin/miniupnpd"
	// DefaultHTTPPort is miniupnpd's HTTP port when MiniUPnPdConfig.HTTPPort
	// is 0.
	DefaultHTTPPort = 5000
	// STUNPort is where StartMiniUPnPd serves STUN on the lab's WAN host.
	STUNPort = 3478
	// MiniUPnPdUUID is the uuid= of the configuration; the UPnP devices'
	// UDNs are derived from it (the last digit counts up for the WAN
	// devices).
	MiniUPnPdUUID = "3e4d2a7c-5c8b-4b7e-9f2e-0123456789ab"

	// The nftables objects miniupnpd works in, in the gateway namespace.
	nftTable         = "filter" // family inet
	nftForwardChain  = "miniupnpd"
	nftPreroutChain  = "prerouting_miniupnpd"
	nftPostroutChain = "postrouting_miniupnpd"

	// startTimeout bounds the wait for a started miniupnpd to serve. Without
	// an answer to STUN it gives up after 9 s and exits, which ends the wait
	// earlier.
	startTimeout = 20 * time.Second
	// stopTimeout bounds the wait after SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second
	// probeTimeout bounds one readiness probe.
	probeTimeout = 500 * time.Millisecond
	// probeInterval separates readiness probes.
	probeInterval = 50 * time.Millisecond
)

// nftChains makes table inet filter afresh (docs/peers.md): the hooked
// chains only jump to the three chains miniupnpd fills, and accept
// everything else, so that the lab's own NAT (table ip lab) keeps working.
// Adding then deleting the table first makes the script replace a table left
// by an earlier start, in one transaction.
const nftChains = `table inet filter
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

// nftFlush empties the chains miniupnpd fills, as a reboot would.
const nftFlush = `flush chain inet filter miniupnpd
flush chain inet filter prerouting_miniupnpd
flush chain inet filter postrouting_miniupnpd
`

// wrapper is the shell that runs miniupnpd in the gateway namespace. It is
// started in a PID namespace of its own, whose init it is, so that the
// daemon that miniupnpd forks (without -d) is its child and reaped by it,
// never an orphan of the machine's init, and so that SIGKILL to it ends
// everything it started.
//
// It first mounts a private /dev (ip netns exec gives it a mount namespace
// of its own, slave to the machine's): miniupnpd logs with
// openlog(LOG_CONS), and without a /dev/log to take the messages, glibc
// would write them on the machine's /dev/console. The private /dev has only
// null, zero, random and urandom, and /dev/log as a symbolic link to the
// socket given as $1 (none when $1 is empty, in debug mode, where the
// messages go to stderr instead).
//
// The arguments after the socket are miniupnpd's: "-d -P pidfile -f conf"
// or "-v -P pidfile -f conf". With -d, miniupnpd replaces the shell and is
// the namespace's init itself (its handlers let SIGTERM and SIGUSR1 in).
// Otherwise the shell starts it, then loops until no other process is left
// in the PID namespace (dash reaps every child, the daemon included, while
// it waits for each sleep); it passes SIGTERM and SIGINT to every process,
// and SIGUSR1 to the daemon named in the pid file.
const wrapper = `set -e
mount -n -t tmpfs -o mode=0755,size=64k labpeers-dev /dev
mknod -m 0666 /dev/null c 1 3
mknod -m 0666 /dev/zero c 1 5
mknod -m 0666 /dev/random c 1 8
mknod -m 0666 /dev/urandom c 1 9
if [ -n "$1" ]; then ln -s "$1" /dev/log; fi
shift
set +e
if [ "$1" = -d ]; then exec ` + MiniUPnPdPath + ` "$@"; fi
pidfile=$3
trap 'kill -TERM -1 2>/dev/null' TERM INT
trap 'kill -USR1 "$(cat "$pidfile")" 2>/dev/null' USR1
` + MiniUPnPdPath + ` "$@" || exit
while kill -0 -1 2>/dev/null; do sleep 0.1; done
`

// MiniUPnPdConfig describes a miniupnpd for StartMiniUPnPd. The zero value
// is the lab gateway of docs/peers.md: UPnP IGD on port 5000, NAT-PMP and
// PCP, running as a daemon.
type MiniUPnPdConfig struct {
	// NATPMP enables NAT-PMP and PCP (enable_natpmp). nil means yes;
	// new(false) turns them off.
	NATPMP *bool
	// UPnP enables UPnP IGD: SSDP and the HTTP/SOAP server (enable_upnp).
	// nil means yes; new(false) turns it off.
	UPnP *bool
	// HTTPPort is the port of the HTTP server on the gateway's LAN address;
	// 0 means DefaultHTTPPort.
	HTTPPort int
	// ExtraLines are appended to the configuration file, one directive a
	// line; being read last, they can add permission rules (after the
	// final deny, which matches first) or set options such as
	// clean_ruleset_interval.
	ExtraLines []string
	// Insecure turns secure_mode off, so that a LAN host may map ports to
	// another host's address. miniupnpd only ever sets the flag from the
	// file, so a "secure_mode=no" in ExtraLines would not clear it.
	Insecure bool
	// Debug runs miniupnpd -d: in the foreground, logging everything at
	// debug level on stderr, including every rule of its chains each time
	// it reads them, which is slow with many mappings. By default it runs
	// as a daemon with -v -P pidfile, logging at info level and above
	// through syslog to a socket that the test reads.
	Debug bool
}

// enabled reports whether a *bool option of MiniUPnPdConfig is on.
func enabled(b *bool) bool { return b == nil || *b }

// MiniUPnPd is miniupnpd 2.3.1 running as the lab's gateway. It is not safe
// for concurrent use.
type MiniUPnPd struct {
	lab       *netlab.Lab
	cfg       MiniUPnPdConfig
	confPath  string
	pidPath   string
	leaseFile string
	logPath   string
	logFile   *os.File // appended to by miniupnpd's stderr and by the syslog reader
	logSock   string   // the syslog socket; "" in debug mode
	proc      *process // nil when stopped
}

// process is one run of the wrapper.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// StartMiniUPnPd runs miniupnpd 2.3.1 on lab's gateway, configured as in
// docs/peers.md, and waits until it serves: until a LAN host gets its UPnP
// description (when UPnP is on) and an answer to a NAT-PMP external address
// request giving the gateway's WAN address (when NAT-PMP is on; STUN is done
// by then). On the way it makes table inet filter in the gateway namespace,
// and serves STUN on lab.WAN port STUNPort unless something already does
// (an earlier StartSTUN). The test fails, with miniupnpd's log, if it does
// not come up. miniupnpd is stopped when the test ends. One MiniUPnPd per
// lab: a second would find the ports taken.
//
// The test is skipped where the lab cannot be built (see
// netlab.RequireRoot) or miniupnpd is not installed, unless CI=true, in
// which case it fails.
func StartMiniUPnPd(t testing.TB, lab *netlab.Lab, cfg MiniUPnPdConfig) *MiniUPnPd {
	t.Helper()
	requireProgram(t, MiniUPnPdPath)
	if !enabled(cfg.NATPMP) && !enabled(cfg.UPnP) {
		t.Fatal("labpeers: miniupnpd with neither UPnP nor NAT-PMP")
	}
	if cfg.HTTPPort == 0 {
		cfg.HTTPPort = DefaultHTTPPort
	}
	if err := startSTUN(t, lab.WAN, STUNPort); err != nil && !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatal(err)
	}

	dir := t.TempDir()
	m := &MiniUPnPd{
		lab:       lab,
		cfg:       cfg,
		confPath:  filepath.Join(dir, "miniupnpd.conf"),
		pidPath:   filepath.Join(dir, "miniupnpd.pid"),
		leaseFile: filepath.Join(dir, "upnp.leases"),
		logPath:   filepath.Join(dir, "miniupnpd.log"),
	}
	if err := os.WriteFile(m.confPath, []byte(m.config(dir)), 0o644); err != nil {
		t.Fatalf("labpeers: %v", err)
	}
	f, err := os.OpenFile(m.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("labpeers: %v", err)
	}
	m.logFile = f
	t.Cleanup(func() { f.Close() })
	if !cfg.Debug {
		sock, err := startSyslog(t, f)
		if err != nil {
			t.Fatal(err)
		}
		m.logSock = sock
	}
	if err := m.nft(t, nftChains); err != nil {
		t.Fatal(err)
	}
	// Registered after the log's cleanups, so it runs before them and the
	// log gets miniupnpd's last words.
	t.Cleanup(m.Stop)
	if err := m.start(t); err != nil {
		t.Fatalf("%v\nminiupnpd log:\n%s", err, m.Log())
	}
	return m
}

// config returns the configuration file's text; dir holds the lease file
// and the minissdpd socket path (no minissdpd runs: miniupnpd does without).
func (m *MiniUPnPd) config(dir string) string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	lines := []string{
		"ext_ifname=" + m.lab.GatewayWANLink,
		"listening_ip=" + m.lab.GatewayLANLink,
		"http_port=" + strconv.Itoa(m.cfg.HTTPPort),
		"enable_natpmp=" + yes(enabled(m.cfg.NATPMP)),
		"enable_upnp=" + yes(enabled(m.cfg.UPnP)),
		"ipv6_disable=yes",
		"secure_mode=" + yes(!m.cfg.Insecure),
		"lease_file=" + m.leaseFile,
		"minissdpdsocket=" + filepath.Join(dir, "minissdpd.sock"),
		"uuid=" + MiniUPnPdUUID,
		"upnp_table_name=" + nftTable,
		"upnp_nat_table_name=" + nftTable,
		"upnp_forward_chain=" + nftForwardChain,
		"upnp_nat_chain=" + nftPreroutChain,
		"upnp_nat_postrouting_chain=" + nftPostroutChain,
		"ext_perform_stun=yes",
		"ext_stun_host=" + m.lab.WAN.Addr4.String(),
		"ext_stun_port=" + strconv.Itoa(STUNPort),
		"allow 1024-65535 " + netip.PrefixFrom(m.lab.GatewayLANAddr4, 24).Masked().String() + " 1024-65535",
		"deny 0-65535 0.0.0.0/0 0-65535",
	}
	lines = append(lines, m.cfg.ExtraLines...)
	return strings.Join(lines, "\n") + "\n"
}

// nft runs an nft script in the gateway namespace.
func (m *MiniUPnPd) nft(t testing.TB, script string) error {
	cmd := m.lab.Gateway.Command(t.Context(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("labpeers: nft -f in %s: %w: %s", m.lab.Gateway.NS, err, bytes.TrimSpace(out))
	}
	return nil
}

// start runs the wrapper and waits until miniupnpd serves.
func (m *MiniUPnPd) start(t testing.TB) error {
	// -P in both modes: even with -d, miniupnpd writes a pid file (by
	// default the machine's /var/run/miniupnpd.pid), and refuses to start
	// ("MiniUPnPd is already running. EXITING") when the process the file
	// names exists. Inside its PID namespace, the pid of another lab's
	// miniupnpd -d is 1, its own.
	args := []string{"-v", "-P", m.pidPath, "-f", m.confPath}
	if m.cfg.Debug {
		args[0] = "-d"
	}
	// Not t.Context(): it ends before the cleanups, and miniupnpd must get
	// its SIGTERM from Stop.
	cmd := m.lab.Gateway.Command(context.Background(), "sh",
		append([]string{"-c", wrapper, "sh", m.logSock}, args...)...)
	cmd.Stdout = m.logFile
	cmd.Stderr = m.logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID,
		// If the test binary dies, the PID namespace goes with it.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("labpeers: start miniupnpd: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		// The exit status tells nothing the log does not.
		_ = cmd.Wait()
		close(p.done)
	}()
	m.proc = p
	return m.waitServing(t, p)
}

// waitServing probes miniupnpd from the first LAN host until it answers,
// it exits, or startTimeout passes.
func (m *MiniUPnPd) waitServing(t testing.TB, p *process) error {
	err := poll(t.Context(), p.done, startTimeout, func() error { return m.probe(t.Context()) })
	if err != nil {
		return fmt.Errorf("labpeers: miniupnpd not serving: %w", err)
	}
	return nil
}

// probe checks once that miniupnpd serves what its configuration enables.
func (m *MiniUPnPd) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	lan := m.lab.LAN[0]
	if enabled(m.cfg.UPnP) {
		if err := getDescription(ctx, lan, m.DescriptionURL()); err != nil {
			return err
		}
	}
	if enabled(m.cfg.NATPMP) {
		addr, err := natpmpExternalAddress(ctx, lan, m.lab.GatewayLANAddr4)
		if err != nil {
			return err
		}
		if addr != m.lab.GatewayWANAddr4 {
			return fmt.Errorf("labpeers: NAT-PMP external address %v; want %v", addr, m.lab.GatewayWANAddr4)
		}
	}
	return nil
}

// getDescription fetches url from host and checks that it is a device
// description.
func getDescription(ctx context.Context, host *netlab.Host, url string) error {
	client := &http.Client{Transport: &http.Transport{DialContext: host.Dial, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("labpeers: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("labpeers: get description: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("labpeers: read description: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("urn:schemas-upnp-org:device:InternetGatewayDevice:")) {
		return fmt.Errorf("labpeers: get description: %s, %d bytes, no InternetGatewayDevice", resp.Status, len(body))
	}
	return nil
}

// natpmpExternalAddress asks gw for its external address (RFC 6886 §3.2)
// from host, once, until ctx ends.
func natpmpExternalAddress(ctx context.Context, host *netlab.Host, gw netip.Addr) (netip.Addr, error) {
	pc, err := host.ListenPacket("udp4", ":0")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("labpeers: %w", err)
	}
	defer pc.Close()
	if d, ok := ctx.Deadline(); ok {
		if err := pc.SetDeadline(d); err != nil {
			return netip.Addr{}, fmt.Errorf("labpeers: %w", err)
		}
	}
	req, err := natpmp.ExternalAddressRequest{}.MarshalBinary()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("labpeers: %w", err)
	}
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, natpmp.ServerPort))
	if _, err := pc.WriteTo(req, to); err != nil {
		return netip.Addr{}, fmt.Errorf("labpeers: NAT-PMP request: %w", err)
	}
	buf := make([]byte, 64)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("labpeers: NAT-PMP response: %w", err)
		}
		if ua, ok := from.(*net.UDPAddr); !ok || ua.AddrPort().Addr().Unmap() != gw {
			continue
		}
		var resp natpmp.ExternalAddressResponse
		if err := resp.UnmarshalBinary(buf[:n]); err != nil {
			return netip.Addr{}, fmt.Errorf("labpeers: NAT-PMP response %x: %w", buf[:n], err)
		}
		if err := resp.Err(); err != nil {
			return netip.Addr{}, fmt.Errorf("labpeers: NAT-PMP response: %w", err)
		}
		return resp.Address, nil
	}
}

// DescriptionURL returns the URL of miniupnpd's root device description,
// "http://198.51.100.1:5000/rootDesc.xml", for upnpc -u.
func (m *MiniUPnPd) DescriptionURL() string {
	return descriptionURL(m.lab, m.cfg.HTTPPort)
}

// descriptionURL returns the URL of the root device description that a
// gateway serves at port on the lab gateway's LAN address.
func descriptionURL(lab *netlab.Lab, port int) string {
	return "http://" + netip.AddrPortFrom(lab.GatewayLANAddr4, uint16(port)).String() + "/rootDesc.xml"
}

// Stop sends miniupnpd SIGTERM and waits until it has exited (SIGKILL after
// 10 s). Stopping a stopped MiniUPnPd does nothing. miniupnpd leaves its
// rules in its chains and its lease file when it exits.
func (m *MiniUPnPd) Stop() {
	p := m.proc
	if p == nil {
		return
	}
	m.proc = nil
	// An error means it has exited already.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Restart stops miniupnpd, loses what a rebooting router loses (it flushes
// the three chains miniupnpd fills and deletes its lease file), starts it
// again and waits until it serves, then calls Announce. Its NAT-PMP and PCP
// epochs start again from 0. Restart fails the test, with the log, if
// miniupnpd does not come back.
func (m *MiniUPnPd) Restart(t testing.TB) {
	t.Helper()
	m.Stop()
	if err := m.nft(t, nftFlush); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.leaseFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("labpeers: %v", err)
	}
	m.mark("--- labpeers: restart ---")
	if err := m.start(t); err != nil {
		t.Fatalf("%v\nminiupnpd log:\n%s", err, m.Log())
	}
	m.Announce(t)
}

// mark adds a line of ours to the log, after everything miniupnpd has
// logged so far: through the syslog socket, behind the messages still
// queued there, or, in debug mode, straight to the file its stderr
// writes to.
func (m *MiniUPnPd) mark(text string) {
	line := time.Now().Format(time.StampMilli) + " " + text
	if m.logSock != "" {
		addr := &net.UnixAddr{Name: m.logSock, Net: "unixgram"}
		if c, err := net.DialUnix("unixgram", nil, addr); err == nil {
			defer c.Close()
			if _, err := c.Write([]byte("<13>" + line)); err == nil { // user.notice
				return
			}
		}
	}
	fmt.Fprintln(m.logFile, line)
}

// Announce sends miniupnpd SIGUSR1, its signal for "the external address
// changed": it runs STUN again, then sends to 224.0.0.1:5350 on the LAN one
// NAT-PMP announcement (version 0, opcode 128, RFC 6886 §3.2.1) and one PCP
// ANNOUNCE (version 2, RFC 6887 §14.1.3), and restarts its PCP epoch. On
// its own, miniupnpd announces only with PCP, once, when it starts.
func (m *MiniUPnPd) Announce(t testing.TB) {
	t.Helper()
	if m.proc == nil {
		t.Fatal("labpeers: Announce: miniupnpd is stopped")
	}
	if err := m.proc.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("labpeers: Announce: %v", err)
	}
}

// Log returns what miniupnpd has logged so far, over all its starts: in
// debug mode its stderr; otherwise its syslog messages, each line starting
// with the severity ("info: Nov 22 01:09:36 miniupnpd[9]: ..."), and
// whatever it printed before it became a daemon. Each Restart adds a line
// "--- labpeers: restart ---" between the runs.
func (m *MiniUPnPd) Log() string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return fmt.Sprintf("labpeers: read miniupnpd log: %v", err)
	}
	return string(b)
}

// Mappings returns the output of `upnpc -i -u DescriptionURL -l` run on the
// first LAN host: the status, the external address and the table of port
// mappings, one per line as in
//
//	0 TCP  8080->198.51.100.10:8080  'libminiupnpc' '' 3600
func (m *MiniUPnPd) Mappings(t testing.TB) string {
	t.Helper()
	return UPnPC(t, m.lab.LAN[0], "-u", m.DescriptionURL(), "-l")
}
