package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// upnpDaemonExample is the example file of upnp-daemon's README, with the
// address of its first line (lost in our copy) set to the lab's LAN host.
const upnpDaemonExample = "address;port;protocol;duration;comment\n198.51.100.10;12345;UDP;60;Test 1\n;12346;TCP;60;Test 2\n"

// writeFile writes content to a new file in a test directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// portlease runs the client on host and returns its combined output and
// exit status.
func portlease(t *testing.T, host *netlab.Host, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := host.Command(ctx, filepath.Join(binDir, "portlease"), args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("portlease %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// background runs a long-lived command on host, with its output kept.
type background struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func (b *background) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

func (b *background) Output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

func startBackground(t *testing.T, host *netlab.Host, name string, args ...string) *background {
	t.Helper()
	b := &background{done: make(chan struct{})}
	b.cmd = host.Command(context.Background(), name, args...)
	b.cmd.Stdout, b.cmd.Stderr = b, b
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		b.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), b.Output())
		}
	})
	return b
}

// stop sends sig and waits for the exit; it returns the exit status.
func (b *background) stop(sig syscall.Signal) int {
	select {
	case <-b.done:
	default:
		_ = b.cmd.Process.Signal(sig)
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	}
	return b.cmd.ProcessState.ExitCode()
}

// upnpList returns the gateway's table as upnpc -l prints it.
func upnpList(t *testing.T, host *netlab.Host, m *labpeers.MiniUPnPd) string {
	t.Helper()
	return labpeers.UPnPC(t, host, "-u", m.DescriptionURL(), "-l")
}

// listed reports whether upnpc -l output holds a mapping of eport/proto to
// the internal endpoint.
func listed(out string, proto string, eport int, internal string) bool {
	re := regexp.MustCompile(fmt.Sprintf(`(?m)^\s*\d+\s+%s\s+%d->%s\b`, proto, eport, regexp.QuoteMeta(internal)))
	return re.MatchString(out)
}

// TestKeepAgainstMiniUPnPd: upnp-daemon's own example file, through
// portlease keep, against miniupnpd, over UPnP and over NAT-PMP.
func TestKeepAgainstMiniUPnPd(t *testing.T) {
	for _, proto := range []string{"upnp", "natpmp"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{})
			m := labpeers.StartMiniUPnPd(t, lab, labpeers.MiniUPnPdConfig{})
			lan := lab.LAN[0]
			file := writeFile(t, "ports.csv", upnpDaemonExample)
			pid := filepath.Join(t.TempDir(), "keep.pid")

			out, code := portlease(t, lan, "keep", "--foreground", "--oneshot", "-f", file, "--protocol", proto, "--pid-file", pid)
			if code != 0 {
				t.Fatalf("keep --oneshot exit %d:\n%s", code, out)
			}
			table := upnpList(t, lan, m)
			if !listed(table, "UDP", 12345, "198.51.100.10:12345") || !listed(table, "TCP", 12346, "198.51.100.10:12346") {
				t.Fatalf("upnpc -l lacks the file's mappings:\n%s\nportlease said:\n%s", table, out)
			}
			serveTCP(t, lan, 12346, "reached through miniupnpd")
			if got, err := fetchTCP(lab.WAN, "203.0.113.1:12346"); err != nil || got != "reached through miniupnpd" {
				t.Fatalf("the WAN host through 203.0.113.1:12346 got %q, %v", got, err)
			}

			out, code = portlease(t, lan, "keep", "--foreground", "--only-close-ports", "-f", file, "--protocol", proto)
			if code != 0 {
				t.Fatalf("keep --only-close-ports exit %d:\n%s", code, out)
			}
			if table := upnpList(t, lan, m); listed(table, "UDP", 12345, "198.51.100.10:12345") || listed(table, "TCP", 12346, "198.51.100.10:12346") {
				t.Fatalf("after --only-close-ports upnpc -l still lists them:\n%s", table)
			}

			keep := startBackground(t, lan, filepath.Join(binDir, "portlease"), "keep", "--foreground", "--close-ports-on-exit",
				"-f", file, "--protocol", proto, "--pid-file", pid, "--interval", "5")
			eventually(t, "keep maps the file", func() bool {
				table := upnpList(t, lan, m)
				return listed(table, "UDP", 12345, "198.51.100.10:12345") && listed(table, "TCP", 12346, "198.51.100.10:12346")
			})
			if code := keep.stop(syscall.SIGTERM); code != 0 {
				t.Fatalf("keep exit %d after SIGTERM:\n%s", code, keep.Output())
			}
			if table := upnpList(t, lan, m); listed(table, "UDP", 12345, "198.51.100.10:12345") || listed(table, "TCP", 12346, "198.51.100.10:12346") {
				t.Fatalf("after --close-ports-on-exit upnpc -l still lists them:\n%s", table)
			}
		})
	}
}

