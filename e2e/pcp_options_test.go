package e2e

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/pcp"
)

// pcpMapWith is a MAP request of host (nonce n) for TCP internal port iport,
// suggesting external port eport, with the options of o.
func pcpMapWith(t *testing.T, host *netlab.Host, n byte, iport, eport uint16, o pcp.Options) []byte {
	t.Helper()
	b, err := pcp.Request{Opcode: pcp.OpMap, Lifetime: 600, Client: host.Addr4, Options: o, Map: pcp.MapData{
		Nonce: [pcp.NonceLen]byte{n, n}, Protocol: pcp.ProtocolTCP, InternalPort: iport, ExternalPort: eport,
	}}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pcpWantError checks that an answer is code with §7.4's lifetime for it.
func pcpWantError(t *testing.T, what string, raw []byte, code pcp.ResultCode) {
	t.Helper()
	if len(raw) < pcp.HeaderLen || pcp.ResultCode(raw[3]) != code {
		t.Fatalf("%s answered %x; want %v", what, raw, code)
	}
	if got, want := binary.BigEndian.Uint32(raw[pcpOffLifetime:]), pcpErrorLifetime(code); got != want {
		t.Errorf("%s: %v with lifetime %d; want %d (§7.4)", what, code, got, want)
	}
}

// TestPCPPreferFailure: another LAN host holds external TCP port 7000
// (natpmpc) and 7001 (a PCP MAP): a MAP that suggests one of them with
// PREFER_FAILURE gets CANNOT_PROVIDE_EXTERNAL, a short lifetime error, and
// no mapping (RFC 6887 §13.2); without the option it gets another port,
// which carries traffic. A free port with PREFER_FAILURE is given exactly.
func TestPCPPreferFailure(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan, other, gw := lab.LAN[0], lab.LAN[1], lab.GatewayLANAddr4
	serveTCP(t, lan, 7000, "own 7000")
	serveTCP(t, lan, 7001, "own 7001")
	serveTCP(t, other, 7000, "other 7000")
	serveTCP(t, other, 7001, "other 7001")

	if port := natpmpcMap(t, lab, other, 7000, 7000, "tcp", 600); port != 7000 {
		t.Fatalf("natpmpc on the other host got port %d; want 7000", port)
	}
	if r, _ := pcpAsk(t, other, gw, pcpMapWith(t, other, 9, 7001, 7001, pcp.Options{})); r.Result != pcp.Success || r.Map.ExternalPort != 7001 {
		t.Fatalf("the other host's MAP answered %+v; want SUCCESS on 7001", r)
	}

	for _, held := range []uint16{7000, 7001} {
		_, raw := pcpAsk(t, lan, gw, pcpMapWith(t, lan, 1, held, held, pcp.Options{PreferFailure: true}))
		pcpWantError(t, fmt.Sprintf("PREFER_FAILURE for held port %d", held), raw, pcp.CannotProvideExternal)
		through := fmt.Sprintf("%s:%d", lab.GatewayWANAddr4, held)
		if got, err := fetchTCP(lab.WAN, through); err != nil || got != fmt.Sprintf("other %d", held) {
			t.Fatalf("through %s after the refused request: %q, %v; want the holder's greeting", through, got, err)
		}
		r, _ := pcpAsk(t, lan, gw, pcpMapWith(t, lan, 1, held, held, pcp.Options{}))
		if r.Result != pcp.Success || r.Map.ExternalPort == held || r.Map.ExternalPort == 0 {
			t.Fatalf("MAP for held port %d without PREFER_FAILURE answered %+v; want SUCCESS on another port", held, r)
		}
		through = fmt.Sprintf("%s:%d", lab.GatewayWANAddr4, r.Map.ExternalPort)
		if got, err := fetchTCP(lab.WAN, through); err != nil || got != fmt.Sprintf("own %d", held) {
			t.Fatalf("through %s: %q, %v; want the requester's greeting", through, got, err)
		}
	}

	serveTCP(t, lan, 7002, "own 7002")
	r, _ := pcpAsk(t, lan, gw, pcpMapWith(t, lan, 1, 7002, 7002, pcp.Options{PreferFailure: true}))
	if r.Result != pcp.Success || r.Map.ExternalPort != 7002 {
		t.Fatalf("PREFER_FAILURE for the free port 7002 answered %+v; want SUCCESS on 7002", r)
	}
	if got, err := fetchTCP(lab.WAN, fmt.Sprintf("%s:7002", lab.GatewayWANAddr4)); err != nil || got != "own 7002" {
		t.Fatalf("through 7002: %q, %v", got, err)
	}
}

// TestPCPThirdParty: a MAP with THIRD_PARTY for another LAN host is
// NOT_AUTHORIZED, a long lifetime error, by default (RFC 6887 §13.1); after
// the configuration gains "allow third-party 198.51.100.10/32" (SIGHUP) the
// same request maps the other host's server, which the WAN host reaches
// through it, and the requester can delete it with its nonce.
func TestPCPThirdParty(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true})
	lan, other, gw := lab.LAN[0], lab.LAN[1], lab.GatewayLANAddr4
	serveTCP(t, other, 7100, "third party")
	req := pcpMapWith(t, lan, 3, 7100, 7100, pcp.Options{ThirdParty: other.Addr4})

	_, raw := pcpAsk(t, lan, gw, req)
	pcpWantError(t, "THIRD_PARTY by default", raw, pcp.NotAuthorized)
	if inKernel(inboundElements(t, lab), "tcp", 7100, fmt.Sprintf("%s:7100", other.Addr4)) {
		t.Fatal("the refused THIRD_PARTY mapping is in the kernel")
	}

	if err := d.Reload(t.Context(), "interface "+lab.GatewayWANLink, "listen on "+lab.GatewayLANLink,
		"allow third-party 198.51.100.10/32"); err != nil {
		t.Fatal(err)
	}
	r, _ := pcpAsk(t, lan, gw, req)
	if r.Result != pcp.Success || r.Map.ExternalPort == 0 || r.Options.ThirdParty != other.Addr4 {
		t.Fatalf("THIRD_PARTY allowed answered %+v; want SUCCESS echoing THIRD_PARTY %v", r, other.Addr4)
	}
	through := fmt.Sprintf("%s:%d", lab.GatewayWANAddr4, r.Map.ExternalPort)
	if got, err := fetchTCP(lab.WAN, through); err != nil || got != "third party" {
		t.Fatalf("the WAN host through %s got %q, %v; want the third party's greeting", through, got, err)
	}
	// The third party itself may not act for the requester.
	_, raw = pcpAsk(t, other, gw, pcpMapWith(t, other, 4, 7101, 7101, pcp.Options{ThirdParty: lan.Addr4}))
	pcpWantError(t, "THIRD_PARTY from a host without the rule", raw, pcp.NotAuthorized)

	del := pcpMapWith(t, lan, 3, 7100, 0, pcp.Options{ThirdParty: other.Addr4})
	binary.BigEndian.PutUint32(del[pcpOffLifetime:], 0)
	if r, _ = pcpAsk(t, lan, gw, del); r.Result != pcp.Success || r.Lifetime != 0 {
		t.Fatalf("THIRD_PARTY deletion answered %+v; want SUCCESS, lifetime 0", r)
	}
	if got, err := fetchTCP(lab.WAN, through); err == nil {
		t.Fatalf("after deletion the WAN host still reached the third party: %q", got)
	}
}
