package client

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/syncbuf"
	"github.com/portlease/portlease/natpmp"
	"github.com/portlease/portlease/upnp/igdclient"
)

// Every socket of the unit tests is on 127.0.0.1 (or 127.0.0.2), with ports
// the kernel picks: nothing leaves the machine, and nothing talks to the
// real gateway. The fake UPnP finder opens no socket at all.

var loopback = netip.MustParseAddr("127.0.0.1")

// fakePMP is a NAT-PMP gateway on 127.0.0.1 for tests.
type fakePMP struct {
	conn *net.UDPConn
	done chan struct{}

	mu       sync.Mutex
	start    time.Time
	base     uint32            // epoch = base + seconds since start
	ext      netip.Addr        // external address
	lifetime uint32            // lifetime granted; 0: as asked
	code     natpmp.ResultCode // result of mapping requests
	pcp      bool              // answer as a PCP-only server (version 2)
	table    map[[2]uint16]uint16
	requests []natpmp.MappingRequest
}

func newFakePMP(t *testing.T) *fakePMP {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePMP{
		conn:  conn,
		done:  make(chan struct{}),
		start: time.Now(),
		base:  100000,
		ext:   netip.MustParseAddr("203.0.113.1"),
		table: make(map[[2]uint16]uint16),
	}
	go f.serve()
	t.Cleanup(func() {
		conn.Close()
		<-f.done
	})
	return f
}

func (f *fakePMP) port() uint16 { return uint16(f.conn.LocalAddr().(*net.UDPAddr).Port) }

// epoch is the gateway's Seconds Since Start of Epoch. The caller holds mu.
func (f *fakePMP) epoch() uint32 { return f.base + uint32(time.Since(f.start)/time.Second) }

// restart makes the gateway lose its state: epoch from 0, table empty.
func (f *fakePMP) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.start, f.base = time.Now(), 0
	clear(f.table)
}

func (f *fakePMP) set(fn func(f *fakePMP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// mapRequests returns the mapping requests received so far.
func (f *fakePMP) mapRequests() []natpmp.MappingRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]natpmp.MappingRequest(nil), f.requests...)
}

func (f *fakePMP) serve() {
	defer close(f.done)
	buf := make([]byte, 64)
	for {
		n, from, err := f.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if out := f.answer(buf[:n]); out != nil {
			f.conn.WriteToUDPAddrPort(out, from)
		}
	}
}

func (f *fakePMP) answer(b []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(b) >= 2 && b[0] == 2 && !f.pcp {
		// A NAT-PMP server answers another version with its own
		// version 0 and UNSUPP_VERSION (RFC 6886 §3.5).
		return []byte{0, 0x80 | b[1], 0, 1, 0, 0, 0, 0}
	}
	req, err := natpmp.ParseRequest(b)
	if err != nil {
		return nil
	}
	if f.pcp {
		// A PCP server answers a version 0 request with its own version
		// 2 header, result UNSUPP_VERSION (RFC 6887 §9).
		out := make([]byte, 24)
		out[0], out[1], out[3] = 2, 0x80|byte(req.Opcode), 1
		return out
	}
	if req.Opcode == natpmp.OpExternalAddress {
		out, _ := natpmp.ExternalAddressResponse{Epoch: f.epoch(), Address: f.ext}.AppendBinary(nil)
		return out
	}
	m := req.Mapping
	f.requests = append(f.requests, m)
	resp := natpmp.MappingResponse{Opcode: m.Opcode, Epoch: f.epoch(), InternalPort: m.InternalPort}
	key := [2]uint16{uint16(m.Opcode), m.InternalPort}
	switch {
	case f.code != natpmp.Success:
		resp.ResultCode = f.code
	case m.IsDelete():
		delete(f.table, key)
	default:
		eport, ok := f.table[key]
		if !ok {
			eport = m.SuggestedExternalPort
			if eport == 0 {
				eport = m.InternalPort
			}
			f.table[key] = eport
		}
		resp.ExternalPort = eport
		resp.Lifetime = m.Lifetime
		if f.lifetime != 0 {
			resp.Lifetime = f.lifetime
		}
	}
	out, _ := resp.AppendBinary(nil)
	return out
}

// has reports whether the gateway holds a mapping of internal port iport.
func (f *fakePMP) has(proto Protocol, iport uint16) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := natpmp.OpMapTCP
	if proto == UDP {
		op = natpmp.OpMapUDP
	}
	_, ok := f.table[[2]uint16{uint16(op), iport}]
	return ok
}

