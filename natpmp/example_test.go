package natpmp_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/portlease/portlease/natpmp"
)

// A gateway front-end decodes each datagram, answers what it refuses as
// ParseRequest says, and serves the rest.
func ExampleParseRequest() {
	const epoch = 3600
	for _, pkt := range [][]byte{
		{0, 2, 0, 0, 0, 80, 0, 80, 0, 0, 0x1c, 0x20}, // map TCP 80 for 7200 s
		{1, 0},                   // version 1
		{0, 1, 0, 0, 0xc8, 0xd5}, // map UDP, too short
		{0, 0x80, 0, 0},          // a response: ignored
	} {
		var out []byte
		req, err := natpmp.ParseRequest(pkt)
		var re *natpmp.RequestError
		switch {
		case errors.As(err, &re) && !re.Reply:
			fmt.Printf("%x: drop (%v)\n", pkt, err)
			continue
		case errors.As(err, &re):
			out = natpmp.AppendErrorResponse(nil, re.Op, re.Code, epoch, pkt)
		case req.Opcode == natpmp.OpExternalAddress:
			out, _ = natpmp.ExternalAddressResponse{Epoch: epoch,
				Address: netip.MustParseAddr("203.0.113.1")}.AppendBinary(nil)
		default:
			m := req.Mapping // the lease core decides; here it grants the request
			out, _ = natpmp.MappingResponse{Opcode: m.Opcode, Epoch: epoch, InternalPort: m.InternalPort,
				ExternalPort: m.SuggestedExternalPort, Lifetime: m.Lifetime}.AppendBinary(nil)
		}
		fmt.Printf("%x: answer %x\n", pkt, out)
	}
	// Output:
	// 000200000050005000001c20: answer 0082000000000e100050005000001c20
	// 0100: answer 0080000100000e10
	// 00010000c8d5: answer 0081000500000e10c8d5000000000000
	// 00800000: drop (natpmp: not a request: external-address-response)
}

// A client decodes what came from its gateway's address and port.
func ExampleParseResponse() {
	for _, pkt := range [][]byte{
		{0, 0x82, 0, 0, 0, 0, 0x0e, 0x10, 0, 80, 0xf0, 0, 0, 0, 0x1c, 0x20},
		{0, 0x82, 0, 4, 0, 0, 0x0e, 0x10, 0, 80, 0, 0, 0, 0, 0, 0},
		{2, 0x81, 0, 1, 0, 0, 0, 0, 0, 0, 0x0e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		resp, err := natpmp.ParseResponse(pkt)
		if errors.Is(err, natpmp.ErrPCPServer) {
			fmt.Println("the gateway speaks PCP only")
			continue
		}
		if err != nil {
			fmt.Println("drop:", err)
			continue
		}
		if err := resp.Err(); err != nil {
			fmt.Printf("internal port %d: %v\n", resp.Mapping.InternalPort, err)
			continue
		}
		fmt.Printf("%v %d -> %d for %d s\n", resp.Mapping.Opcode, resp.Mapping.InternalPort,
			resp.Mapping.ExternalPort, resp.Mapping.Lifetime)
	}
	// Output:
	// map-tcp 80 -> 61440 for 7200 s
	// internal port 80: natpmp: map-tcp: out of resources (result code 4)
	// the gateway speaks PCP only
}

func ExampleAnnounceIntervals() {
	fmt.Println(natpmp.AnnounceAddr(), natpmp.AnnounceIntervals())
	// Output:
	// 224.0.0.1:5350 [0s 250ms 500ms 1s 2s 4s 8s 16s 32s 1m4s]
}
