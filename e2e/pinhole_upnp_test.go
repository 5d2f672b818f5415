package e2e

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// mappingRowRE matches a row of upnpc -l's port mapping table.
var mappingRowRE = regexp.MustCompile(`(?m)^\s*\d+\s+(TCP|UDP)\s+\d+->`)

var pinholeIDRE = regexp.MustCompile(`AddPinhole: \(\[[^\]]*\]:\d+ -> \[([^\]]+)\]:(\d+)\) / Pinhole ID = (\d+)`)

// upnpc6 runs upnpc -6 on host against portleased's IPv6 description URL
// (no discovery: TestPinholeUPnPC discovers once) and returns its output.
// upnpc exits 0 when an action fails, so callers check what it prints.
func upnpc6(t *testing.T, host *netlab.Host, args ...string) string {
	t.Helper()
	return labpeers.UPnPC(t, host, append([]string{"-6", "-u", descURL6}, args...)...)
}

// upnpcAddPinhole opens a pinhole with upnpc -6 -A and returns its UniqueID;
// the test fails unless upnpc reports one for internal.
func upnpcAddPinhole(t *testing.T, host *netlab.Host, remote string, internal netip.AddrPort, proto string, lease int) int {
	t.Helper()
	out := upnpc6(t, host, "-A", remote, "0", internal.Addr().String(), strconv.Itoa(int(internal.Port())), proto, strconv.Itoa(lease))
	m := pinholeIDRE.FindStringSubmatch(out)
	if m == nil || m[1] != internal.Addr().String() || m[2] != strconv.Itoa(int(internal.Port())) {
		t.Fatalf("upnpc -6 -A %q 0 %v %s %d reported no pinhole:\n%s", remote, internal, proto, lease, out)
	}
	id, _ := strconv.Atoi(m[3])
	return id
}

// upnpcWorking reports whether upnpc -6 -C id says the pinhole works; the
// test fails unless upnpc answers either way (Yes, or 704 NoSuchEntry).
func upnpcWorking(t *testing.T, host *netlab.Host, id int) bool {
	t.Helper()
	out := upnpc6(t, host, "-C", strconv.Itoa(id))
	switch {
	case strings.Contains(out, fmt.Sprintf("Pinhole ID = %d / IsWorking = Yes", id)):
		return true
	case strings.Contains(out, "failed with code 704"):
		return false
	}
	t.Fatalf("upnpc -6 -C %d printed neither IsWorking = Yes nor 704 NoSuchEntry:\n%s", id, out)
	return false
}