// inboundElements returns portleased's inbound map as nft prints it; the
// test fails when nft does (when the map is missing, too).
func inboundElements(t *testing.T, lab *netlab.Lab) string {
	t.Helper()
	return labpeers.NFT(t, lab.Gateway, "list", "map", "inet", "portleased", "inbound4")
}

func inKernel(out, proto string, eport int, internal string) bool {
	host, port, _ := strings.Cut(internal, ":")
	re := regexp.MustCompile(fmt.Sprintf(`%s \. %d [^,}]*: %s \. %s\b`, strings.ToLower(proto), eport, regexp.QuoteMeta(host), port))
	return re.MatchString(out)
}

// TestKeepAgainstPortleased: the same file against our own gateway over
// NAT-PMP, and the mappings come back by themselves when the gateway
// restarts, without waiting for the next pass.
func TestKeepAgainstPortleased(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	file := writeFile(t, "ports.csv", upnpDaemonExample)
	pid := filepath.Join(t.TempDir(), "keep.pid")

	out, code := portlease(t, lan, "keep", "--foreground", "--oneshot", "-f", file, "--protocol", "natpmp")
	if code != 0 {
		t.Fatalf("keep --oneshot exit %d:\n%s", code, out)
	}
	if k := inboundElements(t, lab); !inKernel(k, "UDP", 12345, "198.51.100.10:12345") || !inKernel(k, "TCP", 12346, "198.51.100.10:12346") {
		t.Fatalf("the kernel lacks the file's mappings:\n%s\nportlease said:\n%s", k, out)
	}
	serveTCP(t, lan, 12346, "reached through portleased")
	if got, err := fetchTCP(lab.WAN, "203.0.113.1:12346"); err != nil || got != "reached through portleased" {
		t.Fatalf("the WAN host through 203.0.113.1:12346 got %q, %v", got, err)
	}
	out, code = portlease(t, lan, "keep", "--foreground", "--only-close-ports", "-f", file, "--protocol", "natpmp")
	if code != 0 {
		t.Fatalf("keep --only-close-ports exit %d:\n%s", code, out)
	}
	if k := inboundElements(t, lab); strings.Contains(k, "12345") || strings.Contains(k, "12346") {
		t.Fatalf("after --only-close-ports the kernel still holds them:\n%s", k)
	}

	// A long interval: only the gateway's announcement can bring the
	// mappings back after its restart.
	keep := startBackground(t, lan, filepath.Join(binDir, "portlease"), "keep", "--foreground", "--close-ports-on-exit",
		"-f", file, "--protocol", "natpmp", "--pid-file", pid, "--interval", "3600")
	eventually(t, "keep maps the file", func() bool {
		k := inboundElements(t, lab)
		return inKernel(k, "UDP", 12345, "198.51.100.10:12345") && inKernel(k, "TCP", 12346, "198.51.100.10:12346")
	})
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if labpeers.NFTHasTable(t, lab.Gateway, "inet", "portleased") {
		t.Fatalf("portleased's table survived its exit:\n%s", nftRuleset(t, lab))
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "keep maps the file again after the gateway restarted", func() bool {
		k := inboundElements(t, lab)
		return inKernel(k, "UDP", 12345, "198.51.100.10:12345") && inKernel(k, "TCP", 12346, "198.51.100.10:12346")
	})
	if code := keep.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("keep exit %d after SIGTERM:\n%s", code, keep.Output())
	}
	if k := inboundElements(t, lab); strings.Contains(k, "12345") || strings.Contains(k, "12346") {
		t.Fatalf("after --close-ports-on-exit the kernel still holds them:\n%s", k)
	}
}

// TestKeepUPnPGatewayRestart: over UPnP, the mappings are back within one
// interval after miniupnpd restarts and loses its table.
func TestKeepUPnPGatewayRestart(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	m := labpeers.StartMiniUPnPd(t, lab, labpeers.MiniUPnPdConfig{NATPMP: new(false)})
	lan := lab.LAN[0]
	file := writeFile(t, "ports.csv", upnpDaemonExample)
	keep := startBackground(t, lan, filepath.Join(binDir, "portlease"), "keep", "--foreground",
		"-f", file, "--protocol", "upnp", "--pid-file", filepath.Join(t.TempDir(), "keep.pid"), "--interval", "2")
	both := func() bool {
		table := upnpList(t, lan, m)
		return listed(table, "UDP", 12345, "198.51.100.10:12345") && listed(table, "TCP", 12346, "198.51.100.10:12346")
	}
	eventually(t, "keep maps the file", both)
	m.Restart(t)
	eventually(t, "keep maps the file again after miniupnpd restarted", both)
	keep.stop(syscall.SIGTERM)
}

