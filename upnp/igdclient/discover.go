package igdclient

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/portlease/portlease/upnp"
)

const (
	// DefaultWait is how long Discover collects answers when given no wait.
	DefaultWait = 2 * time.Second

	// maxLocations bounds the distinct descriptions one Discover fetches.
	maxLocations = 32

	// multicastTTL is the TTL of multicast M-SEARCH (UDA 1.1 §1.1.2: "SHOULD
	// default to 2").
	multicastTTL = 2
)

// Target says where to search, and from where.
type Target struct {
	// Interface is the local interface to multicast on (IP_MULTICAST_IF),
	// and the one WatchNotify joins the SSDP group on. Empty lets the
	// kernel pick (on Linux, the interface of Local when it is set).
	Interface string
	// Local is the local IPv4 address to send from: the source of
	// M-SEARCH, and the InternalClient advertised by default. Invalid lets
	// the kernel pick; the IGD then learns it from its HTTP connection.
	Local netip.Addr
	// Multicast sends the searches to 239.255.255.250:1900. It is never
	// implied: a Target with Multicast false sends only to Unicast.
	Multicast bool
	// Unicast lists more destinations, typically the default gateways on
	// port 1900: some IGDs answer only unicast searches, some only
	// multicast ones. IPv4 only.
	Unicast []netip.AddrPort
	// OnLink lists the prefixes answers are taken from; answers from
	// other sources are ignored (logged at debug), except those from an
	// address of Unicast or an IPv6 link-local one. Nil means the subnets
	// of Interface, else of the interface holding Local, else of every
	// interface of the host: an IGD is on the link searched.
	OnLink []netip.Prefix
}

