package client_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/portlease/portlease/client"
	"github.com/portlease/portlease/natpmp"
)

// An application keeps its port mapped for as long as it runs, and deletes
// the mapping on the way out. In a real program the Config is empty but for
// a Logger: the client finds the router by the default routes. Here the
// "router" is a tiny NAT-PMP responder on 127.0.0.1, so that the example
// runs anywhere without touching the network.
func Example() {
	gw := fakeGateway()
	defer gw.Close()

	c, err := client.New(client.Config{
		Method:       client.NATPMP,
		Gateway:      netip.MustParseAddr("127.0.0.1"),
		NATPMPPort:   uint16(gw.LocalAddr().(*net.UDPAddr).Port),
		AnnounceAddr: netip.MustParseAddrPort("127.0.0.1:0"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	ctx := context.Background()
	m, err := c.Keep(ctx, client.Request{Protocol: client.TCP, InternalPort: 4662, Description: "eD2k"})
	if m == nil {
		fmt.Println(err)
		return
	}
	ev := <-c.Events()
	fmt.Println(ev.Kind, ev.Result.Protocol, ev.Result.External, "via", ev.Result.Method, "for", ev.Result.Lifetime)
	ev = <-c.Events()
	fmt.Println(ev.Kind, ev.ExternalAddress)

	if err := m.Close(ctx); err != nil { // deletes it from the router
		fmt.Println(err)
	}
	fmt.Println((<-c.Events()).Kind)
	// Output:
	// Mapped TCP 203.0.113.1:4662 via natpmp for 2h0m0s
	// ExternalAddressChanged 203.0.113.1
	// Deleted
}

// fakeGateway answers NAT-PMP requests on 127.0.0.1 like a router whose
// external address is 203.0.113.1, until it is closed.
func fakeGateway() *net.UDPConn {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	start := time.Now()
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed
			}
			req, err := natpmp.ParseRequest(buf[:n])
			if err != nil {
				continue
			}
			epoch := uint32(time.Since(start) / time.Second)
			var out []byte
			if req.Opcode == natpmp.OpExternalAddress {
				out, _ = natpmp.ExternalAddressResponse{Epoch: epoch, Address: netip.MustParseAddr("203.0.113.1")}.AppendBinary(nil)
			} else {
				m := req.Mapping
				resp := natpmp.MappingResponse{Opcode: m.Opcode, Epoch: epoch, InternalPort: m.InternalPort}
				if !m.IsDelete() {
					resp.ExternalPort, resp.Lifetime = m.SuggestedExternalPort, m.Lifetime
				}
				out, _ = resp.AppendBinary(nil)
			}
			conn.WriteToUDPAddrPort(out, from)
		}
	}()
	return conn
}