// TestKeepBadInput: bad lines are reported with their numbers while the
// good ones are mapped; a missing file and a missing header are clear
// errors; a second keep on the same PID file is refused; a running keep
// whose file disappears keeps the last good set.
func TestKeepBadInput(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	bad := writeFile(t, "bad.csv", "address;port;protocol;duration;comment\n"+
		";20001;TCP;600;good\n"+
		"\n"+
		";70000;TCP;600;bad port\n"+
		";20002;SCTP;600;bad protocol\n"+
		"\n"+
		";20003;UDP;600;good too\n")
	out, code := portlease(t, lan, "keep", "--foreground", "--oneshot", "-f", bad)
	if code != 2 {
		t.Fatalf("keep --oneshot on a file with bad lines: exit %d; want 2:\n%s", code, out)
	}
	for _, want := range []string{"bad.csv:4: port", "70000", "bad.csv:5: protocol", "SCTP"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if k := inboundElements(t, lab); !inKernel(k, "TCP", 20001, "198.51.100.10:20001") || !inKernel(k, "UDP", 20003, "198.51.100.10:20003") {
		t.Fatalf("the good lines were not mapped:\n%s\n%s", k, out)
	}

	noHeader := writeFile(t, "noheader.csv", ";20004;TCP;600;x\n")
	if out, code := portlease(t, lan, "keep", "--foreground", "--oneshot", "-f", noHeader); code != 1 || !strings.Contains(out, "header") {
		t.Errorf("a file without a header: exit %d, %q; want 1 and a word about the header", code, out)
	}
	missing := filepath.Join(t.TempDir(), "missing.csv")
	if out, code := portlease(t, lan, "keep", "--foreground", "--oneshot", "-f", missing); code != 1 || !strings.Contains(out, "missing.csv") {
		t.Errorf("a missing file: exit %d, %q; want 1 naming the file", code, out)
	}

	good := writeFile(t, "ports.csv", "address;port;protocol;duration;comment\n;20010;TCP;600;web\n")
	pid := filepath.Join(t.TempDir(), "keep.pid")
	keep := startBackground(t, lan, filepath.Join(binDir, "portlease"), "keep", "--foreground", "-f", good, "--pid-file", pid, "--interval", "1")
	eventually(t, "keep maps the file", func() bool { return inKernel(inboundElements(t, lab), "TCP", 20010, "198.51.100.10:20010") })
	if out, code := portlease(t, lan, "keep", "--foreground", "-f", good, "--pid-file", pid); code != 1 || !strings.Contains(out, pid) {
		t.Errorf("a second keep on the same PID file: exit %d, %q; want 1 naming %s", code, out, pid)
	}
	if err := os.Remove(good); err != nil {
		t.Fatal(err)
	}
	eventually(t, "keep reports the unreadable file", func() bool { return strings.Contains(keep.Output(), "keeping the last good set") })
	if !inKernel(inboundElements(t, lab), "TCP", 20010, "198.51.100.10:20010") {
		t.Fatal("the mapping went away with the file")
	}
	keep.stop(syscall.SIGTERM)
}

// TestOneShotCommands: map, unmap, list and probe.
func TestOneShotCommands(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	m := labpeers.StartMiniUPnPd(t, lab, labpeers.MiniUPnPdConfig{})
	lan := lab.LAN[0]

	out, code := portlease(t, lan, "probe")
	if code != 0 || !strings.Contains(out, "198.51.100.1") || !strings.Contains(out, "NAT-PMP: yes") || !strings.Contains(out, "UPnP IGD") {
		t.Fatalf("probe: exit %d:\n%s", code, out)
	}
	out, code = portlease(t, lan, "map", "tcp", "8090", "--protocol", "upnp", "--lifetime", "600", "--description", "e2e")
	if code != 0 || !strings.Contains(out, "203.0.113.1:8090") {
		t.Fatalf("map: exit %d:\n%s", code, out)
	}
	out, code = portlease(t, lan, "list", "--protocol", "upnp")
	if code != 0 || !regexp.MustCompile(`TCP\s+8090\s+198\.51\.100\.10:8090`).MatchString(out) {
		t.Fatalf("list: exit %d:\n%s", code, out)
	}
	if table := upnpList(t, lan, m); !listed(table, "TCP", 8090, "198.51.100.10:8090") {
		t.Fatalf("upnpc -l lacks the mapping:\n%s", table)
	}
	out, code = portlease(t, lan, "unmap", "tcp", "8090", "--protocol", "upnp")
	if code != 0 {
		t.Fatalf("unmap: exit %d:\n%s", code, out)
	}
	if table := upnpList(t, lan, m); listed(table, "TCP", 8090, "198.51.100.10:8090") {
		t.Fatalf("after unmap upnpc -l still lists it:\n%s", table)
	}
	// NAT-PMP cannot map another host's address: a clear error.
	out, code = portlease(t, lan, "map", "udp", "8091", "--protocol", "natpmp", "--to", "198.51.100.20")
	if code != 1 || !strings.Contains(out, "198.51.100.20") {
		t.Fatalf("map --to another host over NAT-PMP: exit %d, %q; want 1 naming the address", code, out)
	}
}

// TestEd2kExample: the library example keeps an eD2k/Kad client's ports
// and deletes them on exit.
func TestEd2kExample(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	ex := startBackground(t, lab.LAN[0], filepath.Join(binDir, "ed2k"), "-tcp", "4662", "-kad", "4672")
	wanted := func() bool {
		k := inboundElements(t, lab)
		return inKernel(k, "TCP", 4662, "198.51.100.10:4662") && inKernel(k, "UDP", 4665, "198.51.100.10:4665") &&
			inKernel(k, "UDP", 4672, "198.51.100.10:4672")
	}
	eventually(t, "the example maps TCP 4662, UDP 4665 and UDP 4672", wanted)
	if code := ex.stop(syscall.SIGINT); code != 0 {
		t.Fatalf("the example exit %d:\n%s", code, ex.Output())
	}
	if k := inboundElements(t, lab); strings.Contains(k, "4662") || strings.Contains(k, "4665") || strings.Contains(k, "4672") {
		t.Fatalf("the example left its mappings behind:\n%s", k)
	}
}

// TestKeepBackground: without --foreground keep detaches once the file is
// read, holds its PID file, logs to --log-file (nothing is lost in daemon
// mode), and on SIGTERM leaves the mappings on the gateway unless told to
// close them.
func TestKeepBackground(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	dir := t.TempDir()
	file := writeFile(t, "ports.csv", "address;port;protocol;duration;comment\n;20020;UDP;600;voip\n")
	pidFile, logFile := filepath.Join(dir, "keep.pid"), filepath.Join(dir, "keep.log")
	out, code := portlease(t, lan, "keep", "-f", file, "--pid-file", pidFile, "--log-file", logFile)
	if code != 0 {
		t.Fatalf("keep (detaching): exit %d:\n%s", code, out)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscanf(string(b), "%d", &pid); err != nil {
		t.Fatalf("PID file holds %q", b)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	logText := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	eventually(t, "the detached keep logs the mapping", func() bool { return strings.Contains(logText(), "msg=mapped") })
	if !inKernel(inboundElements(t, lab), "UDP", 20020, "198.51.100.10:20020") {
		t.Fatalf("the kernel lacks the mapping; log:\n%s", logText())
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "keep exits after SIGTERM", func() bool { return syscall.Kill(pid, 0) != nil })
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("PID file still there after exit: %v", err)
	}
	if !strings.Contains(logText(), "msg=stopped") {
		t.Errorf("the log does not record the stop:\n%s", logText())
	}
	if !inKernel(inboundElements(t, lab), "UDP", 20020, "198.51.100.10:20020") {
		t.Error("without --close-ports-on-exit the mapping should stay on the gateway until its lease ends")
	}
}

// TestForeignAddressOverUPnP: a line naming another LAN device is mapped to
// that device over UPnP (the gateway permitting it), and NAT-PMP refuses it
// plainly.
func TestForeignAddressOverUPnP(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	m := labpeers.StartMiniUPnPd(t, lab, labpeers.MiniUPnPdConfig{Insecure: true})
	file := writeFile(t, "ports.csv", "address;port;protocol;duration;comment\n198.51.100.11;12347;TCP;600;the other host\n")
	out, code := portlease(t, lab.LAN[0], "keep", "--foreground", "--oneshot", "-f", file)
	if code != 0 {
		t.Fatalf("keep --oneshot exit %d:\n%s", code, out)
	}
	if table := upnpList(t, lab.LAN[0], m); !listed(table, "TCP", 12347, "198.51.100.11:12347") {
		t.Fatalf("upnpc -l lacks the mapping to the other host:\n%s\n%s", table, out)
	}
	serveTCP(t, lab.LAN[1], 12347, "the other host")
	if got, err := fetchTCP(lab.WAN, "203.0.113.1:12347"); err != nil || got != "the other host" {
		t.Fatalf("the WAN host through 203.0.113.1:12347 got %q, %v", got, err)
	}
	out, code = portlease(t, lab.LAN[0], "keep", "--foreground", "--oneshot", "-f", file, "--protocol", "natpmp")
	if code != 2 || !strings.Contains(out, "NAT-PMP cannot map 198.51.100.11") {
		t.Fatalf("the same line over NAT-PMP: exit %d; want 2 and a plain refusal:\n%s", code, out)
	}
}