// destinations returns where t sends its searches.
func (t Target) destinations() ([]netip.AddrPort, error) {
	if t.Local.IsValid() && !t.Local.Unmap().Is4() {
		return nil, fmt.Errorf("igdclient: local address %v not IPv4", t.Local)
	}
	var ds []netip.AddrPort
	if t.Multicast {
		ds = append(ds, upnp.SSDPMulticastAddr())
	}
	for _, d := range t.Unicast {
		d = netip.AddrPortFrom(d.Addr().Unmap(), d.Port())
		if !d.Addr().Is4() || d.Port() == 0 {
			return nil, fmt.Errorf("igdclient: unicast destination %v not an IPv4 address and port", d)
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return nil, errors.New("igdclient: target has no destination (no multicast, no unicast)")
	}
	return ds, nil
}

// searchTypes are the search targets of every M-SEARCH round, IGD:2
// first. Quirk: some devices answer ssdp:all with their first type only
// (often upnp:rootdevice), some answer only the exact type they implement,
// so each type is asked for by name as well.
func searchTypes() []string {
	return []string{
		upnp.DeviceIGD2, upnp.DeviceIGD1,
		upnp.ServiceWANIP2, upnp.ServiceWANIP1, upnp.ServiceWANPPP1,
		upnp.SearchRootDevice, upnp.SearchAll,
	}
}

// answer is one description location found by searching.
type answer struct {
	loc  *url.URL
	from netip.AddrPort // who answered first
	resp upnp.SearchResponse
}

// Discover searches for IGDs as t says, collects answers for wait (≤0:
// DefaultWait), fetches the description of each distinct location and
// returns every connection service found, best first. It returns ErrNoIGD
// (joined with the reasons, if any) when there is none.
//
// Searching: one M-SEARCH per type of searchTypes goes to each destination
// of t, twice (the second round a third of wait later, against loss).
// Replies are accepted from any source port (quirk: some devices reply from
// a port other than 1900), from source addresses on the link only (see
// Target.OnLink), and de-duplicated by location.
// Unicast searches carry the multicast HOST and an MX, as multicast ones
// do: UDA 1.1 §1.3.3 wants the unicast address and no MX, but devices in the
// field are known to ignore that form, and miniupnpd accepts both.
//
// Rebasing (quirk, and trust): when the description's location names a
// host other than the one that answered, the description is fetched from
// the answering host instead (same port and path), and the IGD's Location
// is that URL; if that fails too, the error (ErrForeignHost) names both
// hosts. Control URLs that name another host are rebased the same way
// (upnp.RebaseToHost); see IGD.call. With Config.AllowForeignControlURL the
// other host is tried first (with a warning) and the answering one only
// when it does not answer.
//
// Order: first a service that is connected (GetStatusInfo says so, or does
// not say) and has a public external address; then one connected with a
// private, shared (CGNAT) or unknown external address; then a disconnected
// one. Within each: WANIPConnection:2 before :1 (and IGD:2 devices before
// IGD:1), WANIPConnection before WANPPPConnection, then the order found.
func (c *Client) Discover(ctx context.Context, t Target, wait time.Duration) ([]*IGD, error) {
	if wait <= 0 {
		wait = DefaultWait
	}
	dests, err := t.destinations()
	if err != nil {
		return nil, err
	}
	answers, err := c.search(ctx, t, dests, wait)
	if err != nil {
		return nil, err
	}
	if len(answers) == 0 {
		return nil, ErrNoIGD
	}

	type result struct {
		igds []*IGD
		err  error
	}
	results := make([]result, len(answers))
	var wg sync.WaitGroup
	for i, a := range answers {
		wg.Go(func() {
			igds, err := c.describe(ctx, t.Local, a.loc, a.from.Addr())
			for j, g := range igds {
				g.BootID = a.resp.BootID
				g.Server = a.resp.Server
				g.order = i*1000 + j
			}
			results[i] = result{igds, err}
		})
	}
	wg.Wait()
	var igds []*IGD
	var errs []error
	for _, r := range results {
		igds = append(igds, r.igds...)
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(igds) == 0 {
		return nil, errors.Join(append([]error{ErrNoIGD}, errs...)...)
	}
	for _, err := range errs {
		c.log.Debug("igdclient: description skipped", "err", err)
	}
	c.rank(ctx, igds)
	return dedupe(igds), nil
}

// dedupe drops the services found twice under different locations (a
// device announcing several URLs, or answering unicast and multicast with
// different hosts), keeping the first, best-ranked, one. Services of a
// device without a UDN are all kept.
func dedupe(igds []*IGD) []*IGD {
	seen := make(map[string]bool)
	out := igds[:0]
	for _, g := range igds {
		if g.UDN != "" {
			key := g.UDN + "|" + g.Service.ServiceType + "|" + g.Service.ServiceID + "|" + g.Service.ControlURL.Path
			if seen[key] {
				continue
			}
			seen[key] = true
		}
		out = append(out, g)
	}
	return out
}

// Dial fetches the description at location (like upnpc -u: no discovery)
// and returns its best connection service, ranked as Discover does. local is
// the local address to advertise; invalid means the one the connection to
// the device used.
func (c *Client) Dial(ctx context.Context, location string, local netip.Addr) (*IGD, error) {
	u, err := url.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("igdclient: location: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("igdclient: location %q not an http URL", location)
	}
	igds, err := c.describe(ctx, local, u, netip.Addr{})
	if err != nil {
		return nil, err
	}
	c.rank(ctx, igds)
	return igds[0], nil
}

// search sends the M-SEARCH rounds and collects the answers until wait
// has passed. The socket is opened on the calling goroutine.
func (c *Client) search(ctx context.Context, t Target, dests []netip.AddrPort, wait time.Duration) ([]answer, error) {
	prefixes, err := onLink(t)
	if err != nil {
		return nil, err
	}
	laddr := "0.0.0.0:0"
	if t.Local.IsValid() {
		laddr = netip.AddrPortFrom(t.Local.Unmap(), 0).String()
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp4", laddr)
	if err != nil {
		return nil, fmt.Errorf("igdclient: search socket: %w", err)
	}
	defer pc.Close()
	if t.Multicast {
		p := ipv4.NewPacketConn(pc)
		if t.Interface != "" {
			ifi, err := net.InterfaceByName(t.Interface)
			if err != nil {
				return nil, fmt.Errorf("igdclient: interface %q: %w", t.Interface, err)
			}
			if err := p.SetMulticastInterface(ifi); err != nil {
				return nil, fmt.Errorf("igdclient: multicast interface %q: %w", t.Interface, err)
			}
		}
		if err := p.SetMulticastTTL(multicastTTL); err != nil {
			return nil, fmt.Errorf("igdclient: multicast TTL: %w", err)
		}
	}

	mx := min(max(int(wait/time.Second), 1), upnp.MaxMX)
	var msgs [][]byte
	for _, st := range searchTypes() {
		req := upnp.SearchRequest{Host: upnp.SSDPMulticastAddr().String(), ST: st, MX: mx, UserAgent: c.ua}
		b, err := req.AppendBinary(nil)
		if err != nil {
			return nil, fmt.Errorf("igdclient: M-SEARCH %s: %w", st, err)
		}
		msgs = append(msgs, b)
	}
	send := func() error {
		var errs []error
		sent := 0
		for _, d := range dests {
			to := net.UDPAddrFromAddrPort(d)
			for _, m := range msgs {
				if _, err := pc.WriteTo(m, to); err != nil {
					errs = append(errs, fmt.Errorf("igdclient: M-SEARCH to %v: %w", d, err))
					continue
				}
				sent++
			}
		}
		c.log.Debug("igdclient: M-SEARCH sent", "to", dests, "messages", sent)
		if sent == 0 {
			return errors.Join(errs...)
		}
		return nil
	}
	if err := send(); err != nil {
		return nil, err
	}

	// The second round, from a goroutine that ends before the socket is
	// closed.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		resend := time.NewTimer(wait / 3)
		defer resend.Stop()
		select {
		case <-resend.C:
			_ = send()
		case <-done:
		}
	})
	defer func() {
		close(done)
		wg.Wait()
	}()

	// One deadline for the whole wait; cancelling ctx moves it to now.
	if err := pc.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return nil, fmt.Errorf("igdclient: search socket: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Now()) })
	defer stop()

	var answers []answer
	seen := make(map[string]bool)
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return nil, fmt.Errorf("igdclient: search socket: %w", err)
		}
		if n == len(buf) {
			continue // truncated
		}
		src := from.(*net.UDPAddr).AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if !acceptedSource(src.Addr(), prefixes, dests) {
			c.log.Debug("igdclient: search response from off the link ignored", "from", src, "on_link", prefixes)
			continue
		}
		r, err := upnp.ParseSearchResponse(buf[:n])
		if err != nil {
			c.log.Debug("igdclient: not a search response", "from", src, "err", err)
			continue
		}
		c.log.Debug("igdclient: search response", "from", src, "st", r.ST, "location", r.Location)
		if seen[r.Location] || len(answers) >= maxLocations {
			continue
		}
		u, err := url.Parse(r.Location)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.log.Debug("igdclient: bad location", "from", src, "location", r.Location)
			continue
		}
		seen[r.Location] = true
		answers = append(answers, answer{loc: u, from: src, resp: r})
	}
	return answers, nil
}

