package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/natpmp"
	"github.com/portlease/portlease/upnp"
	"github.com/portlease/portlease/upnp/igdclient"
)

// floodLines are added to the configuration of every test here: a flood
// must meet the fair shares, not a limit of the request rate, which
// answers NAT-PMP with the same result 4, nor the connection cap (16
// requests in flight and the connections being closed and opened around
// them).
var floodLines = []string{"request rate per host none", "upnp max connections per host 64"}

// natpmpKey names a NAT-PMP mapping request: its opcode and internal port.
type natpmpKey struct {
	op    natpmp.Opcode
	iport uint16
}

// floodKeys returns n mapping requests of distinct internal endpoints the
// default rules allow: TCP ports 1024-65535, then UDP from 1024.
func floodKeys(n int) []natpmpKey {
	keys := make([]natpmpKey, 0, n)
	for i := range n {
		op, port := natpmp.OpMapTCP, 1024+i
		if port > 65535 {
			op, port = natpmp.OpMapUDP, port-65535+1023
		}
		keys = append(keys, natpmpKey{op, uint16(port)})
	}
	return keys
}

// natpmpFlood sends the mapping requests of keys (lifetime 3600, any
// external port) from one socket on host, 256 in flight, and returns every
// answer. A request left unanswered is sent again, up to four times in
// all; the test fails if one never is.
func natpmpFlood(t *testing.T, host *netlab.Host, gw netip.Addr, keys []natpmpKey) map[natpmpKey]natpmp.MappingResponse {
	t.Helper()
	pc, err := host.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, natpmp.ServerPort))
	answers := make(map[natpmpKey]natpmp.MappingResponse, len(keys))
	buf := make([]byte, 64)
	const window = 256
	for start := 0; start < len(keys); start += window {
		batch := keys[start:min(start+window, len(keys))]
		for try := 0; ; try++ {
			missing := 0
			for _, k := range batch {
				if _, ok := answers[k]; ok {
					continue
				}
				missing++
				if _, err := pc.WriteTo(mappingRequest(k.op, k.iport, 0, 3600), dst); err != nil {
					t.Fatal(err)
				}
			}
			if missing == 0 {
				break
			}
			if try == 4 {
				t.Fatalf("%d NAT-PMP requests of %d from %d on never answered", missing, len(batch), start)
			}
			_ = pc.SetReadDeadline(time.Now().Add(2 * time.Second))
			for missing > 0 {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					break // a timeout: send the missing ones again
				}
				var m natpmp.MappingResponse
				if err := m.UnmarshalBinary(buf[:n]); err != nil {
					t.Fatalf("answer %x: %v", buf[:n], err)
				}
				k := natpmpKey{m.Opcode, m.InternalPort}
				if _, seen := answers[k]; !seen {
					missing--
				}
				answers[k] = m
			}
		}
	}
	return answers
}

// grantedCount counts the successful answers; every other one must be
// result 4, Out of resources.
func grantedCount(t *testing.T, answers map[natpmpKey]natpmp.MappingResponse) int {
	t.Helper()
	granted := 0
	for k, m := range answers {
		switch m.ResultCode {
		case natpmp.Success:
			granted++
		case natpmp.OutOfResources:
		default:
			t.Fatalf("request %v answered %+v; want success or Out of resources", k, m)
		}
	}
	return granted
}

