package upnpsrv

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/upnp"
)

// failingFirewall refuses every change, as nftables does when the kernel
// says no.
type failingFirewall struct{}

func (failingFirewall) Apply(context.Context, []gateway.Mapping, []gateway.Mapping) error {
	return errors.New("netlink: operation not permitted")
}
func (failingFirewall) Reconcile(context.Context, []gateway.Mapping) (gateway.Reconciled, error) {
	return gateway.Reconciled{}, errors.New("netlink: operation not permitted")
}

func (failingFirewall) List(context.Context) ([]gateway.Mapping, error)       { return nil, nil }
func (failingFirewall) SetExternalAddress(context.Context, netip.Addr) error  { return nil }
func (failingFirewall) SetInterfaces(context.Context, string, []string) error { return nil }
func (failingFirewall) Watch(ctx context.Context, _, _ func()) error          { <-ctx.Done(); return ctx.Err() }
func (failingFirewall) Release() error                                        { return nil }
func (failingFirewall) Close() error                                          { return nil }

type step struct {
	client string
	act    upnp.Action
}

// actionTest is one control request and what it must get: the error code
// (0 for success) and some out arguments.
type actionTest struct {
	name    string
	version int
	foreign bool
	gateway gateway.Config // the table's configuration
	noStats bool           // without link statistics
	setup   []step         // requests that must succeed first
	client  string
	path    string // default ctlIP
	act     upnp.Action
	raw     string // a body sent instead of act's envelope, with act's SOAPACTION
	code    int
	want    map[string]string
	check   func(t *testing.T, table *gateway.Table, resp upnp.Response)
}

var ip2, ip1 = upnp.ServiceWANIP2, upnp.ServiceWANIP1

func action(service, name string, args ...string) upnp.Action {
	a := upnp.Action{ServiceType: service, Name: name}
	for i := 0; i+1 < len(args); i += 2 {
		a.Args = append(a.Args, upnp.Arg{Name: args[i], Value: args[i+1]})
	}
	return a
}

func withArg(a upnp.Action, name, value string) upnp.Action {
	args := append([]upnp.Arg(nil), a.Args...)
	for i := range args {
		if args[i].Name == name {
			args[i].Value = value
			return upnp.Action{ServiceType: a.ServiceType, Name: a.Name, Args: args}
		}
	}
	return upnp.Action{ServiceType: a.ServiceType, Name: a.Name, Args: append(args, upnp.Arg{Name: name, Value: value})}
}

func withoutArg(a upnp.Action, name string) upnp.Action {
	var args []upnp.Arg
	for _, arg := range a.Args {
		if arg.Name != name {
			args = append(args, arg)
		}
	}
	return upnp.Action{ServiceType: a.ServiceType, Name: a.Name, Args: args}
}

func lease(t *testing.T, table *gateway.Table, proto gateway.Protocol, eport uint16) gateway.Lease {
	t.Helper()
	l, ok := table.LookupExternal(proto, eport)
	if !ok {
		t.Fatalf("no lease of %v %d; table %v", proto, eport, leaseKeys(table))
	}
	return l
}

func noLease(t *testing.T, table *gateway.Table, proto gateway.Protocol, eport uint16) {
	t.Helper()
	if l, ok := table.LookupExternal(proto, eport); ok {
		t.Fatalf("lease of %v %d still there: %+v", proto, eport, l)
	}
}