// describe fetches the description at loc and returns an IGD for each of
// its connection services, unranked. from is the host that announced loc,
// if any: see Discover on rebasing.
func (c *Client) describe(ctx context.Context, local netip.Addr, loc *url.URL, from netip.Addr) ([]*IGD, error) {
	d, laddr, loc, err := c.fetchAnnounced(ctx, loc, from)
	if err != nil {
		return nil, err
	}
	if !local.IsValid() {
		local = laddr
	}
	svcs := d.ConnectionServices(loc)
	if len(svcs) == 0 {
		return nil, fmt.Errorf("%w at %s: no connection service", ErrNoIGD, loc)
	}
	for _, s := range svcs {
		if foreignURL(s.ControlURL, loc) && c.allowForeign {
			c.log.Warn("igdclient: control URL names another host than the gateway; used, as allowed",
				"control", s.ControlURL.String(), "gateway", loc.Hostname())
		}
	}
	fw, hasFW := d.FirewallControl(loc)
	igds := make([]*IGD, 0, len(svcs))
	for i, s := range svcs {
		g := c.newIGD(loc, local, s)
		g.order = i
		if hasFW {
			g.Firewall = &fw
		}
		igds = append(igds, g)
	}
	return igds, nil
}

// fetchAnnounced fetches the description at loc, announced by from (when
// valid). A loc naming another host than from is fetched from from instead
// (same port and path); with allowForeign, it is tried as announced first,
// with a warning. It returns the description, the local address of the
// connection and the URL it came from.
func (c *Client) fetchAnnounced(ctx context.Context, loc *url.URL, from netip.Addr) (*upnp.Description, netip.Addr, *url.URL, error) {
	if !from.IsValid() || sameHost(loc.Hostname(), from.String()) {
		d, laddr, err := c.fetchDescription(ctx, loc)
		return d, laddr, loc, err
	}
	alt := withHost(loc, from)
	if !c.allowForeign {
		c.log.Debug("igdclient: location names another host than the one that answered; fetching it from the latter",
			"location", loc.String(), "rebased", alt.String())
		d, laddr, err := c.fetchDescription(ctx, alt)
		if err != nil {
			return nil, netip.Addr{}, nil, foreignHostError("location", loc, from.String(), err)
		}
		return d, laddr, alt, nil
	}
	c.log.Warn("igdclient: location names another host than the one that answered; trying it, as allowed",
		"location", loc.String(), "answered", from.String())
	d, laddr, err := c.fetchDescription(ctx, loc)
	var te *transportError
	if err == nil || !errors.As(err, &te) || ctx.Err() != nil {
		return d, laddr, loc, err
	}
	c.log.Warn("igdclient: description host does not answer, trying the host that did",
		"location", loc.String(), "rebased", alt.String(), "err", err)
	d2, laddr2, err2 := c.fetchDescription(ctx, alt)
	if err2 != nil {
		return nil, netip.Addr{}, nil, err
	}
	return d2, laddr2, alt, nil
}

