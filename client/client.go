package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/portlease/portlease/natpmp"
	"github.com/portlease/portlease/upnp/igdclient"
)

// Defaults of Config.
const (
	// DefaultDiscoveryWait is how long SSDP answers are collected.
	DefaultDiscoveryWait = 2 * time.Second
	// DefaultCheckInterval is how often kept mappings are verified.
	DefaultCheckInterval = 60 * time.Second
	// DefaultEventBuffer is the capacity of the Events channel.
	DefaultEventBuffer = 64
)

// maxInflight bounds the kept mappings worked on at the same time (each
// by a goroutine of its own while it is worked on).
const maxInflight = 8

// Config configures a Client. The zero value finds the gateways by the
// default routes of every interface and speaks whatever they answer.
type Config struct {
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
	// Method is the protocol to speak; "" means Auto.
	Method Method
	// Gateway, when valid, is the only gateway used (no route discovery);
	// it must be an IPv4 address reachable from this machine.
	Gateway netip.Addr
	// Interface, when set, restricts discovery to the default routes
	// through this link.
	Interface string
	// DescriptionURL, when set, is the UPnP IGD's description URL, used
	// instead of SSDP discovery (like upnpc -u). Without Gateway, the
	// URL's host is the gateway.
	DescriptionURL string
	// DiscoveryWait is how long SSDP answers are collected; zero means
	// DefaultDiscoveryWait.
	DiscoveryWait time.Duration
	// CheckInterval is how often kept mappings are verified on their
	// gateway (UPnP: GetSpecificPortMappingEntry of each mapping and
	// GetExternalIPAddress; NAT-PMP: an external address request, whose
	// epoch tells a restart), and the longest wait between retries of a
	// failing mapping; zero means DefaultCheckInterval.
	CheckInterval time.Duration
	// HTTPClient carries UPnP descriptions and SOAP calls. Nil means a
	// client of igdclient's defaults whose connections are opened in the
	// network namespace New ran in; a client given here must open them
	// where the gateway is reachable.
	HTTPClient *http.Client
	// AllowForeignControlURL lets a UPnP description's location, URLBase,
	// control URLs and HTTP redirects name a host other than the gateway
	// that answered SSDP (or the host of DescriptionURL), each use logged
	// as a warning; off, they are refused with an error naming both hosts
	// and only their rebase onto the gateway is tried
	// (igdclient.Config.AllowForeignControlURL). Only for the rare router
	// that needs it: the URL could send the client anywhere.
	AllowForeignControlURL bool
	// UserAgent is sent in SSDP and HTTP requests; empty means
	// igdclient's default.
	UserAgent string
	// EventBuffer is the capacity of the Events channel; zero means
	// DefaultEventBuffer.
	EventBuffer int
	// NonceKey, when set (at least MinNonceKeyLen bytes, kept secret),
	// derives each PCP mapping's nonce from the mapping's protocol,
	// internal address and internal port (DeriveNonce), so that the nonce
	// survives a restart: a later Client with the same key renews and
	// deletes the mappings of an earlier one (RFC 6887 §11.3, §15), and
	// Unmap needs no Request.Nonce. Without a key each mapping draws a
	// random nonce, which only its own Client knows. Request.Nonce, when
	// set, overrides both.
	NonceKey []byte

	// NATPMPPort is the gateway's NAT-PMP port; zero means 5351 (RFC 6886
	// §3.1). Tests point it at a fake server.
	NATPMPPort uint16
	// PCPPort is the gateway's PCP port; zero means 5351 (RFC 6887
	// §19.1). Tests point it at a fake server.
	PCPPort uint16
	// AnnounceAddr is where NAT-PMP address announcements and PCP
	// unsolicited ANNOUNCE responses (RFC 6887 §14.1.2) are listened
	// for. The zero value means 224.0.0.1:5350 (RFC 6886 §3.2.1), joined
	// on each gateway's link and bound with SO_REUSEADDR and SO_REUSEPORT
	// so that other listeners coexist. A unicast address is bound as it is
	// (tests: 127.0.0.1 and a port of their own).
	AnnounceAddr netip.AddrPort
	// AnnounceAddr6 is where PCP's IPv6 announcements (RFC 6887
	// §14.1.3, [ff02::1]:5350) are listened for once a mapping is kept
	// through an IPv6 default router. The zero value binds [::]:5350 and
	// joins ff02::1 on each such router's link; a valid address is bound
	// as it is (tests: [::1] and a port of their own).
	AnnounceAddr6 netip.AddrPort
	// NotifyAddr is where SSDP NOTIFY messages are listened for. The zero
	// value means 239.255.255.250:1900 joined on each gateway's link
	// (igdclient.WatchNotify). A unicast address is bound as it is
	// (tests).
	NotifyAddr netip.AddrPort

	// finder replaces igdclient (tests).
	finder igdFinder
	// announceWait replaces randomAnnounceWait (tests).
	announceWait func() time.Duration
}

