package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// statusURL is the status page as a LAN host reaches it.
const statusURL = "http://198.51.100.1:5000/status"

// pageDeadline is how soon a change of the table must show on the page
// (issue 14).
const pageDeadline = 2 * time.Second

// startChromium starts Debian's chromium, headless, inside host's network
// namespace (`ip netns exec`, as netlab runs every program there: nothing
// of the browser reaches the machine's own network), with a fresh profile
// that chromedp makes in a temporary directory and removes. The DevTools
// protocol runs over a pipe (chromedp's default), not a socket. When the
// test ends the browser is closed and the test fails if a process is left
// in host's namespace.
func startChromium(t *testing.T, host *netlab.Host) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root
		chromedp.Flag("no-proxy-server", true),
		chromedp.WindowSize(1200, 900),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			in := host.Command(context.Background(), cmd.Path, cmd.Args[1:]...)
			cmd.Path, cmd.Args = in.Path, in.Args
			// ip netns exec replaces itself with chromium, which
			// the kernel kills if the test process dies.
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		if err := chromedp.Cancel(ctx); err != nil {
			t.Errorf("close chromium: %v", err)
		}
		cancel()
		cancelAlloc()
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := exec.Command("ip", "netns", "pids", host.NS).Output()
			if err != nil {
				t.Errorf("ip netns pids %s: %v", host.NS, err)
				return
			}
			if strings.TrimSpace(string(out)) == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("processes left in %s after chromium was closed: %s", host.NS, strings.Fields(string(out)))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	// The first Run starts the browser, without a deadline of its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// within runs actions on the page and fails the test unless they finish