// fetchDescription GETs the description at loc. It returns the local
// address of the connection used.
func (c *Client) fetchDescription(ctx context.Context, loc *url.URL) (*upnp.Description, netip.Addr, error) {
	var mu sync.Mutex
	var local netip.Addr
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if a, ok := info.Conn.LocalAddr().(*net.TCPAddr); ok {
			mu.Lock()
			local = a.AddrPort().Addr().Unmap()
			mu.Unlock()
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("igdclient: description: %w", err)
	}
	req.Header.Set("User-Agent", c.ua)
	req.Close = true
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, netip.Addr{}, &transportError{fmt.Errorf("igdclient: description: %w", err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, netip.Addr{}, fmt.Errorf("igdclient: description %s: http status %q", loc, resp.Status)
	}
	b, err := readLimited(resp.Body, upnp.MaxDescriptionSize)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("igdclient: description %s: %w", loc, err)
	}
	d, err := upnp.ParseDescription(bytes.NewReader(b))
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("igdclient: description %s: %w", loc, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return d, local, nil
}

// rank probes each IGD (status and external address, concurrently) and
// sorts them best first, as described at Discover.
func (c *Client) rank(ctx context.Context, igds []*IGD) {
	var wg sync.WaitGroup
	for _, g := range igds {
		wg.Go(func() {
			if s, err := g.status(ctx); err == nil {
				g.Status = s
			} else {
				c.log.Debug("igdclient: no status", "igd", g.String(), "err", err)
			}
			if g.Status != "" && !connectedStatus(g.Status) {
				return
			}
			if a, err := g.ExternalIPAddress(ctx); err == nil {
				g.ExternalAddr = a
			} else {
				c.log.Debug("igdclient: no external address", "igd", g.String(), "err", err)
			}
		})
	}
	wg.Wait()
	slices.SortStableFunc(igds, compareIGD)
}

// class is the first ranking key: 0 connected with a public address, 1
// connected with another address or none, 2 disconnected.
func (g *IGD) class() int {
	switch {
	case g.Status != "" && !connectedStatus(g.Status):
		return 2
	case PublicAddr(g.ExternalAddr):
		return 0
	}
	return 1
}

// compareIGD orders IGDs best first.
func compareIGD(a, b *IGD) int {
	if c := cmp.Compare(a.class(), b.class()); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Version(), a.Version()); c != 0 {
		return c
	}
	if c := cmp.Compare(typeVersion(b.Service.DeviceType), typeVersion(a.Service.DeviceType)); c != 0 {
		return c
	}
	if c := cmp.Compare(isPPP(a), isPPP(b)); c != 0 {
		return c
	}
	return cmp.Compare(a.order, b.order)
}

// isPPP returns 1 for a WANPPPConnection, 0 otherwise.
func isPPP(g *IGD) int {
	if strings.Contains(g.Service.ServiceType, ":WANPPPConnection:") {
		return 1
	}
	return 0
}

// typeVersion returns the version that ends a URN, 0 if none.
func typeVersion(urn string) int {
	i := strings.LastIndexByte(urn, ':')
	if i < 0 {
		return 0
	}
	v, err := strconv.Atoi(urn[i+1:])
	if err != nil {
		return 0
	}
	return v
}