// Client finds gateways and maps ports through them. It is safe for
// concurrent use. Create it with New and end it with Close.
//
// A Client belongs to the network namespace of the thread that called New:
// every socket and netlink handle it opens later, on whatever goroutine, is
// opened there (see the package documentation, "Network namespaces").
type Client struct {
	cfg    Config
	log    *slog.Logger
	ns     *nsRunner
	finder igdFinder
	// announceWait draws the wait of RFC 6887 §14.1.1.
	announceWait func() time.Duration

	events  chan Event
	evMu    sync.Mutex
	evShut  bool
	dropped uint64

	// dmu serializes discovery; found is its last result.
	dmu   sync.Mutex
	found []*gateway

	// mu guards everything below and the keeper state of each Mapping.
	mu       sync.Mutex
	closed   bool
	known    map[string]*gateway // every gateway ever found, by link and address
	mappings map[*Mapping]struct{}
	queue    mappingHeap
	inflight int
	watchReq []*gateway // NOTIFY watches for run to start

	// annMu guards the announcement listener.
	annMu     sync.Mutex
	annConn   *net.UDPConn
	annTry    bool
	annJoined map[int]bool // interfaces joined to the group
	// annConn6, annTry6 and annJoined6 are the same for PCP's IPv6
	// announcements (ff02::1).
	annConn6   *net.UDPConn
	annTry6    bool
	annJoined6 map[int]bool

	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Client for cfg. It opens no socket and sends nothing:
// gateways are found on first use. Call it on the thread (and so in the
// network namespace) the client is to work in.
func New(cfg Config) (*Client, error) {
	switch cfg.Method {
	case "":
		cfg.Method = Auto
	default:
		m, err := ParseMethod(string(cfg.Method))
		if err != nil {
			return nil, err
		}
		cfg.Method = m
	}
	if cfg.Gateway.IsValid() {
		cfg.Gateway = cfg.Gateway.Unmap()
		if !cfg.Gateway.Is4() {
			return nil, fmt.Errorf("client: gateway %s: want an IPv4 address", cfg.Gateway)
		}
	}
	if cfg.DescriptionURL != "" {
		u, err := url.Parse(cfg.DescriptionURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("client: description URL %q: want an http URL", cfg.DescriptionURL)
		}
	}
	if n := len(cfg.NonceKey); n > 0 && n < MinNonceKeyLen {
		return nil, fmt.Errorf("client: nonce key of %d bytes: want at least %d", n, MinNonceKeyLen)
	}
	cfg.NonceKey = slices.Clone(cfg.NonceKey)
	if cfg.DiscoveryWait <= 0 {
		cfg.DiscoveryWait = DefaultDiscoveryWait
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultEventBuffer
	}
	c := &Client{
		cfg:          cfg,
		log:          cfg.Logger,
		ns:           newNSRunner(),
		finder:       cfg.finder,
		announceWait: cfg.announceWait,
		events:       make(chan Event, cfg.EventBuffer),
		known:        make(map[string]*gateway),
		mappings:     make(map[*Mapping]struct{}),
		wake:         make(chan struct{}, 1),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.announceWait == nil {
		c.announceWait = randomAnnounceWait
	}
	if c.finder == nil {
		icfg := igdclient.Config{Logger: c.log, HTTPClient: cfg.HTTPClient, UserAgent: cfg.UserAgent,
			AllowForeignControlURL: cfg.AllowForeignControlURL}
		if cfg.HTTPClient == nil {
			icfg.Dial = c.dial
		}
		c.finder = &igdFinderAdapter{c: igdclient.New(icfg), notifyAddr: cfg.NotifyAddr}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(1)
	go c.run(ctx)
	return c, nil
}

// dial opens a TCP connection for the HTTP client, in the client's network
// namespace.
func (c *Client) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var conn net.Conn
	err := c.ns.do(func() error {
		d := net.Dialer{Timeout: igdclient.DefaultHTTPTimeout}
		var err error
		conn, err = d.DialContext(ctx, network, address)
		return err
	})
	return conn, err
}

// Close stops keeping every mapping, without deleting them from the
// gateways (Mapping.Close deletes), closes the client's sockets and then the
// Events channel. It waits for the client's goroutines to end. Close may be
// called more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for m := range c.mappings {
		m.stopped = true
		if m.cancelOp != nil {
			m.cancelOp()
		}
	}
	clear(c.mappings)
	for _, m := range c.queue {
		m.index = -1
	}
	c.queue = c.queue[:0]
	c.mu.Unlock()

	c.cancel()
	c.annMu.Lock()
	if c.annConn != nil {
		c.annConn.Close()
	}
	if c.annConn6 != nil {
		c.annConn6.Close()
	}
	c.annMu.Unlock()
	c.wg.Wait()

	c.mu.Lock()
	for _, g := range c.known {
		g.closeSockets()
	}
	c.mu.Unlock()
	c.evMu.Lock()
	c.evShut = true
	close(c.events)
	c.evMu.Unlock()
	c.ns.close()
	return nil
}