// within d.
func within(t *testing.T, ctx context.Context, d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	if err := chromedp.Do(tctx, actions...); err != nil {
		t.Fatalf("%s: %v (after %v)", what, err, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("%s: after %v", what, time.Since(start).Round(time.Millisecond))
}

// saveScreenshot writes png into $PORTLEASE_ARTIFACTS, or the test's
// temporary directory, and logs its path.
func saveScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := os.Getenv("PORTLEASE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestStatusPage drives the status page in a real headless Chromium on a
// LAN host: a mapping natpmpc makes shows in the table within 2 s without
// a reload; the page's admin action (status page admin on, the token typed
// once) deletes it, and it leaves the table within 2 s, as does one that
// portleased -c deletes; the WAN host gets
// no page, on the gateway's WAN address nor its LAN one. Screenshots of
// the page, wide and phone-sized, are saved as artifacts.
func TestStatusPage(t *testing.T) {
	t.Parallel()
	labpeers.RequirePrograms(t, "chromium", "natpmpc", "upnpc")
	lab := netlab.New(t, netlab.Config{})
	const token = "e2e-status-page-token"
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{
		ExtraLines: []string{"status page admin on", "status page token " + token},
	})
	lan := lab.LAN[0]

	// The page is served to the LAN host, and to nobody on the WAN side.
	req := "GET /status HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
	if out, err := rawHTTP(lan, "198.51.100.1:5000", fmt.Sprintf(req, "198.51.100.1:5000")); err != nil || !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Fatalf("GET /status from the LAN host: %v\n%s", err, out)
	}
	for _, addr := range []string{lab.GatewayWANAddr4.String() + ":5000", "198.51.100.1:5000"} {
		out, err := rawHTTP(lab.WAN, addr, fmt.Sprintf(req, addr))
		switch {
		case err == nil:
			t.Errorf("GET http://%s/status from the WAN host was answered:\n%s", addr, out)
		case !noPage(err):
			t.Fatalf("GET http://%s/status from the WAN host: %v; want a refusal, no route or no answer", addr, err)
		default:
			t.Logf("GET http://%s/status from the WAN host: %v", addr, err)
		}
	}

	ctx := startChromium(t, lan)
	// Open the page; the stream of updates is live; unlock the admin
	// actions with the token.
	within(t, ctx, 20*time.Second, "open "+statusURL,
		chromedp.Navigate(statusURL),
		chromedp.WaitReady(chromedp.CSS(`#live:not(.off)`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#tokenForm button`)),
		chromedp.WaitReady(chromedp.CSS(`body.admin`)),
	)
	external, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#external`)))
	if err != nil || external != lab.GatewayWANAddr4.String() {
		t.Fatalf("the page shows external address %q (%v); want %s", external, err, lab.GatewayWANAddr4)
	}

	// A NAT-PMP mapping shows without a reload.
	eport := natpmpcMap(t, lab, lan, 40123, 40123, "tcp", 3600)
	row := fmt.Sprintf(`#leases tr[data-key="tcp/%d"]`, eport)
	within(t, ctx, pageDeadline, "natpmpc's mapping on the page", chromedp.WaitVisible(chromedp.CSS(row)))
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row)))
	if err != nil {
		t.Fatal(err)
	}
	if want := lan.Addr4.String() + ":40123"; !strings.Contains(text, want) || !strings.Contains(text, "natpmp") {
		t.Errorf("the lease's row reads %q; want %s and natpmp", text, want)
	}

	// More leases for the screenshots: UDP over NAT-PMP, one of UPnP with
	// a description.
	udpPort := natpmpcMap(t, lab, lan, 40124, 40124, "udp", 3600)
	udpRow := fmt.Sprintf(`#leases tr[data-key="udp/%d"]`, udpPort)
	upnpRow := `#leases tr[data-key="tcp/40125"]`
	labpeers.UPnPC(t, lan, "-u", "http://198.51.100.1:5000/rootDesc.xml", "-e", "game server", "-a", lan.Addr4.String(), "40125", "40125", "TCP", "7200")
	within(t, ctx, pageDeadline, "upnpc's mapping on the page", chromedp.WaitVisible(chromedp.CSS(upnpRow)))
	wide, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, "status-page.png", wide)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait)); err != nil {
		t.Fatal(err)
	}
	phone, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, "status-page-phone.png", phone)
	if err := chromedp.Do(ctx, chromedp.EmulateReset()); err != nil {
		t.Fatal(err)
	}

	// The admin action deletes the NAT-PMP lease: a first press arms the
	// button, the second deletes; the row goes without a reload.
	button := row + " button.danger"
	within(t, ctx, 5*time.Second, "press Delete twice",
		chromedp.Click(chromedp.CSS(button)),
		chromedp.WaitVisible(chromedp.CSS(button+".armed")),
		chromedp.Click(chromedp.CSS(button)),
	)
	within(t, ctx, pageDeadline, "the deleted lease leaves the page", chromedp.WaitNotPresent(chromedp.CSS(row)))
	if state, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#adminState`))); err != nil || state != "Deleted 1 lease." {
		t.Errorf("the page says %q (%v) after the deletion", state, err)
	}
	// The operator's command deletes the UDP lease: the page follows.
	within(t, ctx, pageDeadline, "the UDP lease on the page", chromedp.WaitVisible(chromedp.CSS(udpRow)))
	ctl := controlCmd{t: t, lab: lab, bin: publicBinary(t), socket: d.ControlSocket()}
	ctl.ok("delete", "udp", strconv.Itoa(udpPort))
	within(t, ctx, pageDeadline, "the lease portleased -c deleted leaves the page", chromedp.WaitNotPresent(chromedp.CSS(udpRow)))

	// The gateway no longer holds it: upnpc -l walks every IPv4 lease of
	// the one table, NAT-PMP's included.
	if out := labpeers.UPnPC(t, lan, "-u", "http://198.51.100.1:5000/rootDesc.xml", "-l"); strings.Contains(out, strconv.Itoa(eport)+"->") {
		t.Errorf("upnpc -l still lists external port %d after the deletion:\n%s", eport, out)
	}
}

// TestStatusPageOff: with "status page off" the UPnP port serves no page,
// and UPnP itself still works.
func TestStatusPageOff(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{ExtraLines: []string{"status page off"}})
	lan := lab.LAN[0]
	for _, path := range []string{"/status", "/status/leases.json", "/status/events"} {
		out, err := rawHTTP(lan, "198.51.100.1:5000", "GET "+path+" HTTP/1.1\r\nHost: 198.51.100.1:5000\r\nConnection: close\r\n\r\n")
		if err != nil || !strings.HasPrefix(out, "HTTP/1.1 404 ") {
			t.Errorf("GET %s with the status page off: %v\n%s", path, err, out)
		}
	}
	if out, err := rawHTTP(lan, "198.51.100.1:5000", "GET /rootDesc.xml HTTP/1.1\r\nHost: 198.51.100.1:5000\r\nConnection: close\r\n\r\n"); err != nil || !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Errorf("GET /rootDesc.xml with the status page off: %v\n%s", err, out)
	}
}

// noPage reports whether err of rawHTTP says the page was not served: the
// connection refused, no route to it, or no answer in time. Any other
// error (the lab failing to dial at all) is not evidence of a refusal.
func noPage(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errNoAnswer)
}
