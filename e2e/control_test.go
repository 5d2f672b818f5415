package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway/control"
	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// controlCmd runs portleased -c in the gateway namespace (it only
// connects to the Unix socket), through setpriv when wrap is set; it
// returns the combined output and the exit status.
type controlCmd struct {
	t      *testing.T
	lab    *netlab.Lab
	bin    string
	socket string
}

func (c controlCmd) run(wrap []string, args ...string) (string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append(append([]string{}, wrap...), append([]string{c.bin, "-c"}, append(args, "--socket", c.socket)...)...)
	cmd := c.lab.Gateway.Command(ctx, argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			code = ee.ExitCode()
		}
	}
	return string(out), code
}

// ok runs portleased -c as root and fails the test unless it exits 0.
func (c controlCmd) ok(args ...string) string {
	c.t.Helper()
	out, code := c.run(nil, args...)
	if code != 0 {
		c.t.Fatalf("portleased -c %s: exit %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// list runs portleased -c list --json with filters and returns the leases
// as "origin tcp/PORT INTERNAL", sorted as the daemon sorts them.
func (c controlCmd) list(filters ...string) []string {
	c.t.Helper()
	var ls control.Leases
	out := c.ok(append([]string{"list", "--json"}, filters...)...)
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		c.t.Fatalf("portleased -c list --json %s: %v\n%s", strings.Join(filters, " "), err, out)
	}
	var got []string
	for _, l := range ls.Leases {
		got = append(got, l.Origin+" "+l.Protocol+"/"+strconv.Itoa(int(l.ExternalPort))+" "+l.Internal.String())
	}
	return got
}

// publicBinary copies portleased where any user may run it (go test's
// work directory is root's alone).
func publicBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "portleased-control-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(labpeers.PortleasedBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "portleased")
	if err := errors.Join(os.Chmod(dir, 0o755), os.WriteFile(bin, b, 0o755)); err != nil {
		t.Fatal(err)
	}
	return bin
}

// checkOwned checks path's owner, group and mode.
func checkOwned(t *testing.T, path string, uid, gid int, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != mode {
		t.Errorf("%s is %d:%d %04o; want %d:%d %04o", path, st.Uid, st.Gid, fi.Mode().Perm(), uid, gid, mode)
	}
}

// TestControl: leases made by natpmpc, upnpc and portlease over PCP are
// all listed by portleased -c list and filtered by host, protocol, origin
// and ports; portleased -c delete removes a NAT-PMP lease, a UPnP one and
// all of a host's, and each closes the port to the WAN host at once (the
// running UDP flow too) and is gone from upnpc -l; the socket, root and
// the daemon's group's, mode 0660 in a directory the daemon made 0750,
// refuses a process of another user (the kernel, with a message naming
// the modes; the daemon itself, by SO_PEERCRED, once the modes are opened,
// and logs it) and admits a member of the group.
func TestControl(t *testing.T) {
	t.Parallel()
	acct, err := labpeers.ServiceAccount()
	if err != nil {
		t.Fatal(err)
	}
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	base, err := os.MkdirTemp("", "portleased-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(base, "portleased", "control")
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, ExtraLines: []string{"control socket " + socket}})
	checkOwned(t, filepath.Dir(socket), 0, acct.GID, 0o750)
	checkOwned(t, socket, 0, acct.GID, 0o660)
	c := controlCmd{t: t, lab: lab, bin: publicBinary(t), socket: socket}

	lan0, lan1 := lab.LAN[0], lab.LAN[1]
	a0, a1 := lan0.Addr4.String(), lan1.Addr4.String()
	serveTCP(t, lan0, 8080, "natpmp tcp")
	serveTCP(t, lan0, 8081, "upnp tcp")
	serveTCP(t, lan1, 8086, "pcp tcp")
	if got := natpmpcMap(t, lab, lan0, 8080, 8080, "tcp", 3600); got != 8080 {
		t.Fatalf("natpmpc got TCP %d; want 8080", got)
	}
	udp := netlab.ListenUDPSink(t, lan0, ":5000")
	if got := natpmpcMap(t, lab, lan0, 5000, 5000, "udp", 3600); got != 5000 {
		t.Fatalf("natpmpc got UDP %d; want 5000", got)
	}
	labpeers.UPnPC(t, lan0, "-u", descURL, "-e", "web", "-a", a0, "8081", "8081", "TCP", "3600")
	labpeers.UPnPC(t, lan1, "-u", descURL, "-a", a1, "9000", "9000", "UDP", "3600")
	r := portleaseMapJSON(t, lan1, "tcp", "8086", "--protocol", "pcp", "--lifetime", "3600")
	if r.Method != "pcp" || r.External != "203.0.113.1:8086" {
		t.Fatalf("portlease map over PCP granted %+v; want 203.0.113.1:8086", r)
	}
	ext := lab.GatewayWANAddr4.String()
	netlab.SendUDPFlow(t, lab.WAN, lab.WAN.Addr4.String()+":41001", ext+":5000")
	eventually(t, "the WAN host's UDP flow reaches LAN host 0", func() bool { return udp.Count() > 0 })

	all := []string{"natpmp tcp/8080 " + a0 + ":8080", "upnp tcp/8081 " + a0 + ":8081", "pcp tcp/8086 " + a1 + ":8086",
		"natpmp udp/5000 " + a0 + ":5000", "upnp udp/9000 " + a1 + ":9000"}
	for _, tc := range []struct {
		filters []string
		want    []string
	}{
		{nil, all},
		{[]string{"--host", a1}, []string{all[2], all[4]}},
		{[]string{"--protocol", "udp"}, []string{all[3], all[4]}},
		{[]string{"--origin", "upnp"}, []string{all[1], all[4]}},
		{[]string{"--origin", "pcp"}, []string{all[2]}},
		{[]string{"--ports", "8081-9000"}, []string{all[1], all[2], all[4]}},
		{[]string{"--host", a0, "--protocol", "tcp", "--origin", "natpmp"}, []string{all[0]}},
	} {
		if got := c.list(tc.filters...); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("portleased -c list %s:\n%s\nwant:\n%s", strings.Join(tc.filters, " "), strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
	table := c.ok("list")
	for _, want := range []string{"PROTO  EXTERNAL  INTERNAL", "REMAINING", "ORIGIN", "NONCE", "SHARE", "DESCRIPTION",
		"natpmp  no     3/1024", "pcp     yes    2/1024", "web", "5 leases (0 pinholes); external address 203.0.113.1"} {
		if !strings.Contains(table, want) {
			t.Errorf("portleased -c list lacks %q:\n%s", want, table)
		}
	}
	if out := c.ok("show", "tcp", "8086"); !strings.Contains(out, "nonce protected: yes") || !strings.Contains(out, "origin:          pcp") {
		t.Errorf("portleased -c show tcp 8086:\n%s", out)
	}
	if out, code := c.run(nil, "show", "tcp", "8999"); code != 1 || !strings.Contains(out, "no tcp lease on external port 8999") {
		t.Errorf("portleased -c show tcp 8999: exit %d:\n%s", code, out)
	}

	// One NAT-PMP lease, one UPnP lease: closed at once, the running
	// UDP flow too.
	running := udp.Count()
	eventually(t, "the UDP flow still runs before the deletion", func() bool { return udp.Count() > running })
	for _, what := range []struct{ proto, port, greeting string }{{"udp", "5000", ""}, {"tcp", "8080", "natpmp tcp"}, {"tcp", "8081", "upnp tcp"}} {
		if out := c.ok("delete", what.proto, what.port); !strings.Contains(out, "deleted "+what.proto+" "+what.port+" -> ") {
			t.Errorf("portleased -c delete %s %s printed:\n%s", what.proto, what.port, out)
		}
		if what.proto == "tcp" {
			if got, err := fetchTCP(lab.WAN, ext+":"+what.port); err == nil {
				t.Errorf("after portleased -c delete tcp %s the WAN host still got %q", what.port, got)
			}
		}
	}
	deleted := time.Now()
	list := labpeers.UPnPC(t, lan0, "-u", descURL, "-l")
	for _, gone := range []struct {
		proto string
		port  int
		to    string
	}{{"TCP", 8080, a0 + ":8080"}, {"TCP", 8081, a0 + ":8081"}, {"UDP", 5000, a0 + ":5000"}} {
		if listed(list, gone.proto, gone.port, gone.to) {
			t.Errorf("after portleased -c delete, upnpc -l still lists %s %d:\n%s", gone.proto, gone.port, list)
		}
	}
	if !listed(list, "UDP", 9000, a1+":9000") {
		t.Errorf("upnpc -l lost UDP 9000, which was not deleted:\n%s", list)
	}
	time.Sleep(time.Until(deleted.Add(1500 * time.Millisecond)))
	if last := udp.Last(); last.After(deleted.Add(time.Second)) {
		t.Errorf("LAN host 0 still received the WAN host's UDP flow %v after the deletion", last.Sub(deleted))
	}

	// All of a host's: the PCP lease and the UPnP one.
	if got, err := fetchTCP(lab.WAN, ext+":8086"); err != nil || got != "pcp tcp" {
		t.Fatalf("before the deletion the WAN host through %s:8086 got %q, %v", ext, got, err)
	}
	if out := c.ok("delete", "--host", a1); !strings.Contains(out, "2 leases of "+a1+" deleted") {
		t.Errorf("portleased -c delete --host %s printed:\n%s", a1, out)
	}
	if got, err := fetchTCP(lab.WAN, ext+":8086"); err == nil {
		t.Errorf("after portleased -c delete --host the WAN host still got %q", got)
	}
	if got := c.list(); len(got) != 0 {
		t.Errorf("after the deletions portleased -c list shows %q", got)
	}
	if list := labpeers.UPnPC(t, lan0, "-u", descURL, "-l"); listed(list, "UDP", 9000, a1+":9000") {
		t.Errorf("after portleased -c delete --host, upnpc -l still lists UDP 9000:\n%s", list)
	}
	c.ok("counters")

	// Access: another user, not in the group.
	stranger := []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"}
	out, code := c.run(stranger, "list")
	wantErr := "permission denied (EACCES): " + filepath.Dir(socket) + " is root:" + acct.Name + " 0750; run as root or as a member of group " + acct.Name
	if code != 1 || !strings.Contains(out, wantErr) {
		t.Errorf("portleased -c list as nobody: exit %d:\n%s\nwant %q", code, out, wantErr)
	}
	// The modes opened by mistake: the daemon refuses it itself.
	if err := errors.Join(os.Chmod(filepath.Dir(socket), 0o755), os.Chmod(socket, 0o666)); err != nil {
		t.Fatal(err)
	}
	out, code = c.run(stranger, "list")
	if code != 1 || !strings.Contains(out, "is not root, the daemon's user") {
		t.Errorf("portleased -c list as nobody, the socket 0666: exit %d:\n%s", code, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitLog(ctx, "control socket: peer refused"); err != nil {
		t.Errorf("the daemon did not log the refused peer: %v", err)
	}
	if err := errors.Join(os.Chmod(filepath.Dir(socket), 0o750), os.Chmod(socket, 0o660)); err != nil {
		t.Fatal(err)
	}
	member := []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--groups=" + strconv.Itoa(acct.GID)}
	if out, code := c.run(member, "list"); code != 0 || !strings.Contains(out, "0 leases") {
		t.Errorf("portleased -c list as nobody in group %s: exit %d:\n%s", acct.Name, code, out)
	}
}
