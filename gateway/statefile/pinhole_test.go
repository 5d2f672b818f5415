package statefile

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// TestPinholesAndFiltersRoundTrip: pinholes (with their UniqueID) and
// filters of both families are kept, replaced by a later put of the same
// UniqueID, and removed by UniqueID without touching the IPv4 lease of
// the same port.
func TestPinholesAndFiltersRoundTrip(t *testing.T) {
	pinhole := func(id uint16, addr string, filters ...gateway.Filter) gateway.Lease {
		ap := netip.MustParseAddrPort(addr)
		return gateway.Lease{Protocol: gateway.TCP, Internal: ap, ExternalPort: ap.Port(), Origin: gateway.OriginPCP,
			Pinhole: true, PinholeID: id, Filters: filters, Nonce: [12]byte{byte(id)},
			Created: t0, Expires: t0.Add(time.Hour)}
	}
	v6 := gateway.Filter{Remote: netip.MustParsePrefix("2001:db8:203::/48"), Port: 443}
	v4 := gateway.Filter{Remote: netip.MustParsePrefix("203.0.113.0/24")}
	ipv4 := testLease(8080)
	ipv4.Filters = []gateway.Filter{v4, {Remote: netip.MustParsePrefix("198.18.0.1/32"), Port: 9}}
	tests := []struct {
		name        string
		put, remove []gateway.Lease
		then        []gateway.Lease
		want        []gateway.Lease
	}{
		{name: "pinholes and a filtered IPv4 lease",
			put:  []gateway.Lease{pinhole(1, "[2001:db8:1::10]:8080"), pinhole(2, "[2001:db8:1::11]:8080", v6), ipv4},
			want: []gateway.Lease{pinhole(1, "[2001:db8:1::10]:8080"), pinhole(2, "[2001:db8:1::11]:8080", v6), ipv4}},
		{name: "a UniqueID reused by another endpoint replaces the record",
			put:  []gateway.Lease{pinhole(1, "[2001:db8:1::10]:8080")},
			then: []gateway.Lease{pinhole(1, "[2001:db8:1::12]:22", v6)},
			want: []gateway.Lease{pinhole(1, "[2001:db8:1::12]:22", v6)}},
		{name: "removed by UniqueID",
			put:    []gateway.Lease{pinhole(7, "[2001:db8:1::10]:8080"), ipv4},
			remove: []gateway.Lease{pinhole(7, "[2001:db8:1::10]:8080")},
			want:   []gateway.Lease{ipv4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := mustOpen(t, statePath(t), t0)
			if err := f.Commit(tc.put, nil); err != nil {
				t.Fatal(err)
			}
			if err := f.Commit(tc.then, tc.remove); err != nil {
				t.Fatal(err)
			}
			_, ld := reopen(t, f, t0)
			sameLeases(t, ld.Leases, tc.want)
			if len(ld.Damage) != 0 {
				t.Fatalf("damage %v", ld.Damage)
			}
		})
	}
}

// TestOldFileLoads: a file written before pinholes and filters existed
// (type-1 records with a remote peer) still loads, its peer read as one
// host filter with its port.
func TestOldFileLoads(t *testing.T) {
	// The bytes of the format before issue 10, written out by hand.
	legacy := func(remote netip.AddrPort) []byte {
		var p [putFixedLen]byte
		p[offPutProto] = byte(gateway.TCP)
		p[offPutOrigin] = byte(gateway.OriginPCP)
		p[offPutFlags] = flagInternal | flagInternal4 | flagRemote | flagRemote4
		binary.BigEndian.PutUint16(p[offPutEPort:], 40000)
		binary.BigEndian.PutUint16(p[offPutIPort:], 4000)
		ia := netip.MustParseAddr("198.51.100.10").As16()
		copy(p[offPutIAddr:], ia[:])
		ra := remote.Addr().As16()
		copy(p[offPutRAddr:], ra[:])
		binary.BigEndian.PutUint16(p[offPutRPort:], remote.Port())
		p[offPutNonce] = 7
		binary.BigEndian.PutUint64(p[offPutCreated:], uint64(t0.UnixNano()))
		binary.BigEndian.PutUint64(p[offPutExpires:], uint64(t0.Add(time.Hour).UnixNano()))
		b, start := beginRecord(appendHeader(nil), recPut)
		return endRecord(append(b, p[:]...), start)
	}
	path := statePath(t)
	writeFile(t, path, legacy(netip.MustParseAddrPort("203.0.113.2:5555")))
	_, ld := mustOpen(t, path, t0)
	want := gateway.Lease{Protocol: gateway.TCP, Internal: netip.MustParseAddrPort("198.51.100.10:4000"), ExternalPort: 40000,
		Origin: gateway.OriginPCP, Nonce: [12]byte{7}, Created: t0, Expires: t0.Add(time.Hour),
		Filters: []gateway.Filter{{Remote: netip.MustParsePrefix("203.0.113.2/32"), Port: 5555}}}
	if len(ld.Damage) != 0 {
		t.Fatalf("damage %v", ld.Damage)
	}
	sameLeases(t, ld.Leases, []gateway.Lease{want})
}
