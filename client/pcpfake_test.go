package client

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/portlease/portlease/pcp"
)

// fakePCP is a PCP server (RFC 6887) on 127.0.0.1 for tests: MAP with the
// nonce check (§11.1, §15), PREFER_FAILURE (§13.2), ANNOUNCE (§14.1).
type fakePCP struct {
	conn *net.UDPConn
	done chan struct{}

	mu       sync.Mutex
	start    time.Time
	base     uint32 // epoch = base + seconds since start
	ext      netip.Addr
	code     pcp.ResultCode // result of MAP requests when not Success
	table    map[pcpKey]pcpLease
	requests []pcp.Request
}

type pcpKey struct {
	proto    uint8
	internal netip.AddrPort
}

type pcpLease struct {
	eport uint16
	nonce [pcp.NonceLen]byte
}

func newFakePCP(t *testing.T) *fakePCP {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePCP{conn: conn, done: make(chan struct{}), start: time.Now(), base: 5000,
		ext: netip.MustParseAddr("203.0.113.1"), table: make(map[pcpKey]pcpLease)}
	go f.serve()
	t.Cleanup(func() {
		conn.Close()
		<-f.done
	})
	return f
}

func (f *fakePCP) port() uint16 { return uint16(f.conn.LocalAddr().(*net.UDPAddr).Port) }

// epoch is the server's Epoch Time. The caller holds mu.
func (f *fakePCP) epoch() uint32 { return f.base + uint32(time.Since(f.start)/time.Second) }

func (f *fakePCP) set(fn func(f *fakePCP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// restart loses the table and starts the epoch again (§8.5).
func (f *fakePCP) restart() {
	f.set(func(f *fakePCP) { f.start, f.base = time.Now(), 0; clear(f.table) })
}

// maps returns the MAP requests received so far.
func (f *fakePCP) maps() []pcp.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []pcp.Request
	for _, r := range f.requests {
		if r.Opcode == pcp.OpMap {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakePCP) lease(proto uint8, internal netip.AddrPort) (pcpLease, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.table[pcpKey{proto, internal}]
	return l, ok
}

func (f *fakePCP) serve() {
	defer close(f.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := f.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if out := f.answer(buf[:n], from); out != nil {
			f.conn.WriteToUDPAddrPort(out, from)
		}
	}
}

func (f *fakePCP) answer(b []byte, from netip.AddrPort) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	req, err := pcp.ParseRequest(b)
	if err != nil {
		return nil
	}
	f.requests = append(f.requests, req)
	resp := pcp.Response{Opcode: req.Opcode, Epoch: f.epoch(), Map: req.Map, Options: req.Options}
	resp.Options.Filters = nil
	if req.Opcode == pcp.OpAnnounce {
		out, _ := resp.AppendBinary(nil)
		return out
	}
	internal := req.Client
	if req.Options.ThirdParty.IsValid() {
		internal = req.Options.ThirdParty
	}
	key := pcpKey{req.Map.Protocol, netip.AddrPortFrom(internal, req.Map.InternalPort)}
	l, held := f.table[key]
	taken := func(port uint16) bool {
		for k, x := range f.table {
			if k != key && k.proto == key.proto && x.eport == port {
				return true
			}
		}
		return false
	}
	switch {
	case f.code != pcp.Success:
		resp.Result = f.code
	case held && l.nonce != req.Map.Nonce:
		resp.Result = pcp.NotAuthorized
	case req.Lifetime == 0:
		delete(f.table, key)
	default:
		eport := l.eport
		if !held {
			eport = req.Map.ExternalPort
			for taken(eport) {
				if req.Options.PreferFailure {
					resp.Result = pcp.CannotProvideExternal
					break
				}
				eport++
			}
		}
		if resp.Result == pcp.Success {
			f.table[key] = pcpLease{eport: eport, nonce: req.Map.Nonce}
			resp.Lifetime = req.Lifetime
			resp.Map.ExternalPort, resp.Map.ExternalAddr = eport, f.ext
		}
	}
	if resp.Result != pcp.Success {
		resp.Lifetime = resp.Result.ErrorLifetime()
	}
	out, err := resp.AppendBinary(nil)
	if err != nil {
		panic(err)
	}
	return out
}

// announce sends an unsolicited ANNOUNCE response (§14.1.3) to to.
func (f *fakePCP) announce(t *testing.T, to netip.AddrPort) {
	t.Helper()
	f.mu.Lock()
	msg, err := pcp.Response{Opcode: pcp.OpAnnounce, Epoch: f.epoch()}.AppendBinary(nil)
	f.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
}

// pcpTestClient is newTestClient speaking PCP to f (and NAT-PMP to pmp).
func pcpTestClient(t *testing.T, f *fakePCP, pmp *fakePMP, mod func(*Config)) *testClient {
	return newTestClient(t, pmp, nil, func(cfg *Config) {
		cfg.PCPPort = f.port()
		if mod != nil {
			mod(cfg)
		}
	})
}