// TestPinholeUPnPC: upnpc -6 opens a pinhole over WANIPv6FirewallControl:1
// (AddPinhole, with an empty RemoteHost: any peer) and the WAN host's
// connection gets through the gateway's default-drop forward policy;
// UpdatePinhole renews it, every time, while it lives; CheckPinholeWorking
// says it works; DeletePinhole closes it. A pinhole made over PCP is the
// same lease over UPnP: AddPinhole of its endpoint and filter returns its
// UniqueID, CheckPinholeWorking sees it, and PCP deletes it. The IPv4 port
// mapping list (upnpc -6 -l) holds no pinhole.
func TestPinholeUPnPC(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	const greeting = "hello through a UPnP pinhole"
	server := netip.AddrPortFrom(lanHost6, 8082)
	serveTCP6(t, lan, server.Port(), greeting)
	mustNotReach(t, "before a pinhole", lab.WAN, anySource, server)

	// Discovery over IPv6 (SSDP on FF02::C), as a user runs it.
	out := labpeers.UPnPC(t, lan, "-6", "-m", lan.Link, "-A", "", "0", lanHost6.String(), "8082", "TCP", "3600")
	m := pinholeIDRE.FindStringSubmatch(out)
	if m == nil || m[1] != lanHost6.String() || m[2] != "8082" {
		t.Fatalf("upnpc -6 -m %s -A \"\" 0 %v 8082 TCP 3600 reported no pinhole:\n%s", lan.Link, lanHost6, out)
	}
	id, _ := strconv.Atoi(m[3])
	mustReach(t, "through the UPnP pinhole", lab.WAN, anySource, server, greeting)
	if err := d.WaitLog(t.Context(), fmt.Sprintf("lease.internal=%v lease.pinhole=%d lease.filters=0 lease.origin=upnp", server, id)); err != nil {
		t.Errorf("the lease log does not tell of UPnP pinhole %d: %v", id, err)
	}

	// Renewals never fail while the lease lives.
	for i := range 4 {
		out := upnpc6(t, lan, "-U", strconv.Itoa(id), "7200")
		if !strings.Contains(out, fmt.Sprintf("UpdatePinhole: Pinhole ID = %d with Lease Time: 7200", id)) || strings.Contains(out, "failed") {
			t.Fatalf("upnpc -6 -U %d 7200 (renewal %d) printed:\n%s", id, i+1, out)
		}
	}
	if !upnpcWorking(t, lan, id) {
		t.Fatalf("CheckPinholeWorking says pinhole %d does not exist after its renewals", id)
	}
	// The same endpoint and filter again: the same pinhole, renewed.
	if again := upnpcAddPinhole(t, lan, "", server, "TCP", 3600); again != id {
		t.Fatalf("AddPinhole of the same endpoint returned UniqueID %d; want %d", again, id)
	}
	mustReach(t, "through the renewed pinhole", lab.WAN, anySource, server, greeting)

	// Pinholes are not port mappings: the IPv4 list shows the one mapping.
	if out := labpeers.UPnPC(t, lan, "-a", lab.LAN[0].Addr4.String(), "8090", "8090", "TCP", "3600"); !strings.Contains(out, "is redirected to internal") {
		t.Fatalf("upnpc -a printed:\n%s", out)
	}
	list := labpeers.UPnPC(t, lan, "-6", "-m", lan.Link, "-l")
	if !listed(list, "TCP", 8090, lab.LAN[0].Addr4.String()+":8090") || len(mappingRowRE.FindAllString(list, -1)) != 1 {
		t.Fatalf("upnpc -6 -l: want the IPv4 mapping and no pinhole:\n%s", list)
	}

	if out := upnpc6(t, lan, "-D", strconv.Itoa(id)); !strings.Contains(out, "UPNP_DeletePinhole() returned : 0") {
		t.Fatalf("upnpc -6 -D %d printed:\n%s", id, out)
	}
	mustNotReach(t, "after DeletePinhole", lab.WAN, anySource, server)
	if upnpcWorking(t, lan, id) {
		t.Fatalf("CheckPinholeWorking says deleted pinhole %d works", id)
	}

	// A pinhole made over PCP, seen and renewed over UPnP, deleted over PCP.
	r := portleaseMapJSON(t, lan, "tcp", "8082", "--to", lanHost6.String(), "--protocol", "pcp")
	if !r.Pinhole {
		t.Fatalf("portlease map --to %v granted %+v; want a pinhole", lanHost6, r)
	}
	pcpID := upnpcAddPinhole(t, lan, "", server, "TCP", 3600)
	if !upnpcWorking(t, lan, pcpID) {
		t.Fatalf("CheckPinholeWorking does not see PCP pinhole %d", pcpID)
	}
	if err := d.WaitLog(t.Context(), fmt.Sprintf("lease.internal=%v lease.pinhole=%d lease.filters=0 lease.origin=pcp", server, pcpID)); err != nil {
		t.Errorf("UniqueID %d is not the PCP pinhole's: %v", pcpID, err)
	}
	if out := upnpc6(t, lan, "-U", strconv.Itoa(pcpID), "7200"); strings.Contains(out, "failed") || !strings.Contains(out, "UpdatePinhole: Pinhole ID") {
		t.Fatalf("upnpc -6 -U %d 7200 on the PCP pinhole printed:\n%s", pcpID, out)
	}
	mustReach(t, "through the PCP pinhole", lab.WAN, anySource, server, greeting)
	if out, code := portlease(t, lan, "unmap", "tcp", "8082", "--to", lanHost6.String(), "--protocol", "pcp", "--nonce", r.Nonce); code != 0 {
		t.Fatalf("portlease unmap --nonce %s after UPnP renewals: exit %d:\n%s", r.Nonce, code, out)
	}
	mustNotReach(t, "after the PCP deletion", lab.WAN, anySource, server)
	if upnpcWorking(t, lan, pcpID) {
		t.Fatalf("CheckPinholeWorking still sees PCP pinhole %d after its deletion", pcpID)
	}

	// Nothing changed on the LAN: the UPnP service was never restarted
	// (a restart says ssdp:byebye and takes a new BOOTID), and it never
	// served an address twice.
	if n := strings.Count(d.Log(), "serving UPnP IGD"); n != 1 || strings.Contains(d.Log(), "UPnP IGD stopped") {
		t.Errorf("the UPnP service started %d times, or stopped, with nothing changed on the LAN", n)
	}
}

// TestPinholeUPnPCFilter: AddPinhole with a RemoteHost admits that WAN
// address only; with "*" (a wildcard, as an empty one) any. A pinhole and
// its UniqueID survive a restart of portleased with a state file, and the
// kernel lets the named peer in again after it.
func TestPinholeUPnPCFilter(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true,
		StateFile: labpeers.StateDir(t) + "/leases"})
	lan := lab.LAN[0]
	addWANAddr6(t, lab, wanOther6)
	const greeting = "hello to the UPnP remote host"
	filtered := netip.AddrPortFrom(lanHost6, 8085)
	open := netip.AddrPortFrom(lanHost6, 8086)
	serveTCP6(t, lan, filtered.Port(), greeting)
	serveTCP6(t, lan, open.Port(), greeting)

	id := upnpcAddPinhole(t, lan, wanHost6.String(), filtered, "TCP", 3600)
	mustReach(t, "the RemoteHost", lab.WAN, from(wanHost6), filtered, greeting)
	mustNotReach(t, "another WAN address", lab.WAN, from(wanOther6), filtered)
	openID := upnpcAddPinhole(t, lan, "*", open, "TCP", 3600)
	mustReach(t, "RemoteHost *", lab.WAN, from(wanOther6), open, greeting)

	if err := d.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !upnpcWorking(t, lan, id) || !upnpcWorking(t, lan, openID) {
		t.Fatalf("pinholes %d and %d not kept across the restart", id, openID)
	}
	mustReach(t, "the RemoteHost after a restart", lab.WAN, from(wanHost6), filtered, greeting)
	mustNotReach(t, "another WAN address after a restart", lab.WAN, from(wanOther6), filtered)
	mustReach(t, "RemoteHost * after a restart", lab.WAN, from(wanOther6), open, greeting)
	if out := upnpc6(t, lan, "-U", strconv.Itoa(id), "600"); strings.Contains(out, "failed") || !strings.Contains(out, "UpdatePinhole: Pinhole ID") {
		t.Fatalf("upnpc -6 -U %d 600 after the restart printed:\n%s", id, out)
	}
}