// dialIGD returns the gateway's IGD as seen from host.
func dialIGD(t *testing.T, host *netlab.Host) *igdclient.IGD {
	t.Helper()
	var igd *igdclient.IGD
	c := igdclient.New(igdclient.Config{HTTPClient: httpOn(host)})
	err := host.Do(func() error {
		var err error
		igd, err = c.Dial(context.Background(), descURL, host.Addr4)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return igd
}

// upnpFlood asks for an AddPortMapping of each of keys' endpoints (external
// port = internal port) from host, 16 at a time, and returns how many were
// granted; every refusal must be 728 NoPortMapsAvailable.
func upnpFlood(t *testing.T, host *netlab.Host, keys []natpmpKey) int {
	t.Helper()
	igd := dialIGD(t, host)
	work := make(chan natpmpKey)
	var (
		mu       sync.Mutex
		granted  int
		firstErr error
		wg       sync.WaitGroup
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				proto := "TCP"
				if k.op == natpmp.OpMapUDP {
					proto = "UDP"
				}
				_, err := igd.AddPortMapping(context.Background(), upnp.PortMapping{ExternalPort: k.iport, Protocol: proto,
					InternalPort: k.iport, InternalClient: host.Addr4.String(), Enabled: true, LeaseDuration: 3600})
				mu.Lock()
				if code, _ := upnp.FaultCode(err); err == nil {
					granted++
				} else if code != upnp.NoPortMapsAvailable && firstErr == nil {
					firstErr = fmt.Errorf("AddPortMapping %s %d: %w", proto, k.iport, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("%v; want success or 728 NoPortMapsAvailable", firstErr)
	}
	return granted
}

// secondHostServed: the other LAN host gets a mapping over NAT-PMP
// (natpmpc) and one over UPnP (upnpc) while the first holds its share.
func secondHostServed(t *testing.T, lab *netlab.Lab, host *netlab.Host, port int) {
	t.Helper()
	natpmpcMap(t, lab, host, port, port, "tcp", 3600)
	p := strconv.Itoa(port + 1)
	out := labpeers.UPnPC(t, host, "-u", descURL, "-a", host.Addr4.String(), p, p, "TCP", "3600")
	if want := fmt.Sprintf("is redirected to internal %s:%s", host.Addr4, p); !strings.Contains(out, want) {
		t.Fatalf("upnpc -a from the second host printed:\n%s", out)
	}
}

// TestHostQuotaNATPMPAndUPnP: one LAN host asking for 65,535 mappings over
// NAT-PMP, many in flight, gets exactly its share (the default, 1024) and
// Out of resources for the rest; its share counts UPnP's mappings too
// (728); once it has let its NAT-PMP mappings go, 65,535 asked over UPnP
// give it exactly its share again. Meanwhile a second host gets its
// mappings with natpmpc and upnpc, and the kernel holds what was granted.
// The daemon logs the host's refusals once a minute with their count, not
// once a request.
func TestHostQuotaNATPMPAndUPnP(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{ExtraLines: floodLines})
	hog, other, gw := lab.LAN[0], lab.LAN[1], lab.GatewayLANAddr4
	const share = config.DefaultMaxPerHost
	keys := floodKeys(65535)

	if got := grantedCount(t, natpmpFlood(t, hog, gw, keys)); got != share {
		t.Fatalf("65,535 NAT-PMP requests granted %d; want the host's share, %d", got, share)
	}
	secondHostServed(t, lab, other, 6000)
	if n := strings.Count(inboundElements(t, lab), ": "+hog.Addr4.String()+" . "); n != share {
		t.Errorf("the kernel holds %d mappings of the first host; want %d", n, share)
	}
	if got := upnpFlood(t, hog, keys[:16]); got != 0 {
		t.Fatalf("UPnP granted %d mappings to a host at its share over NAT-PMP; want 0", got)
	}

	// RFC 6886 §3.4: internal port 0, lifetime 0 deletes every mapping of
	// the host for the protocol.
	for _, op := range []natpmp.Opcode{natpmp.OpMapTCP, natpmp.OpMapUDP} {
		if resp := exchange(t, hog, gw, mappingRequest(op, 0, 0, 0), 5*time.Second); resp == nil {
			t.Fatalf("no answer to the deletion of every mapping (opcode %d)", op)
		}
	}
	if got := upnpFlood(t, hog, keys); got != share {
		t.Fatalf("65,535 UPnP requests granted %d; want the host's share, %d", got, share)
	}
	secondHostServed(t, lab, other, 6002)
	// About 128,000 refusals: one record, or a few should the test
	// outlast the minute.
	records := strings.Count(d.Log(), `msg="refused: host at its share" host=`+hog.Addr4.String()+" ")
	if records == 0 || records > 3 {
		t.Errorf("the host's refusals for its share were logged %d times; want once a minute:\n%s", records, logLine(d, "refused: host at its share"))
	}
}

// TestMaxMappings: the whole table's cap refuses every host once reached
// (NAT-PMP result 4, UPnP 728), below each host's share, while renewals
// pass.
func TestMaxMappings(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{
		ExtraLines: append([]string{"max mappings per host 200", "max mappings 300"}, floodLines...)})
	a, b, gw := lab.LAN[0], lab.LAN[1], lab.GatewayLANAddr4
	keys := floodKeys(1000)

	if got := grantedCount(t, natpmpFlood(t, a, gw, keys)); got != 200 {
		t.Fatalf("1,000 NAT-PMP requests of the first host granted %d; want its share, 200", got)
	}
	if got := grantedCount(t, natpmpFlood(t, b, gw, keys)); got != 100 {
		t.Fatalf("1,000 NAT-PMP requests of the second host granted %d; want what the table's cap of 300 leaves, 100", got)
	}
	if got := upnpFlood(t, b, keys[len(keys)-16:]); got != 0 {
		t.Fatalf("UPnP granted %d mappings on a full table; want 0", got)
	}
	renewed := natpmpFlood(t, a, gw, keys[:1])
	if m := renewed[keys[0]]; m.ResultCode != natpmp.Success {
		t.Fatalf("a renewal on a full table: %+v; want success", m)
	}
}
