package upnp

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// parseGoldenRequest reads a golden request of testdata/soap whose
// SOAPACTION is serviceType#action.
func parseGoldenRequest(t *testing.T, name, serviceType, action string) Action {
	t.Helper()
	a, err := ParseActionRequest(bytes.NewReader(golden(t, "soap/"+name)), `"`+serviceType+"#"+action+`"`)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return a
}

// TestPinholeArgsGoldens reads AddPinhole and GetOutboundPinholeTimeout
// as upnpc -6 -A and -G send them.
func TestPinholeArgsGoldens(t *testing.T) {
	client := netip.MustParseAddr("2001:db8:1::10")
	for _, tt := range []struct {
		file, action string
		want         Pinhole
	}{
		{"req-addpinhole-miniupnpc.xml", ActionAddPinhole,
			Pinhole{InternalClient: client, InternalPort: 8080, Protocol: PinholeTCP, LeaseTime: 3600}},
		{"req-addpinhole-filtered-miniupnpc.xml", ActionAddPinhole,
			Pinhole{RemoteHost: netip.MustParseAddr("2001:db8:2::20"), RemotePort: 4000, InternalClient: client,
				InternalPort: 8080, Protocol: PinholeUDP, LeaseTime: 600}},
		{"req-getoutboundpinholetimeout-miniupnpc.xml", ActionGetOutboundPinholeTimeout,
			Pinhole{InternalClient: client, InternalPort: 8080, Protocol: PinholeTCP}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			a := parseGoldenRequest(t, tt.file, ServiceWANIPv6FC1, tt.action)
			got, err := PinholeArgs(a)
			if err != nil || got != tt.want {
				t.Fatalf("PinholeArgs = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestUniqueIDGoldens reads the UniqueID (and NewLeaseTime) of upnpc -6
// -U, -D, -C and -K.
func TestUniqueIDGoldens(t *testing.T) {
	for file, action := range map[string]string{
		"req-updatepinhole-miniupnpc.xml":       ActionUpdatePinhole,
		"req-deletepinhole-miniupnpc.xml":       ActionDeletePinhole,
		"req-checkpinholeworking-miniupnpc.xml": ActionCheckPinholeWorking,
		"req-getpinholepackets-miniupnpc.xml":   ActionGetPinholePackets,
	} {
		a := parseGoldenRequest(t, file, ServiceWANIPv6FC1, action)
		if id, err := UniqueIDArg(a); err != nil || id != 1 {
			t.Errorf("%s: UniqueIDArg = %d, %v; want 1", file, id, err)
		}
		if action != ActionUpdatePinhole {
			continue
		}
		if lt, err := NewLeaseTimeArg(a); err != nil || lt != 7200 {
			t.Errorf("%s: NewLeaseTimeArg = %d, %v; want 7200", file, lt, err)
		}
	}
	a := parseGoldenRequest(t, "req-getfirewallstatus-miniupnpc.xml", ServiceWANIPv6FC1, ActionGetFirewallStatus)
	if len(a.Args) != 0 {
		t.Errorf("GetFirewallStatus args %+v; want none", a.Args)
	}
}

// TestPinholeArgs checks the device side's refusals and wildcards.
func TestPinholeArgs(t *testing.T) {
	base := func(mod func(args map[string]string)) Action {
		args := map[string]string{ArgRemoteHost: "", ArgRemotePort: "0", ArgInternalClient: "2001:db8:1::10",
			ArgInternalPort: "8080", ArgProtocol: "6", ArgLeaseTime: "3600"}
		mod(args)
		a := Action{ServiceType: ServiceWANIPv6FC1, Name: ActionAddPinhole}
		for _, n := range []string{ArgRemoteHost, ArgRemotePort, ArgInternalClient, ArgInternalPort, ArgProtocol, ArgLeaseTime} {
			if v, ok := args[n]; ok {
				a.Args = append(a.Args, Arg{Name: n, Value: v})
			}
		}
		return a
	}
	for _, tt := range []struct {
		name   string
		mod    func(map[string]string)
		code   ErrorCode // 0: accepted
		detail string
		check  func(Pinhole) bool
	}{
		{"star remote host is the wildcard", func(m map[string]string) { m[ArgRemoteHost] = " * " }, 0, "",
			func(p Pinhole) bool { return !p.RemoteHost.IsValid() }},
		{"missing remote host is the wildcard", func(m map[string]string) { delete(m, ArgRemoteHost) }, 0, "",
			func(p Pinhole) bool { return !p.RemoteHost.IsValid() }},
		{"zone dropped", func(m map[string]string) { m[ArgRemoteHost] = "fe80::1%eth0" }, 0, "",
			func(p Pinhole) bool { return p.RemoteHost == netip.MustParseAddr("fe80::1") }},
		{"empty internal client is the zero Addr", func(m map[string]string) { m[ArgInternalClient] = "" }, 0, "",
			func(p Pinhole) bool { return !p.InternalClient.IsValid() }},
		{"protocol by name", func(m map[string]string) { m[ArgProtocol] = "udp" }, 0, "",
			func(p Pinhole) bool { return p.Protocol == PinholeUDP }},
		{"protocol wildcard decoded", func(m map[string]string) { m[ArgProtocol] = "65535" }, 0, "",
			func(p Pinhole) bool { return p.Protocol == PinholeAnyProtocol }},
		{"IPv4 remote host", func(m map[string]string) { m[ArgRemoteHost] = "203.0.113.5" }, InvalidArgs, ArgRemoteHost, nil},
		{"v4-mapped internal client", func(m map[string]string) { m[ArgInternalClient] = "::ffff:198.51.100.10" }, InvalidArgs, ArgInternalClient, nil},
		{"host name", func(m map[string]string) { m[ArgInternalClient] = "host.lan" }, InvalidArgs, ArgInternalClient, nil},
		{"(null) remote host", func(m map[string]string) { m[ArgRemoteHost] = "(null)" }, InvalidArgs, ArgRemoteHost, nil},
		{"missing remote port", func(m map[string]string) { delete(m, ArgRemotePort) }, InvalidArgs, ArgRemotePort, nil},
		{"port out of range", func(m map[string]string) { m[ArgInternalPort] = "65536" }, InvalidArgs, ArgInternalPort, nil},
		{"protocol name unknown", func(m map[string]string) { m[ArgProtocol] = "SCTP" }, InvalidArgs, ArgProtocol, nil},
		{"protocol out of range", func(m map[string]string) { m[ArgProtocol] = "70000" }, InvalidArgs, ArgProtocol, nil},
		{"lease missing", func(m map[string]string) { delete(m, ArgLeaseTime) }, InvalidArgs, ArgLeaseTime, nil},
		{"lease 0", func(m map[string]string) { m[ArgLeaseTime] = "0" }, ArgumentValueOutOfRange, ArgLeaseTime, nil},
		{"lease above a day", func(m map[string]string) { m[ArgLeaseTime] = "86401" }, ArgumentValueOutOfRange, ArgLeaseTime, nil},
		{"lease negative", func(m map[string]string) { m[ArgLeaseTime] = "-1" }, InvalidArgs, ArgLeaseTime, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PinholeArgs(base(tt.mod))
			if tt.code == 0 {
				if err != nil || !tt.check(p) {
					t.Fatalf("PinholeArgs = %+v, %v", p, err)
				}
				return
			}
			var f *Fault
			if !errors.As(err, &f) || f.Code != int(tt.code) || !strings.Contains(f.Description, tt.detail) {
				t.Fatalf("PinholeArgs = %+v, %v; want fault %d naming %s", p, err, tt.code, tt.detail)
			}
		})
	}
	if _, err := PinholeArgs(DeletePinhole(3)); codeOfErr(err) != InvalidAction {
		t.Errorf("PinholeArgs(DeletePinhole) = %v; want 401", err)
	}
}

func codeOfErr(err error) ErrorCode {
	c, _ := FaultCode(err)
	return c
}

// TestPinholeActionsRoundTrip builds every action, parses it back as the
// device does and decodes the arguments.
func TestPinholeActionsRoundTrip(t *testing.T) {
	p := Pinhole{RemoteHost: netip.MustParseAddr("2001:db8:2::20"), RemotePort: 4000,
		InternalClient: netip.MustParseAddr("2001:db8:1::10"), InternalPort: 8080, Protocol: PinholeUDP, LeaseTime: 86400}
	for _, a := range []Action{AddPinhole(p), GetOutboundPinholeTimeout(p)} {
		back, err := ParseActionRequest(bytes.NewReader(a.AppendEnvelope(nil)), a.SOAPAction())
		if err != nil {
			t.Fatal(err)
		}
		got, err := PinholeArgs(back)
		want := p
		if a.Name == ActionGetOutboundPinholeTimeout {
			want.LeaseTime = 0
		}
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", a.Name, got, err, want)
		}
	}
	if v := AddPinhole(Pinhole{}).Args[0].Value; v != "" {
		t.Errorf("wildcard RemoteHost sent as %q; want empty", v)
	}
	for _, a := range []Action{UpdatePinhole(65535, 1), DeletePinhole(65535), GetPinholePackets(65535), CheckPinholeWorking(65535)} {
		back, err := ParseActionRequest(bytes.NewReader(a.AppendEnvelope(nil)), a.SOAPAction())
		if err != nil {
			t.Fatal(err)
		}
		if id, err := UniqueIDArg(back); err != nil || id != 65535 {
			t.Errorf("%s: UniqueIDArg = %d, %v", a.Name, id, err)
		}
	}
	if _, err := NewLeaseTimeArg(UpdatePinhole(1, 0)); codeOfErr(err) != ArgumentValueOutOfRange {
		t.Errorf("NewLeaseTimeArg(0) = %v; want 601", err)
	}
	if _, err := UniqueIDArg(Action{Name: ActionDeletePinhole}); codeOfErr(err) != InvalidArgs {
		t.Errorf("UniqueIDArg(missing) = %v; want 402", err)
	}
}

// TestPinholeAnswers decodes the answers a control point gets.
func TestPinholeAnswers(t *testing.T) {
	r := func(name, value string) Response { return Response{Args: []Arg{{Name: name, Value: value}}} }
	if id, err := UniqueID(r(ArgUniqueID, " 12 ")); err != nil || id != 12 {
		t.Errorf("UniqueID = %d, %v", id, err)
	}
	if _, err := UniqueID(r(ArgUniqueID, "65536")); !errors.Is(err, ErrMalformed) {
		t.Errorf("UniqueID(65536) = %v; want ErrMalformed", err)
	}
	fw := Response{Args: []Arg{{Name: ArgFirewallEnabled, Value: "1"}, {Name: ArgInboundPinholeAllowed, Value: "false"}}}
	if e, in, err := FirewallStatus(fw); err != nil || !e || in {
		t.Errorf("FirewallStatus = %v %v %v", e, in, err)
	}
	if _, _, err := FirewallStatus(r(ArgFirewallEnabled, "1")); !errors.Is(err, ErrMalformed) {
		t.Errorf("FirewallStatus without InboundPinholeAllowed = %v", err)
	}
	if v, err := OutboundPinholeTimeout(r(ArgOutboundPinholeTimeout, "120")); err != nil || v != 120 {
		t.Errorf("OutboundPinholeTimeout = %d, %v", v, err)
	}
	if v, err := PinholePackets(r(ArgPinholePackets, "4294967295")); err != nil || v != 1<<32-1 {
		t.Errorf("PinholePackets = %d, %v", v, err)
	}
	if w, err := IsWorking(r(ArgIsWorking, "1")); err != nil || !w {
		t.Errorf("IsWorking = %v, %v", w, err)
	}
}

// TestPinholeErrorNames checks the names of the codes of
// WANIPv6FirewallControl:1.
func TestPinholeErrorNames(t *testing.T) {
	for c, want := range map[ErrorCode]string{
		701: "PinholeSpaceExhausted", 702: "FirewallDisabled", 703: "InboundPinholeNotAllowed", 704: "NoSuchEntry",
		705: "ProtocolNotSupported", 706: "InternalPortWildcardingNotAllowed", 707: "ProtocolWildcardingNotAllowed",
		708: "WildCardNotPermittedInSrcIP", 709: "NoTrafficReceived",
	} {
		if got := c.String(); got != want {
			t.Errorf("%d: %q; want %q", c, got, want)
		}
	}
}
