package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// TestPortleaseUPnPPinholeID: portlease map --to a global IPv6 address over
// UPnP opens a WANIPv6FirewallControl:1 pinhole on portleased and prints
// its UniqueID (text and --json), and unmap --pinhole-id deletes exactly
// that pinhole from the kernel; --pinhole-id without an IPv6 --to is refused.
func TestPortleaseUPnPPinholeID(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan := lab.LAN[0]
	addr := lan.Addr6.String()
	pinhole := func(proto string, port int) bool {
		set := labpeers.NFT(t, lab.Gateway, "list", "set", "inet", "portleased", "pinhole6")
		return regexp.MustCompile(fmt.Sprintf(`%s \. %s \. %d\b`, regexp.QuoteMeta(addr), proto, port)).MatchString(set)
	}

	out, code := portlease(t, lan, "map", "tcp", "8080", "--to", addr, "--protocol", "upnp", "--lifetime", "600")
	if code != 0 || !strings.Contains(out, "pinhole TCP ["+addr+"]:8080") {
		t.Fatalf("map tcp 8080 --to %s over UPnP: exit %d:\n%s", addr, code, out)
	}
	m := regexp.MustCompile(`pinhole id (\d+) \(portlease unmap tcp 8080 --to (\S+) --pinhole-id (\d+)\)`).FindStringSubmatch(out)
	if m == nil || m[1] != m[3] || m[2] != addr || m[1] == "0" {
		t.Fatalf("map did not print the pinhole's UniqueID and its unmap line:\n%s", out)
	}
	tcpID := m[1]
	if !pinhole("tcp", 8080) {
		t.Fatalf("the kernel lacks the pinhole %s . tcp . 8080", addr)
	}

	out, code = portlease(t, lan, "map", "udp", "4672", "--to", addr, "--protocol", "upnp", "--lifetime", "600", "--json", "--log-level", "error")
	var res struct {
		Method    string `json:"method"`
		Internal  string `json:"internal"`
		Pinhole   bool   `json:"pinhole"`
		PinholeID int    `json:"pinhole_id"`
	}
	if code != 0 {
		t.Fatalf("map udp 4672 --json: exit %d:\n%s", code, out)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("map --json printed %q: %v", out, err)
	}
	if res.Method != "upnp" || !res.Pinhole || res.PinholeID == 0 || fmt.Sprint(res.PinholeID) == tcpID || res.Internal != "["+addr+"]:4672" {
		t.Fatalf("map --json = %+v; want a UPnP pinhole to [%s]:4672 with a UniqueID of its own (not %s)", res, addr, tcpID)
	}
	if !pinhole("udp", 4672) {
		t.Fatalf("the kernel lacks the pinhole %s . udp . 4672", addr)
	}

	if out, code = portlease(t, lan, "unmap", "tcp", "8080", "--pinhole-id", tcpID); code != 1 || !strings.Contains(out, "--to") {
		t.Fatalf("unmap --pinhole-id without --to: exit %d:\n%s\nwant 1 asking for --to", code, out)
	}
	if out, code = portlease(t, lan, "map", "tcp", "8080", "--to", addr, "--pinhole-id", tcpID); code != 1 || !strings.Contains(out, "only unmap") {
		t.Fatalf("map --pinhole-id: exit %d:\n%s\nwant 1", code, out)
	}
	// auto: PCP is not tried without a nonce, UPnP deletes by the UniqueID.
	out, code = portlease(t, lan, "unmap", "tcp", "8080", "--to", addr, "--pinhole-id", tcpID)
	if code != 0 || !strings.Contains(out, "deleted TCP ["+addr+"]:8080") {
		t.Fatalf("unmap --pinhole-id %s: exit %d:\n%s", tcpID, code, out)
	}
	if pinhole("tcp", 8080) || !pinhole("udp", 4672) {
		t.Fatalf("after unmap of pinhole %s: want TCP 8080 gone and UDP 4672 kept:\n%s", tcpID,
			labpeers.NFT(t, lab.Gateway, "list", "set", "inet", "portleased", "pinhole6"))
	}
	out, code = portlease(t, lan, "unmap", "udp", "4672", "--to", addr, "--protocol", "upnp", "--pinhole-id", fmt.Sprint(res.PinholeID), "--json")
	if code != 0 || !strings.Contains(out, `"deleted": true`) {
		t.Fatalf("unmap udp 4672 --pinhole-id %d --json: exit %d:\n%s", res.PinholeID, code, out)
	}
	if pinhole("udp", 4672) {
		t.Fatal("the UDP pinhole is still in the kernel after its unmap")
	}
}