// checkOpen returns ErrClosed once Close was called.
func (c *Client) checkOpen() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return nil
}

// Events returns the channel of events about kept mappings and their
// gateways. It is buffered (Config.EventBuffer); when the reader falls
// behind, the oldest events are dropped (and counted in a warning) so that
// the keeper never waits. Close closes it.
func (c *Client) Events() <-chan Event { return c.events }

// emit sends ev without blocking, dropping the oldest event when the buffer
// is full.
func (c *Client) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	c.log.Debug("event", "kind", ev.Kind.String(), "event", ev.String())
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if c.evShut {
		return
	}
	for {
		select {
		case c.events <- ev:
			return
		default:
		}
		select {
		case <-c.events:
			c.dropped++
			if c.dropped == 1 || c.dropped%100 == 0 {
				c.log.Warn("events reader too slow: dropped the oldest events", "dropped", c.dropped)
			}
		default:
		}
	}
}

// learnExternal records g's external address; a change updates the kept
// mappings through g and is reported.
func (c *Client) learnExternal(g *gateway, addr netip.Addr) {
	if !addr.IsValid() {
		return
	}
	g.mu.Lock()
	old := g.ext
	g.ext = addr
	g.mu.Unlock()
	if old == addr {
		return
	}
	if old.IsValid() {
		c.log.Info("external address changed", "gateway", g.route.gw, "old", old, "new", addr)
	}
	c.mu.Lock()
	kept := false
	for m := range c.mappings {
		if m.bind != nil && m.bind.gw == g {
			kept = true
			if m.granted {
				m.cur.External = netip.AddrPortFrom(addr, m.cur.External.Port())
			}
		}
	}
	c.mu.Unlock()
	if kept {
		c.reportExternal(g)
	}
}

// reportExternal emits ExternalAddressChanged (and DoubleNATDetected) when
// g's external address differs from the one last reported.
func (c *Client) reportExternal(g *gateway) {
	g.mu.Lock()
	addr := g.ext
	if !addr.IsValid() || addr == g.reported {
		g.mu.Unlock()
		return
	}
	g.reported = addr
	g.mu.Unlock()
	c.emit(Event{Kind: ExternalAddressChanged, ExternalAddress: addr, Gateway: g.route.gw})
	switch class := Classify(addr); {
	case isDoubleNAT(class):
		c.log.Warn("external address is not public: mappings are not reachable from the internet",
			"gateway", g.route.gw, "address", addr, "class", class.String())
		c.emit(Event{Kind: DoubleNATDetected, ExternalAddress: addr, Gateway: g.route.gw,
			Err: fmt.Errorf("%w: %s is %s address space", ErrDoubleNAT, addr, class)})
	case class != Public:
		c.log.Info("external address is not a public one", "gateway", g.route.gw, "address", addr, "class", class.String())
	}
}