func actionTests() []actionTest {
	tcp, udp := gateway.TCP, gateway.UDP
	mine := step{hostA, add(8080, "TCP", 8080, hostA, 3600)}
	theirs := step{hostB, add(9090, "TCP", 9090, hostB, 3600)}
	specific := func(svc string, eport uint16, proto string) upnp.Action {
		return upnp.GetSpecificPortMappingEntry(svc, "", eport, proto)
	}
	return []actionTest{
		// AddPortMapping.
		{name: "add", client: hostA, act: add(8080, "TCP", 8080, hostA, 3600),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				l := lease(t, table, tcp, 8080)
				if l.Internal != netip.MustParseAddrPort(hostA+":8080") || l.Origin != gateway.OriginUPnP || l.Description != "test" || l.Expires.IsZero() {
					t.Errorf("lease %+v", l)
				}
			}},
		{name: "add empty internal client is the client", client: hostA, act: add(8080, "UDP", 8081, "", 3600),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				if l := lease(t, table, udp, 8080); l.Internal != netip.MustParseAddrPort(hostA+":8081") {
					t.Errorf("lease %+v", l)
				}
			}},
		{name: "add again renews", setup: []step{mine}, client: hostA, act: withArg(add(8080, "TCP", 8080, hostA, 600), "NewPortMappingDescription", "renewed"),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				if l := lease(t, table, tcp, 8080); l.Description != "renewed" || time.Until(l.Expires) > 601*time.Second || table.Len() != 1 {
					t.Errorf("lease %+v, %d leases", l, table.Len())
				}
			}},
		{name: "add own port to another internal port replaces", setup: []step{mine}, client: hostA, act: add(8080, "TCP", 8090, hostA, 3600),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				if l := lease(t, table, tcp, 8080); l.Internal.Port() != 8090 || table.Len() != 1 {
					t.Errorf("lease %+v, %d leases", l, table.Len())
				}
			}},
		{name: "add v2 lease 0 is a week, capped by the policy", client: hostA, act: add(8080, "TCP", 8080, hostA, 0),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				if l := lease(t, table, tcp, 8080); l.Expires.IsZero() || time.Until(l.Expires) > gateway.DefaultMaxLifetime {
					t.Errorf("lease %+v", l)
				}
			}},
		{name: "add v2 lease above a week", client: hostA, act: add(8080, "TCP", 8080, hostA, 1<<31),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				if l := lease(t, table, tcp, 8080); l.Expires.IsZero() {
					t.Errorf("lease %+v", l)
				}
			}},
		{name: "add v1 lease 0 is permanent", version: 1, client: hostA, act: upnp.AddPortMapping(ip1, upnp.PortMapping{
			ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080, InternalClient: hostA, Enabled: true}),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				if l := lease(t, table, tcp, 8080); !l.Expires.IsZero() {
					t.Errorf("lease %+v", l)
				}
			}},
		{name: "add :1 request to :2 device lease 0 is a week", client: hostA, act: upnp.AddPortMapping(ip1, upnp.PortMapping{
			ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080, InternalClient: hostA, Enabled: true}),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				if l := lease(t, table, tcp, 8080); l.Expires.IsZero() {
					t.Errorf("lease %+v", l)
				}
			}},
		{name: "add foreign allowed", foreign: true, client: hostA, act: add(8080, "TCP", 8080, hostB, 3600),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				if l := lease(t, table, tcp, 8080); l.Internal.Addr() != netip.MustParseAddr(hostB) {
					t.Errorf("lease %+v", l)
				}
			}},
		{name: "add remote host 726", client: hostA, act: withArg(add(8080, "TCP", 8080, hostA, 3600), "NewRemoteHost", "192.0.2.7"), code: 726},
		{name: "add remote host * is the wildcard", client: hostA, act: withArg(add(8080, "TCP", 8080, hostA, 3600), "NewRemoteHost", "*")},
		{name: "add external port 0 716", client: hostA, act: add(0, "TCP", 8080, hostA, 3600), code: 716},
		{name: "add internal port 0 732", client: hostA, act: add(8080, "TCP", 0, hostA, 3600), code: 732},
		{name: "add :1 internal port 0 402", client: hostA, act: upnp.AddPortMapping(ip1, upnp.PortMapping{
			ExternalPort: 8080, Protocol: "TCP", InternalClient: hostA, Enabled: true, LeaseDuration: 60}), code: 402},
		{name: "add disabled 402", client: hostA, act: withArg(add(8080, "TCP", 8080, hostA, 3600), "NewEnabled", "0"), code: 402},
		{name: "add missing internal port 402", client: hostA, act: withoutArg(add(8080, "TCP", 8080, hostA, 3600), "NewInternalPort"), code: 402},
		{name: "add external port not a number 402", client: hostA, act: withArg(add(8080, "TCP", 8080, hostA, 3600), "NewExternalPort", "80a"), code: 402},
		{name: "add lease not a number 402", client: hostA, act: withArg(add(8080, "TCP", 8080, hostA, 3600), "NewLeaseDuration", "-1"), code: 402},
		{name: "add IPv6 internal client 402", foreign: true, client: hostA, act: add(8080, "TCP", 8080, "2001:db8::10", 3600), code: 402},
		{name: "add unspecified internal client 402", foreign: true, client: hostA, act: add(8080, "TCP", 8080, "0.0.0.0", 3600), code: 402},
		{name: "add host name internal client 402", foreign: true, client: hostA, act: add(8080, "TCP", 8080, "printer.lan", 3600), code: 402},
		{name: "add protocol 601", client: hostA, act: add(8080, "SCTP", 8080, hostA, 3600), code: 601},
		{name: "add foreign in secure mode 606", client: hostA, act: add(8080, "TCP", 8080, hostB, 3600), code: 606,
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) { noLease(t, table, tcp, 8080) }},
		{name: "add denied by the rules 606", client: hostA, act: add(1000, "TCP", 1000, hostA, 3600), code: 606},
		{name: "add denied by a deny rule 606", gateway: gateway.Config{Policy: gateway.Policy{Rules: []gateway.Rule{
			{Allow: false, ExternalPorts: gateway.PortRange{Low: 0, High: 65535}, Internal: netip.MustParsePrefix(hostA + "/32"), InternalPorts: gateway.PortRange{Low: 0, High: 65535}},
			{Allow: true, ExternalPorts: gateway.PortRange{Low: 1024, High: 65535}, Internal: netip.MustParsePrefix("198.51.100.0/24"), InternalPorts: gateway.PortRange{Low: 1024, High: 65535}},
		}}}, client: hostA, act: add(8080, "TCP", 8080, hostA, 3600), code: 606},
		{name: "add held by another host 718", setup: []step{theirs}, client: hostA, act: add(9090, "TCP", 9090, hostA, 3600), code: 718,
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				if l := lease(t, table, tcp, 9090); l.Internal.Addr() != netip.MustParseAddr(hostB) {
					t.Errorf("lease %+v", l)
				}
			}},
		{name: "add firewall refuses 501", gateway: gateway.Config{Firewall: failingFirewall{}}, client: hostA, act: add(8080, "TCP", 8080, hostA, 3600), code: 501},

		// AddAnyPortMapping.
		{name: "add any", client: hostA, act: upnp.AddAnyPortMapping(ip2, upnp.PortMapping{ExternalPort: 8080, Protocol: "TCP",
			InternalPort: 8080, InternalClient: hostA, Enabled: true, LeaseDuration: 3600}), want: map[string]string{"NewReservedPort": "8080"}},
		{name: "add any external port 0", client: hostA, act: upnp.AddAnyPortMapping(ip2, upnp.PortMapping{Protocol: "UDP",
			InternalPort: 5000, InternalClient: hostA, Enabled: true, LeaseDuration: 3600}),
			check: func(t *testing.T, table *gateway.Table, resp upnp.Response) {
				port, err := upnp.ReservedPort(resp)
				if err != nil || port < 1024 {
					t.Fatalf("ReservedPort = %d, %v", port, err)
				}
				lease(t, table, udp, port)
			}},
		{name: "add any taken port gets another", setup: []step{theirs}, client: hostA, act: upnp.AddAnyPortMapping(ip2, upnp.PortMapping{
			ExternalPort: 9090, Protocol: "TCP", InternalPort: 9090, InternalClient: hostA, Enabled: true, LeaseDuration: 3600}),
			check: func(t *testing.T, table *gateway.Table, resp upnp.Response) {
				if port, err := upnp.ReservedPort(resp); err != nil || port == 9090 {
					t.Fatalf("ReservedPort = %d, %v", port, err)
				}
			}},
		{name: "add any no port left 728", gateway: gateway.Config{Policy: gateway.Policy{Ports: gateway.PortRange{Low: 9090, High: 9090}}},
			setup: []step{theirs}, client: hostA, act: upnp.AddAnyPortMapping(ip2, upnp.PortMapping{
				ExternalPort: 9090, Protocol: "TCP", InternalPort: 9090, InternalClient: hostA, Enabled: true, LeaseDuration: 3600}), code: 728},
		{name: "add over the host quota 728", gateway: gateway.Config{Policy: gateway.Policy{MaxPerHost: 1}}, setup: []step{mine},
			client: hostA, act: add(8081, "TCP", 8081, hostA, 3600), code: 728},
		{name: "add any over the host quota 728", gateway: gateway.Config{Policy: gateway.Policy{MaxPerHost: 1}}, setup: []step{mine},
			client: hostA, act: upnp.AddAnyPortMapping(ip2, upnp.PortMapping{ExternalPort: 8081, Protocol: "TCP",
				InternalPort: 8081, InternalClient: hostA, Enabled: true, LeaseDuration: 3600}), code: 728},
		{name: "add renews at the host quota", gateway: gateway.Config{Policy: gateway.Policy{MaxPerHost: 1}}, setup: []step{mine},
			client: hostA, act: add(8080, "TCP", 8080, hostA, 3600)},
		{name: "add on a full table 728", gateway: gateway.Config{Policy: gateway.Policy{MaxLeases: 1}}, setup: []step{theirs},
			client: hostA, act: add(8080, "TCP", 8080, hostA, 3600), code: 728},
		{name: "add any on v1 device 401", version: 1, client: hostA, act: upnp.AddAnyPortMapping(ip1, upnp.PortMapping{
			Protocol: "TCP", InternalPort: 9090, InternalClient: hostA, Enabled: true, LeaseDuration: 3600}), code: 401},

		// DeletePortMapping.
		{name: "delete", setup: []step{mine}, client: hostA, act: upnp.DeletePortMapping(ip2, "", 8080, "TCP"),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) { noLease(t, table, tcp, 8080) }},
		{name: "delete :1", setup: []step{mine}, client: hostA, act: upnp.DeletePortMapping(ip1, "", 8080, "tcp")},
		{name: "delete missing 714", setup: []step{mine}, client: hostA, act: upnp.DeletePortMapping(ip2, "", 8080, "UDP"), code: 714},
		{name: "delete remote host 714", setup: []step{mine}, client: hostA, act: upnp.DeletePortMapping(ip2, "192.0.2.7", 8080, "TCP"), code: 714},
		{name: "delete port 0 402", client: hostA, act: upnp.DeletePortMapping(ip2, "", 0, "TCP"), code: 402},
		{name: "delete missing protocol 402", client: hostA, act: withoutArg(upnp.DeletePortMapping(ip2, "", 8080, "TCP"), "NewProtocol"), code: 402},
		{name: "delete another host's in secure mode 606", setup: []step{theirs}, client: hostA, act: upnp.DeletePortMapping(ip2, "", 9090, "TCP"), code: 606,
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) { lease(t, table, tcp, 9090) }},
		{name: "delete another host's when foreign allowed", foreign: true, setup: []step{theirs}, client: hostA, act: upnp.DeletePortMapping(ip2, "", 9090, "TCP"),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) { noLease(t, table, tcp, 9090) }},

		// DeletePortMappingRange.
		{name: "delete range own", setup: []step{mine, theirs, {hostA, add(8081, "TCP", 8081, hostA, 60)}}, client: hostA,
			act: upnp.DeletePortMappingRange(ip2, 8000, 9999, "TCP", false),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				if got := strings.Join(leaseKeys(table), ","); got != "TCP 9090" {
					t.Errorf("left %s; want TCP 9090", got)
				}
			}},
		{name: "delete range manage, foreign allowed", foreign: true, setup: []step{mine, theirs}, client: hostA,
			act: upnp.DeletePortMappingRange(ip2, 1024, 65535, "TCP", true),
			check: func(t *testing.T, table *gateway.Table, _ upnp.Response) {
				if table.Len() != 0 {
					t.Errorf("left %v", leaseKeys(table))
				}
			}},
		{name: "delete range manage in secure mode 606", setup: []step{mine, theirs}, client: hostA,
			act: upnp.DeletePortMappingRange(ip2, 1024, 65535, "TCP", true), code: 606},
		{name: "delete range only others' 730", setup: []step{theirs}, client: hostA, act: upnp.DeletePortMappingRange(ip2, 1024, 65535, "TCP", false), code: 730},
		{name: "delete range empty 730", client: hostA, act: upnp.DeletePortMappingRange(ip2, 1024, 65535, "UDP", false), code: 730},
		{name: "delete range start above end 733", setup: []step{mine}, client: hostA, act: upnp.DeletePortMappingRange(ip2, 9000, 8000, "TCP", false), code: 733},
		{name: "delete range manage not a boolean 402", client: hostA, act: withArg(upnp.DeletePortMappingRange(ip2, 1, 2, "TCP", false), "NewManage", "maybe"), code: 402},

		// GetSpecificPortMappingEntry.
		{name: "get specific", setup: []step{mine}, client: hostB, act: specific(ip2, 8080, "TCP"),
			want: map[string]string{"NewInternalPort": "8080", "NewInternalClient": hostA, "NewEnabled": "1", "NewPortMappingDescription": "test"},
			check: func(t *testing.T, _ *gateway.Table, resp upnp.Response) {
				if m, err := upnp.SpecificEntry(resp, 8080, "TCP"); err != nil || m.LeaseDuration == 0 || m.LeaseDuration > 3600 {
					t.Errorf("SpecificEntry = %+v, %v", m, err)
				}
			}},
		{name: "get specific permanent lease is 0", version: 1, setup: []step{{hostA, upnp.AddPortMapping(ip1, upnp.PortMapping{
			ExternalPort: 8080, Protocol: "TCP", InternalPort: 8080, InternalClient: hostA, Enabled: true})}}, client: hostA,
			act: specific(ip1, 8080, "TCP"), want: map[string]string{"NewLeaseDuration": "0"}},
		{name: "get specific missing 714", client: hostA, act: specific(ip2, 8080, "TCP"), code: 714},
		{name: "get specific port 0 402", client: hostA, act: specific(ip2, 0, "TCP"), code: 402},
		{name: "get specific protocol 601", client: hostA, act: specific(ip2, 8080, "ICMP"), code: 601},

		// GetGenericPortMappingEntry.
		{name: "get generic", setup: []step{theirs, mine, {hostA, add(8080, "UDP", 8080, hostA, 60)}}, client: hostA,
			act:  upnp.GetGenericPortMappingEntry(ip2, 2),
			want: map[string]string{"NewExternalPort": "8080", "NewProtocol": "UDP", "NewInternalClient": hostA, "NewRemoteHost": ""}},
		{name: "get generic first is TCP", setup: []step{{hostA, add(8080, "UDP", 8080, hostA, 60)}, theirs}, client: hostA,
			act: upnp.GetGenericPortMappingEntry(ip2, 0), want: map[string]string{"NewExternalPort": "9090", "NewProtocol": "TCP"}},
		{name: "get generic past the end 713", setup: []step{mine}, client: hostA, act: upnp.GetGenericPortMappingEntry(ip2, 1), code: 713},
		{name: "get generic empty 713", client: hostA, act: upnp.GetGenericPortMappingEntry(ip1, 0), code: 713},
		{name: "get generic negative 402", client: hostA, act: action(ip2, "GetGenericPortMappingEntry", "NewPortMappingIndex", "-1"), code: 402},
		{name: "get generic missing index 402", client: hostA, act: action(ip2, "GetGenericPortMappingEntry"), code: 402},

		// GetListOfPortMappings.
		{name: "list own", setup: []step{mine, theirs, {hostA, add(8081, "TCP", 8081, hostA, 60)}}, client: hostA,
			act: upnp.GetListOfPortMappings(ip2, 1024, 65535, "TCP", false, 0),
			check: func(t *testing.T, _ *gateway.Table, resp upnp.Response) {
				if got := listing(t, resp); got != "8080 8081" {
					t.Errorf("listed %q; want 8080 8081", got)
				}
			}},
		{name: "list manage", setup: []step{mine, theirs, {hostA, add(8081, "TCP", 8081, hostA, 60)}}, client: hostA,
			act: upnp.GetListOfPortMappings(ip2, 8081, 65535, "TCP", true, 0),
			check: func(t *testing.T, _ *gateway.Table, resp upnp.Response) {
				if got := listing(t, resp); got != "8081 9090" {
					t.Errorf("listed %q; want 8081 9090", got)
				}
			}},
		{name: "list bounded", setup: []step{mine, theirs, {hostA, add(8081, "TCP", 8081, hostA, 60)}}, client: hostA,
			act: upnp.GetListOfPortMappings(ip2, 0, 65535, "TCP", true, 2),
			check: func(t *testing.T, _ *gateway.Table, resp upnp.Response) {
				if got := listing(t, resp); got != "8080 8081" {
					t.Errorf("listed %q; want 8080 8081", got)
				}
			}},
		{name: "list nothing 730", setup: []step{mine}, client: hostA, act: upnp.GetListOfPortMappings(ip2, 1024, 65535, "UDP", true, 0), code: 730},
		{name: "list start above end 733", client: hostA, act: upnp.GetListOfPortMappings(ip2, 2000, 1000, "TCP", false, 0), code: 733},
		{name: "list number not a ui2 402", client: hostA, act: withArg(upnp.GetListOfPortMappings(ip2, 1, 2, "TCP", false, 0), "NewNumberOfPorts", "x"), code: 402},
		{name: "list on v1 device 401", version: 1, client: hostA, act: upnp.GetListOfPortMappings(ip1, 1, 2, "TCP", false, 0), code: 401},

		// The connection's state.
		{name: "external address", client: hostA, act: upnp.GetExternalIPAddress(ip2), want: map[string]string{"NewExternalIPAddress": extAddr}},
		{name: "status", client: hostA, act: upnp.GetStatusInfo(ip1),
			want: map[string]string{"NewConnectionStatus": "Connected", "NewLastConnectionError": "ERROR_NONE"}},
		{name: "connection type", client: hostA, act: action(ip2, "GetConnectionTypeInfo"),
			want: map[string]string{"NewConnectionType": "IP_Routed", "NewPossibleConnectionTypes": "IP_Routed"}},
		{name: "NAT RSIP", client: hostA, act: action(ip2, "GetNATRSIPStatus"), want: map[string]string{"NewRSIPAvailable": "0", "NewNATEnabled": "1"}},
		{name: "set connection type 606", client: hostA, act: action(ip2, "SetConnectionType", "NewConnectionType", "IP_Bridged"), code: 606},
		{name: "request connection 606", client: hostA, act: action(ip2, "RequestConnection"), code: 606},
		{name: "force termination 606", client: hostA, act: action(ip2, "ForceTermination"), code: 606},
		{name: "query state variable", client: hostA, act: action(controlNS, "QueryStateVariable", "varName", "ConnectionStatus"),
			want: map[string]string{"return": "Connected"}},
		{name: "query state variable unknown 404", client: hostA, act: action(controlNS, "QueryStateVariable", "varName", "Uptime"), code: 404},

		// WANCommonInterfaceConfig:1.
		{name: "link properties", path: ctlCommon, client: hostA, act: action(upnp.ServiceWANCommon1, "GetCommonLinkProperties"),
			want: map[string]string{"NewWANAccessType": "Ethernet", "NewLayer1UpstreamMaxBitRate": "1000000000", "NewPhysicalLinkStatus": "Up"}},
		{name: "bytes sent roll over at 2^32", path: ctlCommon, client: hostA, act: action(upnp.ServiceWANCommon1, "GetTotalBytesSent"),
			want: map[string]string{"NewTotalBytesSent": "5"}},
		{name: "bytes received", path: ctlCommon, client: hostA, act: action(upnp.ServiceWANCommon1, "GetTotalBytesReceived"),
			want: map[string]string{"NewTotalBytesReceived": "7"}},
		{name: "packets sent", path: ctlCommon, client: hostA, act: action(upnp.ServiceWANCommon1, "GetTotalPacketsSent"),
			want: map[string]string{"NewTotalPacketsSent": "3"}},
		{name: "packets received", path: ctlCommon, client: hostA, act: action(upnp.ServiceWANCommon1, "GetTotalPacketsReceived"),
			want: map[string]string{"NewTotalPacketsReceived": "4"}},
		{name: "counters unknown 501", noStats: true, path: ctlCommon, client: hostA, act: action(upnp.ServiceWANCommon1, "GetTotalBytesSent"), code: 501},
		{name: "link properties unknown", noStats: true, path: ctlCommon, client: hostA, act: action(upnp.ServiceWANCommon1, "GetCommonLinkProperties"),
			want: map[string]string{"NewLayer1UpstreamMaxBitRate": "0", "NewPhysicalLinkStatus": "Up"}},

		// Layer3Forwarding:1.
		{name: "default connection service", path: ctlL3F, client: hostA, act: action(serviceL3F1, "GetDefaultConnectionService"),
			check: func(t *testing.T, _ *gateway.Table, resp upnp.Response) {
				v, _ := resp.Get("NewDefaultConnectionService")
				if !strings.HasPrefix(v, "uuid:") || !strings.HasSuffix(v, ":WANConnectionDevice:2,"+serviceIDWANIP) {
					t.Errorf("NewDefaultConnectionService = %q", v)
				}
			}},
		{name: "set default connection service other device 720", path: ctlL3F, client: hostA,
			act: action(serviceL3F1, "SetDefaultConnectionService", "NewDefaultConnectionService", "uuid:x:WANConnectionDevice:1,"+serviceIDWANIP), code: 720},

		// Requests that are not actions of the service.
		{name: "unknown action 401", client: hostA, act: action(ip2, "Frobnicate"), code: 401},
		{name: "other service type 401", client: hostA, act: upnp.GetExternalIPAddress(upnp.ServiceWANPPP1), code: 401},
		{name: ":2 request to v1 device 401", version: 1, client: hostA, act: upnp.GetExternalIPAddress(ip2), code: 401},
		{name: "action of another service 401", path: ctlCommon, client: hostA, act: upnp.GetExternalIPAddress(ip2), code: 401},
		{name: "SOAPACTION names another action 401", client: hostA, act: upnp.GetExternalIPAddress(ip2),
			raw: string(upnp.GetStatusInfo(ip2).AppendEnvelope(nil)), code: 401},
		{name: "no SOAPACTION 401", client: hostA, act: upnp.Action{}, raw: string(upnp.GetStatusInfo(ip2).AppendEnvelope(nil)), code: 401},
		{name: "truncated XML 402", client: hostA, act: upnp.GetStatusInfo(ip2), raw: `<s:Envelope><s:Body><u:GetStatusInfo`, code: 402},
		{name: "not SOAP 402", client: hostA, act: upnp.GetStatusInfo(ip2), raw: `<html><body>GetStatusInfo</body></html>`, code: 402},
		{name: "empty body 402", client: hostA, act: upnp.GetStatusInfo(ip2), raw: " ", code: 402},
	}
}

