package upnpsrv

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/upnp"
)

// walkAll lists the table as control points do: GetGenericPortMappingEntry
// from index 0 until 713, calling between after each entry. It returns the
// entries as "TCP 8080".
func walkAll(t *testing.T, s *Server, client string, between func(i int)) []string {
	t.Helper()
	var got []string
	for i := 0; ; i++ {
		resp, err := call(t, s, client, ctlIP, upnp.GetGenericPortMappingEntry(ip2, i))
		if codeOf(err) == int(upnp.SpecifiedArrayIndexInvalid) {
			return got
		}
		if err != nil {
			t.Fatalf("index %d: %v", i, err)
		}
		m, err := upnp.GenericEntry(resp)
		if err != nil {
			t.Fatalf("index %d: %v", i, err)
		}
		got = append(got, m.Protocol+" "+strconv.Itoa(int(m.ExternalPort)))
		if between != nil {
			between(i)
		}
		if i > 1<<16 {
			t.Fatal("the walk does not end")
		}
	}
}

func TestThousandMappingsByIndex(t *testing.T) {
	for _, c := range cores() {
		t.Run(c.name, func(t *testing.T) {
			table := newTable(t, gateway.Config{})
			s := startServer(t, Config{}, table, c.wrap(table))
			const n = 1000
			var want []string
			for _, proto := range []string{"TCP", "UDP"} {
				for i := range n / 2 {
					port := uint16(30000 + i)
					mustCall(t, s, hostA, ctlIP, add(port, proto, port, hostA, 3600))
					want = append(want, fmt.Sprintf("%s %d", proto, port))
				}
			}
			got := walkAll(t, s, hostA, nil)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("walk listed %d entries; want %d in (protocol, port) order\n got %v", len(got), len(want), got)
			}
			// GetListOfPortMappings lists them too, in one answer a
			// protocol.
			resp := mustCall(t, s, hostA, ctlIP, upnp.GetListOfPortMappings(ip2, 0, 65535, "UDP", false, 0))
			v, _ := resp.Get(upnp.ArgPortListing)
			ms, err := upnp.ParsePortListing(v)
			if err != nil || len(ms) != n/2 || ms[0].ExternalPort != 30000 || ms[n/2-1].ExternalPort != 30000+n/2-1 {
				t.Fatalf("GetListOfPortMappings listed %d entries, %v", len(ms), err)
			}
		})
	}
}

// TestGenericWalkWhileTableChanges: mappings are added and removed before
// and after the walk's position while a client walks the indexes; every
// mapping that stays is listed exactly once, and no mapping twice.
func TestGenericWalkWhileTableChanges(t *testing.T) {
	for _, c := range cores() {
		t.Run(c.name, func(t *testing.T) {
			table := newTable(t, gateway.Config{})
			s := startServer(t, Config{}, table, c.wrap(table))
			rng := rand.New(rand.NewPCG(1, 2))
			// Stable mappings on even ports, volatile ones on odd ports,
			// in both protocols.
			stable := map[string]bool{}
			volatile := map[string]bool{}
			key := func(proto string, port uint16) string { return fmt.Sprintf("%s %d", proto, port) }
			for _, proto := range []string{"TCP", "UDP"} {
				for port := uint16(20000); port < 20200; port++ {
					if port%2 == 0 || rng.IntN(2) == 0 {
						mustCall(t, s, hostA, ctlIP, add(port, proto, port, hostA, 3600))
						if port%2 == 0 {
							stable[key(proto, port)] = true
						} else {
							volatile[key(proto, port)] = true
						}
					}
				}
			}
			change := func(int) {
				for range 2 {
					proto := []string{"TCP", "UDP"}[rng.IntN(2)]
					port := uint16(20000 + 2*rng.IntN(100) + 1)
					k := key(proto, port)
					if volatile[k] {
						mustCall(t, s, hostA, ctlIP, upnp.DeletePortMapping(ip2, "", port, proto))
						delete(volatile, k)
					} else {
						mustCall(t, s, hostA, ctlIP, add(port, proto, port, hostA, 3600))
						volatile[k] = true
					}
				}
			}
			// Another client walking at the same time must not disturb it.
			other := 0
			got := walkAll(t, s, hostA, func(i int) {
				change(i)
				if _, err := call(t, s, hostB, ctlIP, upnp.GetGenericPortMappingEntry(ip2, other)); err == nil {
					other++
				}
			})
			seen := map[string]int{}
			for _, k := range got {
				seen[k]++
				if seen[k] > 1 {
					t.Errorf("%s listed twice", k)
				}
			}
			for k := range stable {
				if seen[k] != 1 {
					t.Errorf("%s, in the table all along, listed %d times", k, seen[k])
				}
			}
			// The walk is in order.
			for i := 1; i < len(got); i++ {
				if compareWire(got[i-1], got[i]) >= 0 {
					t.Fatalf("walk out of order: %s then %s", got[i-1], got[i])
				}
			}
		})
	}
}

// compareWire orders "TCP 8080" entries as the listing does.
func compareWire(a, b string) int {
	var pa, pb string
	var na, nb int
	fmt.Sscanf(a, "%s %d", &pa, &na)
	fmt.Sscanf(b, "%s %d", &pb, &nb)
	if pa != pb {
		if pa == "TCP" {
			return -1
		}
		return 1
	}
	return na - nb
}

// TestGenericRetry: asking for the same index again gives the same entry.
func TestGenericRetry(t *testing.T) {
	s := startServer(t, Config{}, nil, nil)
	for _, port := range []uint16{8000, 8001, 8002} {
		mustCall(t, s, hostA, ctlIP, add(port, "TCP", port, hostA, 60))
	}
	first := mustCall(t, s, hostA, ctlIP, upnp.GetGenericPortMappingEntry(ip2, 0))
	second := mustCall(t, s, hostA, ctlIP, upnp.GetGenericPortMappingEntry(ip2, 1))
	again := mustCall(t, s, hostA, ctlIP, upnp.GetGenericPortMappingEntry(ip2, 1))
	p0, _ := first.Get("NewExternalPort")
	p1, _ := second.Get("NewExternalPort")
	p1again, _ := again.Get("NewExternalPort")
	if p0 != "8000" || p1 != "8001" || p1again != "8001" {
		t.Errorf("indexes 0, 1, 1 gave %s, %s, %s; want 8000, 8001, 8001", p0, p1, p1again)
	}
}