// gatewayLost handles a gateway that lost its mapping state, as an answer
// to the client's own request told (RFC 6886 §3.6, RFC 6887 §8.5: "it
// promptly renews"): every kept mapping through it but except is marked
// lost and worked on at once.
func (c *Client) gatewayLost(g *gateway, why string, except *Mapping) {
	c.gatewayLostIf(g, why, except, func(*Mapping) bool { return true }, time.Time{})
}

// gatewayLostAnnounced is gatewayLost as an unsolicited announcement told
// it: the PCP mappings wait RFC 6887 §14.1.1's random time
// (pcpHoldAfterAnnounce), the others are worked on at once.
func (c *Client) gatewayLostAnnounced(g *gateway, why string) {
	c.gatewayLostIf(g, why, nil, func(*Mapping) bool { return true }, c.pcpHoldAfterAnnounce(g, time.Now()))
}

// gatewayLostIf is gatewayLost for the mappings through g for which lost
// reports true (called with c.mu held); the PCP ones are worked on at
// pcpAt when it is later than now.
func (c *Client) gatewayLostIf(g *gateway, why string, except *Mapping, lost func(*Mapping) bool, pcpAt time.Time) {
	now := time.Now()
	n := 0
	c.mu.Lock()
	for m := range c.mappings {
		if m.bind == nil || m.bind.gw != g || !lost(m) {
			continue
		}
		n++
		if m == except {
			continue
		}
		m.lost = true
		m.lostSeq++
		at := now
		if m.bind.method == PCP && pcpAt.After(now) {
			at = pcpAt
		}
		c.reschedule(m, at)
	}
	c.mu.Unlock()
	if n == 0 {
		return
	}
	c.log.Warn("gateway restarted: mapping again", "gateway", g.route.gw, "why", why, "mappings", n)
	c.emit(Event{Kind: GatewayRestarted, Gateway: g.route.gw, ExternalAddress: g.external(),
		Err: fmt.Errorf("client: gateway %s lost its mappings (%s)", g.route.gw, why)})
	c.poke()
}

// poke wakes the keeper loop.
func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// urlHostAddr returns the host of a URL when it is an IP address.
func urlHostAddr(s string) (netip.Addr, bool) {
	u, err := url.Parse(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// normalize checks r and fills in its defaults.
func normalize(r Request) (Request, error) {
	p, err := r.Protocol.normalize()
	if err != nil {
		return r, err
	}
	r.Protocol = p
	if r.InternalPort == 0 {
		return r, fmt.Errorf("%w: internal port 0", ErrInvalidRequest)
	}
	if r.InternalAddr.IsValid() {
		r.InternalAddr = r.InternalAddr.Unmap()
		a := r.InternalAddr
		if a.Is6() && (a.Zone() != "" || !a.IsGlobalUnicast() || isULA(a)) {
			return r, fmt.Errorf("%w: internal address %s: want IPv4 or a global IPv6 address", ErrInvalidRequest, a)
		}
	}
	r.Filters = slices.Clone(r.Filters)
	for i, f := range r.Filters {
		// §13.3: a prefix length of 0 means "no filter".
		if !f.Remote.IsValid() || f.Remote.Addr().Is6() != r.InternalAddr.Is6() || f.Remote.Bits() == 0 {
			return r, fmt.Errorf("%w: filter %s: want a prefix of the mapping's family, longer than /0", ErrInvalidRequest, f)
		}
		r.Filters[i].Remote = f.Remote.Masked()
	}
	if r.Lifetime < 0 {
		return r, fmt.Errorf("%w: negative lifetime", ErrInvalidRequest)
	}
	if r.OnConflict != ConflictKeep && r.OnConflict != ConflictReplace {
		return r, fmt.Errorf("%w: conflict policy %d", ErrInvalidRequest, int(r.OnConflict))
	}
	return r, nil
}

// errNoNATPMP tells whether err says that NAT-PMP is absent (rather than
// that it refused).
func errAbsent(err error) bool {
	return errors.Is(err, ErrNoAnswer) || errors.Is(err, ErrUnsupported) || errors.Is(err, igdclient.ErrNoIGD) ||
		errors.Is(err, natpmp.ErrPCPServer)
}

// isULA reports whether a is an IPv6 unique local address (fc00::/7, RFC
// 4193), which a pinhole cannot make reachable from the internet.
func isULA(a netip.Addr) bool { return a.Is6() && a.As16()[0]&0xfe == 0xfc }