// listing returns the external ports of a GetListOfPortMappings answer.
func listing(t *testing.T, resp upnp.Response) string {
	t.Helper()
	v, _ := resp.Get(upnp.ArgPortListing)
	ms, err := upnp.ParsePortListing(v)
	if err != nil {
		t.Fatalf("ParsePortListing(%q): %v", v, err)
	}
	var ports []string
	for _, m := range ms {
		ports = append(ports, strconv.Itoa(int(m.ExternalPort)))
	}
	return strings.Join(ports, " ")
}

func TestActions(t *testing.T) {
	for _, c := range cores() {
		t.Run(c.name, func(t *testing.T) {
			for _, tt := range actionTests() {
				t.Run(tt.name, func(t *testing.T) {
					table := newTable(t, tt.gateway)
					cfg := testConfig(t)
					cfg.Version, cfg.AllowForeign = tt.version, tt.foreign
					if tt.noStats {
						cfg.LinkStats = nil
					}
					s := startServer(t, cfg, table, c.wrap(table))
					for _, st := range tt.setup {
						mustCall(t, s, st.client, ctlIP, st.act)
					}
					path := tt.path
					if path == "" {
						path = ctlIP
					}
					var resp upnp.Response
					var err error
					if tt.raw != "" {
						w := serve(s, tt.client, http.MethodPost, path, http.Header{"Soapaction": {tt.act.SOAPAction()}}, []byte(tt.raw))
						if tt.act.Name == "" {
							w = serve(s, tt.client, http.MethodPost, path, nil, []byte(tt.raw))
						}
						if w.Code != http.StatusInternalServerError {
							t.Fatalf("HTTP %d; want 500", w.Code)
						}
						_, err = upnp.ParseResponse(w.Body, "")
					} else {
						resp, err = call(t, s, tt.client, path, tt.act)
					}
					if got := codeOf(err); got != tt.code {
						t.Fatalf("%s = %v (code %d); want code %d", tt.act.Name, err, got, tt.code)
					}
					for k, v := range tt.want {
						if got, ok := resp.Get(k); !ok || got != v {
							t.Errorf("%s = %q (%v); want %q", k, got, ok, v)
						}
					}
					if tt.check != nil {
						tt.check(t, table, resp)
					}
				})
			}
		})
	}
}