// announce sends an address announcement (RFC 6886 §3.2.1) from the address
// from to to.
func (f *fakePMP) announce(t *testing.T, from netip.Addr, to netip.AddrPort) {
	t.Helper()
	f.mu.Lock()
	msg, _ := natpmp.ExternalAddressResponse{Epoch: f.epoch(), Address: f.ext}.AppendBinary(nil)
	f.mu.Unlock()
	conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: from.AsSlice()}, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
}

// fakeIGD is a UPnP IGD for tests.
type fakeIGD struct {
	location string
	uuid     string
	boot     int

	mu            sync.Mutex
	ext           netip.Addr
	table         map[string]Entry // by "TCP/4662"
	permanentOnly bool             // 725: grants only permanent leases
	leaseCap      uint32           // shortens leases to this, 0: as asked
	fail          error            // every call fails with it
	adds          int
	// pinholes are the IPv6 pinholes by UniqueID; noFirewall: the IGD
	// has no WANIPv6FirewallControl service.
	pinholes   map[uint16]upnpPinhole
	lastID     uint16
	noFirewall bool
	updates    int
}

func newFakeIGD(location string) *fakeIGD {
	return &fakeIGD{
		location: location,
		uuid:     "uuid:" + strings.TrimPrefix(location, "http://"),
		boot:     1,
		ext:      netip.MustParseAddr("203.0.113.1"),
		table:    make(map[string]Entry),
		pinholes: make(map[uint16]upnpPinhole),
	}
}

func (d *fakeIGD) firewall() bool { return !d.noFirewall }

func (d *fakeIGD) addPinhole(_ context.Context, p upnpPinhole) (uint16, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return 0, d.fail
	}
	d.lastID++
	d.pinholes[d.lastID] = p
	return d.lastID, nil
}

func (d *fakeIGD) updatePinhole(_ context.Context, id uint16, lease uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	p, ok := d.pinholes[id]
	if !ok {
		return fmt.Errorf("fake: %w", ErrNotFound)
	}
	d.updates++
	p.lease = lease
	d.pinholes[id] = p
	return nil
}

func (d *fakeIGD) deletePinhole(_ context.Context, id uint16) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	if _, ok := d.pinholes[id]; !ok {
		return fmt.Errorf("fake: %w", ErrNotFound)
	}
	delete(d.pinholes, id)
	return nil
}

// pinhole returns the pinhole id.
func (d *fakeIGD) pinhole(id uint16) (upnpPinhole, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.pinholes[id]
	return p, ok
}

func key(proto Protocol, eport uint16) string { return fmt.Sprintf("%s/%d", proto, eport) }

func (d *fakeIGD) info() UPnPInfo {
	return UPnPInfo{Location: d.location, Service: "urn:schemas-upnp-org:service:WANIPConnection:2", FriendlyName: "fake", Version: 2}
}
func (d *fakeIGD) udn() string { return d.uuid }
func (d *fakeIGD) bootID() int { return d.boot }

func (d *fakeIGD) externalAddress(context.Context) (netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ext, d.fail
}

func (d *fakeIGD) connected(context.Context) (bool, error) { return true, d.fail }

func (d *fakeIGD) add(_ context.Context, m upnpMapping) (upnpGrant, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return upnpGrant{}, d.fail
	}
	d.adds++
	eport := m.externalPort
	if eport == 0 {
		for eport = 40000; ; eport++ {
			if _, ok := d.table[key(m.proto, eport)]; !ok {
				break
			}
		}
	}
	if e, ok := d.table[key(m.proto, eport)]; ok && e.Internal != m.internal {
		return upnpGrant{}, &ConflictError{Protocol: m.proto, ExternalPort: eport, Holder: e}
	}
	lease := m.lease
	if d.permanentOnly {
		lease = 0
	}
	if d.leaseCap != 0 && lease > d.leaseCap {
		lease = d.leaseCap
	}
	d.table[key(m.proto, eport)] = Entry{Protocol: m.proto, ExternalPort: eport, Internal: m.internal,
		Description: m.description, Lifetime: time.Duration(lease) * time.Second, Enabled: true}
	return upnpGrant{externalPort: eport, lease: lease}, nil
}

func (d *fakeIGD) remove(_ context.Context, proto Protocol, eport uint16) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	if _, ok := d.table[key(proto, eport)]; !ok {
		return ErrNotFound
	}
	delete(d.table, key(proto, eport))
	return nil
}

func (d *fakeIGD) get(_ context.Context, proto Protocol, eport uint16) (Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return Entry{}, d.fail
	}
	e, ok := d.table[key(proto, eport)]
	if !ok {
		return Entry{}, ErrNotFound
	}
	return e, nil
}