// TestNotApplicable documents the error codes of the port-mapping actions
// that this gateway never answers, each with the reason.
func TestNotApplicable(t *testing.T) {
	for code, why := range map[upnp.ErrorCode]string{
		upnp.WildCardNotPermittedInSrcIP:      "715: a wildcard remote host is what the gateway supports; a specific one is 726",
		upnp.SamePortValuesRequired:           "724: external and internal ports may differ",
		upnp.OnlyPermanentLeasesSupported:     "725: leases of any length are supported",
		upnp.ExternalPortOnlySupportsWildcard: "727: specific external ports are supported",
		upnp.ConflictWithOtherMechanisms:      "729: NAT-PMP, PCP and UPnP share one table; a port another mechanism holds is a plain 718",
		upnp.ReadOnly:                         "731: nothing is read-only that a client may write; SetConnectionType is 606",
	} {
		t.Logf("%d %v not used: %s", int(code), code, why)
	}
}

// TestSameMappingFromNATPMP: a port that a host holds over NAT-PMP is its
// own over UPnP too; another host gets 718.
func TestSameMappingFromNATPMP(t *testing.T) {
	table := newTable(t, gateway.Config{})
	s := startServer(t, Config{}, table, nil)
	if _, err := table.Map(context.Background(), gateway.MapRequest{Protocol: gateway.UDP, Internal: netip.MustParseAddrPort(hostB + ":5000"),
		ExternalPort: 5000, Lifetime: time.Hour, Origin: gateway.OriginNATPMP}); err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, s, hostA, ctlIP, add(5000, "UDP", 5000, hostA, 60)); codeOf(err) != 718 {
		t.Errorf("another host's AddPortMapping = %v; want 718", err)
	}
	resp := mustCall(t, s, hostA, ctlIP, upnp.GetGenericPortMappingEntry(ip2, 0))
	if d, _ := resp.Get("NewPortMappingDescription"); d != "NATPMP" {
		t.Errorf("NAT-PMP mapping's description %q; want NATPMP", d)
	}
	mustCall(t, s, hostB, ctlIP, add(5000, "UDP", 5000, hostB, 60))
	if l := lease(t, table, gateway.UDP, 5000); l.Internal != netip.MustParseAddrPort(hostB+":5000") {
		t.Errorf("lease %+v", l)
	}
}