func (d *fakeIGD) list(context.Context) ([]Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Entry
	for _, e := range d.table {
		out = append(out, e)
	}
	return out, d.fail
}

func (d *fakeIGD) set(fn func(d *fakeIGD)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d)
}

func (d *fakeIGD) entry(proto Protocol, eport uint16) (Entry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.table[key(proto, eport)]
	return e, ok
}

// fakeFinder finds the fake IGDs and relays fake NOTIFYs.
type fakeFinder struct {
	devs []*fakeIGD

	mu      sync.Mutex
	watches []func(netip.AddrPort, notice)
	watched chan struct{} // closed at the first watch
}

func newFakeFinder(devs ...*fakeIGD) *fakeFinder {
	return &fakeFinder{devs: devs, watched: make(chan struct{})}
}

func (f *fakeFinder) discover(context.Context, route, time.Duration) ([]igdDevice, error) {
	if len(f.devs) == 0 {
		return nil, fmt.Errorf("fake: %w", igdclient.ErrNoIGD)
	}
	out := make([]igdDevice, len(f.devs))
	for i, d := range f.devs {
		out[i] = d
	}
	return out, nil
}

func (f *fakeFinder) dial(_ context.Context, location string, _ netip.Addr) (igdDevice, error) {
	for _, d := range f.devs {
		if d.location == location {
			return d, nil
		}
	}
	return nil, fmt.Errorf("fake: no IGD at %s", location)
}

func (f *fakeFinder) watch(ctx context.Context, _ route, fn func(netip.AddrPort, notice)) error {
	f.mu.Lock()
	f.watches = append(f.watches, fn)
	if len(f.watches) == 1 {
		close(f.watched)
	}
	f.mu.Unlock()
	<-ctx.Done()
	return nil
}

// notify delivers a NOTIFY to every watch, once one is running.
func (f *fakeFinder) notify(t *testing.T, from netip.AddrPort, n notice) {
	t.Helper()
	select {
	case <-f.watched:
	case <-time.After(30 * time.Second):
		t.Fatal("the client never listened for NOTIFY")
	}
	f.mu.Lock()
	fns := slices.Clone(f.watches)
	f.mu.Unlock()
	for _, fn := range fns {
		fn(from, n)
	}
}

// logBuffer collects a client's log for tests that wait for a line.
type logBuffer = syncbuf.Buffer

// freePort returns a UDP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// testClient is a Client pointed at fakes on 127.0.0.1.
type testClient struct {
	*Client
	log      *logBuffer
	announce netip.AddrPort
}

// newTestClient returns a client whose gateway is 127.0.0.1, speaking
// NAT-PMP to pmp (nil: a port where nothing answers) and UPnP to finder
// (nil: no IGD), with checks every hour unless mod says otherwise.
func newTestClient(t *testing.T, pmp *fakePMP, finder *fakeFinder, mod func(*Config)) *testClient {
	t.Helper()
	lb := &logBuffer{}
	if finder == nil {
		finder = newFakeFinder()
	}
	cfg := Config{
		Logger:        slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Gateway:       loopback,
		CheckInterval: time.Hour,
		AnnounceAddr:  netip.AddrPortFrom(loopback, freePort(t)),
		finder:        finder,
		// No wait after an announcement (RFC 6887 §14.1.1) unless a
		// test asks for one.
		announceWait: func() time.Duration { return 0 },
	}
	if pmp != nil {
		cfg.NATPMPPort = pmp.port()
	} else {
		cfg.NATPMPPort = freePort(t) // nothing listens: port unreachable
	}
	cfg.PCPPort = freePort(t) // no PCP unless mod points it at a fake
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("client log:\n%s", lb.String())
		}
	})
	return &testClient{Client: c, log: lb, announce: cfg.AnnounceAddr}
}

// waitEvent returns the next event of one of kinds, skipping others; it
// fails the test if none comes within a generous deadline (the test asserts
// that it happens, not how fast).
func waitEvent(t *testing.T, c *Client, kinds ...EventKind) Event {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("events closed while waiting for %v", kinds)
			}
			for _, k := range kinds {
				if ev.Kind == k {
					return ev
				}
			}
			t.Logf("event: %v", ev)
		case <-deadline:
			t.Fatalf("no %v event", kinds)
		}
	}
}

// waitLog waits for the client to log a line containing s.
func waitLog(t *testing.T, lb *logBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(lb.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the client never logged %q", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