// TestLongDescriptions: a description is kept up to 256 bytes, cut at a
// character boundary, and a listing of many long ones stays within what a
// control point reads (upnp.MaxResponseSize), listing fewer entries.
func TestLongDescriptions(t *testing.T) {
	table := newTable(t, gateway.Config{})
	s := startServer(t, Config{}, table, nil)
	long := strings.Repeat("é", 300) // 600 bytes
	const n = 900
	for i := range n {
		port := uint16(20000 + i)
		mustCall(t, s, hostA, ctlIP, withArg(add(port, "TCP", port, hostA, 3600), "NewPortMappingDescription", long))
	}
	l := lease(t, table, gateway.TCP, 20000)
	if len(l.Description) != maxDescription || l.Description != strings.Repeat("é", maxDescription/2) {
		t.Errorf("description kept: %d bytes", len(l.Description))
	}
	w := serve(s, hostA, http.MethodPost, ctlIP, http.Header{"Soapaction": {upnp.GetListOfPortMappings(ip2, 0, 65535, "TCP", true, 0).SOAPAction()}},
		upnp.GetListOfPortMappings(ip2, 0, 65535, "TCP", true, 0).AppendEnvelope(nil))
	if w.Code != http.StatusOK || w.Body.Len() > upnp.MaxResponseSize {
		t.Fatalf("GetListOfPortMappings: HTTP %d, %d bytes", w.Code, w.Body.Len())
	}
	resp, err := upnp.ParseResponse(w.Body, upnp.ActionGetListOfPortMappings)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(listing(t, resp))
	if len(got) == 0 || len(got) >= n || got[0] != "20000" || got[len(got)-1] != strconv.Itoa(20000+len(got)-1) {
		t.Errorf("listed %d entries from %v", len(got), got[:min(len(got), 3)])
	}
}

// TestSetAllowForeign: secure mode changes while serving (SIGHUP): a
// foreign InternalClient is mapped while foreign addresses are allowed and
// refused with 606 once secure mode is on, and the other way round.
func TestSetAllowForeign(t *testing.T) {
	cfg := testConfig(t)
	cfg.AllowForeign = true
	s := startServer(t, cfg, nil, nil)
	mustCall(t, s, hostA, ctlIP, add(8080, "TCP", 8080, hostB, 3600))
	s.SetAllowForeign(false)
	if _, err := call(t, s, hostA, ctlIP, add(8081, "TCP", 8081, hostB, 3600)); codeOf(err) != 606 {
		t.Fatalf("foreign AddPortMapping after SetAllowForeign(false) = %v; want 606", err)
	}
	s.SetAllowForeign(true)
	mustCall(t, s, hostA, ctlIP, add(8081, "TCP", 8081, hostB, 3600))
}
