// Package ssdpsrv is the SSDP side of the gateway's UPnP IGD (UPnP Device
// Architecture 1.1 §1, Discovery): it answers M-SEARCH requests from the LAN
// and advertises the device with NOTIFY messages. The HTTP side, which
// serves the description at each Link's Location, is another package's.
//
// Sockets. Listen opens every socket, so that the caller can run it in the
// network namespace the daemon serves; Serve and the other methods only use
// them, from any goroutine:
//
//   - one UDP socket bound to 0.0.0.0:1900 (SO_REUSEADDR and SO_REUSEPORT,
//     to share the port with other SSDP listeners such as minissdpd), a
//     member of 239.255.255.250 on each Link's interface and of no other
//     group (IP_MULTICAST_ALL off), told the interface and destination of
//     each datagram (IP_PKTINFO): the multicast searches;
//   - per Link, a socket bound to the Link's address, port 1900, with the
//     same options: the unicast searches to that address, which the kernel
//     delivers to it rather than to any socket bound to 0.0.0.0:1900 (so
//     that another listener sharing the port cannot take them), and the
//     NOTIFY messages, multicast through the Link's interface with TTL 2
//     (UDA 1.1 §1.1.2: "The TTL for the IP packet SHOULD default to 2 and
//     SHOULD be configurable") and without loopback;
//   - when Device.SearchPort is set, a socket on 0.0.0.0 and that port, for
//     unicast searches only.
//
// Links with an IPv6 address get the same over IPv6 (ipv6.go): a socket on
// [::]:1900 (IPV6_V6ONLY, IPV6_MULTICAST_ALL off, IPV6_RECVPKTINFO), a
// member of FF02::C and FF05::C on each such Link's interface, one bound
// to each Link's IPv6 address, and one on [::] and the SearchPort. IPv6
// advertisements go to both groups, with HOST "[ff02::c]:1900" or
// "[ff05::c]:1900" and the IPv6 Link's Location.
//
// Search responses go out through the socket the search came in on, with
// IP_PKTINFO naming the source address and the Link's interface: from the
// port the searcher sent to, on the interface the search came in on (UDA
// 1.1 §1.3.3: "Multi-homed devices MUST send the search response using the
// same UPnP-enabled interface on which the search request was received").
//
// The WAN side. Only datagrams that arrive through a Link's interface are
// read; the rest are dropped without a word, whatever their destination
// address, so that SSDP stays silent to the WAN, and advertisements go out on
// the Links only.
//
// Bounds. Delayed answers wait in a queue of Config.MaxPending searches,
// of which one source address may hold an eighth; searches beyond are
// dropped, so that a flood of M-SEARCH neither grows memory nor keeps other
// hosts' searches out. Datagrams that are not M-SEARCH requests are ignored.
package ssdpsrv

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portlease/portlease/upnp"
)

// Device is what is advertised: a root device with its embedded devices and
// services (UDA 1.1 §1.2.2).
type Device struct {
	// UUID is the root device's UDN without "uuid:" (UDA 1.1 §1.1.4).
	UUID string
	// DeviceTypes are the root device's type first (upnp.DeviceIGD2),
	// then the embedded devices' types (upnp.DeviceWAN2,
	// upnp.DeviceWANConnection2). A search for a lower version of a type
	// is answered too (UDA 1.1 §1.3.2).
	DeviceTypes []string
	// ServiceTypes are the services' types (upnp.ServiceWANIP2,
	// upnp.ServiceWANCommon1), lower versions answered as for DeviceTypes.
	ServiceTypes []string
	// UUIDs maps an embedded device's type to its UUID, and a service's
	// type to the UUID of the device that holds it (without "uuid:"), as
	// the description has them (UDA 1.1 §1.2.2: an embedded device is
	// advertised as "uuid:device-UUID", a service in the USN
	// "uuid:device-UUID::urn:…:service:serviceType:v" of its device). A
	// type that is not in it is the root device's, or held by it.
	UUIDs map[string]string
	// Server is the SERVER header, "OS/version UPnP/1.1 product/version"
	// (UDA 1.1 §1.2.2), for example "Linux/6.1 UPnP/1.1 portleased/0.1".
	// Required.
	Server string
	// BootID is BOOTID.UPNP.ORG and ConfigID CONFIGID.UPNP.ORG (UDA 1.1
	// §1.2.2), 0 to 2^31-1. BootID is to grow at each start of the daemon;
	// ConfigID changes with the description. Server.Update changes them
	// while serving.
	BootID, ConfigID int
	// MaxAge is the max-age of CACHE-CONTROL, in whole seconds; 0 means
	// DefaultMaxAge (UDA 1.1 §1.2.2: it "SHOULD be greater than or equal to
	// 1800 seconds").
	MaxAge time.Duration
	// SearchPort is SEARCHPORT.UPNP.ORG (UDA 1.1 §1.2.2): a port other than
	// 1900 on which unicast M-SEARCH is answered too; Listen opens it. 0
	// (or 1900) means none.
	SearchPort int
}

// Link is a LAN interface the device is served on.
type Link struct {
	// Index and Name name the interface; one of them is enough (Listen
	// resolves the other), and when both are given they must agree.
	Index int
	Name  string
	// Addr is the gateway's address on the interface: the source of
	// NOTIFYs and of the answers to multicast searches there (a unicast
	// search is answered from the address it was sent to). An IPv4 Addr
	// serves the interface over IPv4; a global or unique local IPv6 Addr
	// serves it over IPv6 (FF02::C and FF05::C, see ipv6.go). An
	// interface may have one Link of each family.
	Addr netip.Addr
	// Prefix is the interface's subnet. When it is set, searches from
	// sources outside it are ignored, as miniupnpd ignores a sender "not
	// from a LAN" (IPv6 link-local sources are always on the link); the
	// zero Prefix accepts any source on the interface.
	Prefix netip.Prefix
	// Location is the URL of the root device's description on Addr, for
	// example "http://198.51.100.1:5000/rootDesc.xml" or
	// "http://[2001:db8:100::1]:5000/rootDesc.xml" (UDA 1.1 §1.2.2:
	// "The URL specified in the LOCATION field value MUST be reachable on
	// the interface on which the advertisement is sent").
	Location string
}

// Config configures a Server. Zero values pick the documented defaults.
type Config struct {
	// Device is what is advertised.
	Device Device
	// Links are the LAN interfaces served; at least one.
	Links []Link
	// Logger receives debug records of ignored and dropped packets and of
	// failed sends; nil discards them.
	Logger *slog.Logger
	// NotifyInterval is the time between rounds of ssdp:alive; 0 means
	// Device.MaxAge/2. UDA 1.1 §1.2.2 asks for "a randomly-distributed
	// interval less than one-half of the advertisement expiration time":
	// each interval is drawn from its last quarter below NotifyInterval.
	// It should be at least 30 s in production; tests set it low.
	NotifyInterval time.Duration
	// MaxPending bounds the searches waiting for their random delay;
	// 0 means DefaultMaxPending.
	MaxPending int
	// MulticastTTL is the TTL of NOTIFYs; 0 means DefaultMulticastTTL.
	MulticastTTL int
}

// Defaults of Config and Device.
const (
	// DefaultMaxAge is the max-age of CACHE-CONTROL (UDA 1.1 §1.2.2).
	DefaultMaxAge = 1800 * time.Second
	// DefaultMaxPending is the number of delayed searches held at most.
	DefaultMaxPending = 256
	// DefaultMulticastTTL is the TTL of multicast messages (UDA 1.1
	// §1.1.2: "SHOULD default to 2").
	DefaultMulticastTTL = 2
)

const (
	// announceCopies is how many times each round of advertisements is
	// sent, announcePause apart: UDA 1.1 §1.2.2, "Due to the unreliable
	// nature of UDP, devices SHOULD send the entire set of discovery
	// messages more than once with some delay between sets e.g. a few
	// hundred milliseconds", and not more than three times.
	announceCopies = 2
	announcePause  = 250 * time.Millisecond
	// startJitter bounds the random wait before the first round, so that
	// devices started together (a power cut) do not all speak at once.
	startJitter = 100 * time.Millisecond
	// sourceShare is the part of MaxPending one source address may hold.
	sourceShare = 8
	// acceptQueue is the number of accepted searches handed from the
	// readers to Serve's loop that may wait there; more are dropped.
	acceptQueue = 64
	// maxID is the largest BOOTID.UPNP.ORG and CONFIGID.UPNP.ORG, 2^31-1
	// (UDA 1.1 §1.2.2: "a non-negative 31-bit integer").
	maxID = math.MaxInt32
)

// ErrServerClosed is returned by Serve and Update after Close.
var ErrServerClosed = errors.New("ssdpsrv: server closed")

// Server is an SSDP responder and advertiser made by Listen.
type Server struct {
	dev        Device // BootID and ConfigID are in id
	links      []*link
	inbound    []*inbound
	log        *slog.Logger
	interval   time.Duration
	maxPending int
	// kick asks Serve's loop for a new round of ssdp:alive (Update).
	kick chan struct{}

	mu      sync.Mutex // guards id, serving, closed; held while advertising
	id      ids
	serving bool
	closed  bool
}

// link is a Link with its resolved interface and its socket, bound to
// Addr:1900.
type link struct {
	Link
	sock *inbound
}

// newServer checks cfg and builds a Server without sockets.
func newServer(cfg Config) (*Server, error) {
	d := cfg.Device
	d.UUID = strings.TrimPrefix(d.UUID, "uuid:")
	d.DeviceTypes = append([]string(nil), d.DeviceTypes...)
	d.ServiceTypes = append([]string(nil), d.ServiceTypes...)
	d.UUIDs = make(map[string]string, len(cfg.Device.UUIDs))
	for typ, u := range cfg.Device.UUIDs {
		d.UUIDs[typ] = strings.TrimPrefix(u, "uuid:")
	}
	if d.MaxAge == 0 {
		d.MaxAge = DefaultMaxAge
	}
	switch {
	case d.UUID == "" || strings.ContainsAny(d.UUID, ": \t\r\n"):
		return nil, fmt.Errorf("ssdpsrv: device UUID %q is empty or not a UUID", d.UUID)
	case len(d.DeviceTypes) == 0:
		return nil, errors.New("ssdpsrv: no device type")
	case d.Server == "":
		return nil, errors.New("ssdpsrv: no SERVER string")
	case d.BootID < 0 || d.BootID > maxID:
		return nil, fmt.Errorf("ssdpsrv: BOOTID %d out of range 0..%d", d.BootID, maxID)
	case d.ConfigID < 0 || d.ConfigID > maxID:
		return nil, fmt.Errorf("ssdpsrv: CONFIGID %d out of range 0..%d", d.ConfigID, maxID)
	case d.MaxAge < time.Second || d.MaxAge/time.Second > maxID:
		return nil, fmt.Errorf("ssdpsrv: max-age %v out of range", d.MaxAge)
	case d.SearchPort < 0 || d.SearchPort > 65535:
		return nil, fmt.Errorf("ssdpsrv: search port %d out of range", d.SearchPort)
	case len(cfg.Links) == 0:
		return nil, errors.New("ssdpsrv: no link")
	case cfg.NotifyInterval < 0:
		return nil, fmt.Errorf("ssdpsrv: negative notify interval %v", cfg.NotifyInterval)
	case cfg.MaxPending < 0:
		return nil, fmt.Errorf("ssdpsrv: negative MaxPending %d", cfg.MaxPending)
	case cfg.MulticastTTL < 0 || cfg.MulticastTTL > 255:
		return nil, fmt.Errorf("ssdpsrv: multicast TTL %d out of range", cfg.MulticastTTL)
	}
	types := append(d.DeviceTypes[:len(d.DeviceTypes):len(d.DeviceTypes)], d.ServiceTypes...)
	for _, typ := range types {
		if typ == "" || strings.HasPrefix(typ, "uuid:") || typ == upnp.SearchAll || typ == upnp.SearchRootDevice {
			return nil, fmt.Errorf("ssdpsrv: %q is not a device or service type", typ)
		}
	}
	for typ, u := range d.UUIDs {
		switch {
		case typ == d.DeviceTypes[0] || !slices.Contains(types, typ):
			return nil, fmt.Errorf("ssdpsrv: UUID given for %q, not an embedded device's or a service's type", typ)
		case u == "" || strings.ContainsAny(u, ": \t\r\n"):
			return nil, fmt.Errorf("ssdpsrv: UUID %q of %s is empty or not a UUID", u, typ)
		}
	}
	s := &Server{
		dev:        d,
		log:        cfg.Logger,
		interval:   cfg.NotifyInterval,
		maxPending: cfg.MaxPending,
		kick:       make(chan struct{}, 1),
		id:         ids{boot: d.BootID, config: d.ConfigID},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.interval == 0 {
		s.interval = d.MaxAge / 2
	}
	if s.maxPending == 0 {
		s.maxPending = DefaultMaxPending
	}
	for i, l := range cfg.Links {
		switch {
		case l.Index < 0 || l.Index == 0 && l.Name == "":
			return nil, fmt.Errorf("ssdpsrv: link %d: no interface", i)
		case l.Addr.Is4() && !l.Addr.IsGlobalUnicast() && !l.Addr.IsLinkLocalUnicast():
			return nil, fmt.Errorf("ssdpsrv: link %d: %v is not a unicast IPv4 address", i, l.Addr)
		case !l.Addr.Is4() && (!l.Addr.Is6() || l.Addr.Is4In6() || !l.Addr.IsGlobalUnicast() || l.Addr.Zone() != ""):
			return nil, fmt.Errorf("ssdpsrv: link %d: %v is not a global or unique local IPv6 address", i, l.Addr)
		case l.Prefix.IsValid() && !l.Prefix.Contains(l.Addr):
			return nil, fmt.Errorf("ssdpsrv: link %d: prefix %v does not hold %v", i, l.Prefix, l.Addr)
		}
		l.Prefix = l.Prefix.Masked()
		// Every message the link will carry must encode; Location and
		// the device's strings are checked here once.
		for _, t := range d.targets() {
			if _, err := d.appendNotify(nil, notifyHost(groups(l.Addr.Is4())[0]), t, upnp.NTSAlive, l.Location, s.id, -1); err != nil {
				return nil, fmt.Errorf("ssdpsrv: link %d: %w", i, err)
			}
			if _, err := d.appendResponse(nil, t, l.Location, s.id); err != nil {
				return nil, fmt.Errorf("ssdpsrv: link %d: %w", i, err)
			}
		}
		s.links = append(s.links, &link{Link: l})
	}
	return s, nil
}

// Listen checks cfg and opens the server's sockets (see the package
// documentation) in the calling goroutine's network namespace: call it in
// the namespace the daemon serves. Nothing is sent until Serve.
func Listen(cfg Config) (*Server, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	ifis := make([]*net.Interface, len(s.links))
	type served struct {
		index int
		is4   bool
	}
	seen := make(map[served]bool, len(s.links))
	for i, l := range s.links {
		var ifi *net.Interface
		if l.Index != 0 {
			ifi, err = net.InterfaceByIndex(l.Index)
		} else {
			ifi, err = net.InterfaceByName(l.Name)
		}
		switch {
		case err != nil:
			return nil, fmt.Errorf("ssdpsrv: link %d: %w", i, err)
		case l.Name != "" && ifi.Name != l.Name:
			return nil, fmt.Errorf("ssdpsrv: link %d: interface %d is %s, not %s", i, l.Index, ifi.Name, l.Name)
		case seen[served{ifi.Index, l.Addr.Is4()}]:
			return nil, fmt.Errorf("ssdpsrv: link %d: interface %s served twice over %s", i, ifi.Name, familyName(l.Addr))
		}
		seen[served{ifi.Index, l.Addr.Is4()}] = true
		l.Index, l.Name = ifi.Index, ifi.Name
		ifis[i] = ifi
	}
	if err := s.open(ifis, cfg.MulticastTTL); err != nil {
		s.closeSockets()
		return nil, err
	}
	return s, nil
}

// open opens the sockets of Listen, those of each family only when a Link
// has it; the caller closes what was opened when it fails.
func (s *Server) open(ifis []*net.Interface, ttl int) error {
	if ttl == 0 {
		ttl = DefaultMulticastTTL
	}
	for _, is4 := range []bool{true, false} {
		if err := s.openFamily(ifis, is4); err != nil {
			return err
		}
	}
	for i, l := range s.links {
		in, err := listenShared(netip.AddrPortFrom(l.Addr, upnp.SSDPPort))
		if err != nil {
			return err
		}
		l.sock = in
		s.inbound = append(s.inbound, in)
		if err := in.setMulticast(ifis[i], ttl); err != nil {
			return err
		}
	}
	return nil
}

// openFamily opens the wildcard sockets of one family when a Link has it:
// port 1900, a member of the family's groups on each such Link's
// interface, and the SearchPort.
func (s *Server) openFamily(ifis []*net.Interface, is4 bool) error {
	unspecified := netip.IPv6Unspecified()
	if is4 {
		unspecified = netip.IPv4Unspecified()
	}
	var in *inbound
	for i, l := range s.links {
		if l.Addr.Is4() != is4 {
			continue
		}
		if in == nil {
			var err error
			if in, err = listenShared(netip.AddrPortFrom(unspecified, upnp.SSDPPort)); err != nil {
				return err
			}
			s.inbound = append(s.inbound, in)
		}
		for _, g := range groups(is4) {
			if err := in.join(ifis[i], g); err != nil {
				return fmt.Errorf("ssdpsrv: join %v on %s: %w", g, l.Name, err)
			}
		}
	}
	if p := s.dev.searchPort(); p != 0 && in != nil {
		in, err := listenShared(netip.AddrPortFrom(unspecified, uint16(p)))
		if err != nil {
			return err
		}
		in.unicastOnly = true
		s.inbound = append(s.inbound, in)
	}
	return nil
}

// Close closes the sockets: a running Serve returns ErrServerClosed at
// once, without ssdp:byebye (cancel Serve's context first for those). It is
// safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	return s.closeSockets()
}

func (s *Server) closeSockets() error {
	var errs []error
	for _, in := range s.inbound {
		errs = append(errs, in.conn.Close())
	}
	return errors.Join(errs...)
}

// Update changes BOOTID.UPNP.ORG and CONFIGID.UPNP.ORG, for example after a
// Link's address changed. While Serve runs and bootID differs from the
// current one, it first sends ssdp:update for every target on every Link,
// with the current BOOTID and bootID as NEXTBOOTID.UPNP.ORG (UDA 1.1
// §1.2.4: "all ssdp:update messages MUST be sent before any announcement
// messages with the new BOOTID.UPNP.ORG field value can be sent"); then
// Serve sends a new round of ssdp:alive with the new values, and answers
// searches with them. BOOTID never decreases (UDA 1.1 §1.2.2: it "MUST be
// increased on each initial announce").
func (s *Server) Update(bootID, configID int) error {
	switch {
	case bootID < 0 || bootID > maxID:
		return fmt.Errorf("ssdpsrv: BOOTID %d out of range 0..%d", bootID, maxID)
	case configID < 0 || configID > maxID:
		return fmt.Errorf("ssdpsrv: CONFIGID %d out of range 0..%d", configID, maxID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrServerClosed
	case bootID < s.id.boot:
		return fmt.Errorf("ssdpsrv: BOOTID %d is below the current %d", bootID, s.id.boot)
	}
	if s.serving && bootID != s.id.boot {
		s.advertiseLocked(upnp.NTSUpdate, bootID)
	}
	s.id = ids{boot: bootID, config: configID}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// IDs returns the current BOOTID.UPNP.ORG and CONFIGID.UPNP.ORG.
func (s *Server) IDs() (bootID, configID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id.boot, s.id.config
}

// Serve answers searches and advertises the device until ctx is done or
// Close is called. It can be called once; Close the server after it
// returns.
//
// It starts as WANIPConnection:2 asks (service template §1.2: "Upon startup,
// UPnP IGD DCP MUST broadcast an ssdp:byebye before sending the initial
// ssdp:alive"), with ssdp:byebye for every target, then advertises with
// ssdp:alive (UDA 1.1 §1.2.2): every target on every Link, each round sent
// twice 250 ms apart, the first after a random wait below 100 ms and the
// next ones about every NotifyInterval.
//
// It answers an M-SEARCH that arrives through a Link's interface (UDA 1.1
// §1.3.2) with one search response per matching target (see Device.answers),
// with the Link's Location, to the searcher's address and port: a multicast
// one spread at random through four fifths of its MX (a multicast search
// without MX is discarded, as §1.3.2 requires), a unicast one at once.
//
// When ctx is done, it sends ssdp:byebye for every target on every Link
// (UDA 1.1 §1.2.3), drops the answers still waiting and returns nil. After
// Close it returns ErrServerClosed; on a socket error, that error.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrServerClosed
	case s.serving:
		s.mu.Unlock()
		return errors.New("ssdpsrv: Serve called twice")
	}
	s.serving = true
	s.mu.Unlock()

	searches := make(chan search, acceptQueue)
	errc := make(chan error, len(s.inbound))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, in := range s.inbound {
		wg.Go(func() { errc <- s.read(in, searches, stop) })
	}

	err := s.loop(ctx, searches, errc)

	// Stop the readers: a read deadline in the past ends a blocked read.
	close(stop)
	for _, in := range s.inbound {
		_ = in.conn.SetReadDeadline(time.Unix(1, 0))
	}
	wg.Wait()
	if err == nil {
		s.mu.Lock()
		s.advertiseLocked(upnp.NTSByeBye, -1)
		s.mu.Unlock()
	}
	return err
}

// loop is Serve's scheduler: it advertises, holds delayed answers and sends
// them. It returns nil when ctx is done, or the first reader's error.
func (s *Server) loop(ctx context.Context, searches <-chan search, errc <-chan error) error {
	q := newQueue(s.maxPending)
	rnd := rand.Int64N
	var buf []byte

	s.mu.Lock()
	s.advertiseLocked(upnp.NTSByeBye, -1)
	s.mu.Unlock()

	announce := time.NewTimer(time.Duration(rnd(int64(startJitter))))
	defer announce.Stop()
	copies := announceCopies
	replies := time.NewTimer(time.Hour)
	replies.Stop()
	defer replies.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-announce.C:
			s.mu.Lock()
			s.advertiseLocked(upnp.NTSAlive, -1)
			s.mu.Unlock()
			copies--
			if copies > 0 {
				announce.Reset(announcePause)
			} else {
				copies = announceCopies
				announce.Reset(s.period(rnd))
			}
		case <-s.kick:
			copies = announceCopies
			announce.Reset(0)
		case sr := <-searches:
			now := time.Now()
			if sr.window == 0 {
				for _, t := range s.dev.answers(sr.st) {
					buf = s.reply(buf[:0], sr, t)
				}
				break
			}
			p := &pending{search: sr, deadline: now.Add(sr.window)}
			p.due = now.Add(nextDelay(sr.window, len(s.dev.answers(sr.st)), rnd))
			if !q.add(p) {
				s.log.Debug("search dropped: too many pending", "client", sr.to, "st", sr.st)
			}
		case <-replies.C:
		}
		// Send what is due, then wait for what is next.
		now := time.Now()
		for p := q.due(now); p != nil; p = q.due(now) {
			answers := s.dev.answers(p.st)
			if p.sent < len(answers) {
				buf = s.reply(buf[:0], p.search, answers[p.sent])
				p.sent++
			}
			if p.sent < len(answers) {
				p.due = now.Add(nextDelay(p.deadline.Sub(now), len(answers)-p.sent, rnd))
				q.requeue(p)
			} else {
				q.done(p)
			}
		}
		if next, ok := q.next(); ok {
			replies.Reset(next.Sub(now))
		} else {
			replies.Stop()
		}
	}
}

// period returns the wait before the next round of ssdp:alive: a random
// time in the last quarter below NotifyInterval.
func (s *Server) period(rnd func(int64) int64) time.Duration {
	quarter := int64(s.interval / 4)
	if quarter <= 0 {
		return s.interval
	}
	return s.interval - time.Duration(rnd(quarter))
}

// read hands the searches that arrive on in to Serve's loop until stop is
// closed (nil), the socket is closed (ErrServerClosed) or fails.
func (s *Server) read(in *inbound, out chan<- search, stop <-chan struct{}) error {
	buf := make([]byte, upnp.MaxSSDPSize+1) // one more: larger reads as too large
	for {
		n, ifindex, dst, src, ok, err := in.readFrom(buf)
		if err != nil {
			select {
			case <-stop:
				return nil
			default:
			}
			var ne net.Error
			switch {
			case errors.Is(err, net.ErrClosed):
				return ErrServerClosed
			case errors.As(err, &ne) && ne.Timeout():
				continue
			}
			return fmt.Errorf("ssdpsrv: read: %w", err)
		}
		if !ok {
			continue
		}
		sr, err := s.accept(buf[:n], ifindex, dst, src)
		if err != nil {
			s.log.Debug("packet ignored", "client", src, "ifindex", ifindex, "len", n, "err", err)
			continue
		}
		if in.unicastOnly && sr.multicast {
			continue
		}
		sr.via = in
		select {
		case out <- sr:
		default:
			s.log.Debug("search dropped: busy", "client", sr.to, "st", sr.st)
		}
	}
}

// search is an accepted M-SEARCH: what to answer, to whom, how.
type search struct {
	// st is the search target asked for.
	st string
	// to is the searcher's address and port, where answers go; from is
	// their source address: the address a unicast search was sent to,
	// else the link's.
	to   netip.AddrPort
	from netip.Addr
	// link is where the search came in, and answers go out.
	link *link
	// via is the socket the search came in on, and answers go out of.
	via *inbound
	// multicast tells a search sent to an SSDP group from a unicast one.
	multicast bool
	// window is the time the answers may be spread over; 0 for at once.
	window time.Duration
}

// Reasons why accept ignores a datagram.
var (
	errNotLink      = errors.New("ssdpsrv: not from a served interface")
	errSource       = errors.New("ssdpsrv: source not a unicast address of the link")
	errDestination  = errors.New("ssdpsrv: destination not SSDP")
	errNoMX         = errors.New("ssdpsrv: multicast search without a valid MX")
	errNoTarget     = errors.New("ssdpsrv: no target matches")
	errNotSearchReq = errors.New("ssdpsrv: not an M-SEARCH request")
)

// accept decides whether a datagram that arrived through interface ifindex
// from src, sent to dst, is a search to answer, and how. It ignores anything
// that did not come through a Link's interface (SSDP stays silent to the
// WAN), from a unicast address of the Link's family (in the Link's Prefix
// when set; any IPv6 link-local one) and port, to an SSDP group of that
// family (ipv6.go) or a unicast address; anything that is not an
// M-SEARCH request (upnp.ParseSearchRequest: NOTIFY, responses, junk), a
// multicast search without an MX of at least 1 (UDA 1.1 §1.3.2: "the device
// MUST silently discard and ignore the search request"), and a search no
// target matches. It only reads the Server's fixed fields.
func (s *Server) accept(pkt []byte, ifindex int, dst netip.Addr, src netip.AddrPort) (search, error) {
	from := src.Addr().Unmap()
	is4 := from.Is4()
	if dst.IsValid() {
		is4 = dst.Is4()
	}
	// The interface's Link of the datagram's family, else its other one
	// (whose checks below then fail).
	var l *link
	for _, c := range s.links {
		if c.Index == ifindex && (l == nil || c.Addr.Is4() == is4) {
			l = c
		}
	}
	if l == nil {
		return search{}, errNotLink
	}
	switch {
	case l.Addr.Is4() && (!from.Is4() || from.IsMulticast() || from.IsUnspecified() || from.IsLoopback() ||
		from == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || src.Port() == 0 ||
		l.Prefix.IsValid() && !l.Prefix.Contains(from)):
		return search{}, errSource
	case !l.Addr.Is4() && !validSource6(l, netip.AddrPortFrom(from, src.Port())):
		return search{}, errSource
	case !dst.IsValid(), dst.Is4() != l.Addr.Is4(), dst.IsMulticast() && !slices.Contains(groups(l.Addr.Is4()), dst.WithZone("")):
		return search{}, errDestination
	}
	req, err := upnp.ParseSearchRequest(pkt)
	if err != nil {
		return search{}, fmt.Errorf("%w: %w", errNotSearchReq, err)
	}
	sr := search{st: req.ST, to: netip.AddrPortFrom(from, src.Port()), from: dst, link: l, multicast: dst.IsMulticast()}
	if sr.multicast {
		sr.from = l.Addr
		if req.MX < 1 {
			return search{}, errNoMX
		}
		sr.window = replyWindow(req.MX, true)
	}
	if len(s.dev.answers(req.ST)) == 0 {
		return search{}, errNoTarget
	}
	return sr, nil
}

// reply sends the search response for t to sr's searcher, through the
// socket and the link the search came in on, from the address a unicast
// search was sent to (the searcher may match the answer to its request)
// or, for a multicast one, from the link's address. It returns buf for
// reuse.
func (s *Server) reply(buf []byte, sr search, t target) []byte {
	s.mu.Lock()
	id := s.id
	s.mu.Unlock()
	buf, err := s.dev.appendResponse(buf, t, sr.link.Location, id)
	if err != nil {
		s.log.Debug("response not built", "st", t.nt, "err", err)
		return buf
	}
	if err := sr.via.writeTo(buf, sr.from.WithZone(""), sr.link.Index, sr.to); err != nil {
		s.log.Debug("response not sent", "client", sr.to, "link", sr.link.Name, "err", err)
	}
	return buf
}

// advertiseLocked multicasts a NOTIFY with sub-type nts for every target on
// every link, to each SSDP group of the link's family (UDA 1.1 §1.2): ssdp:alive, ssdp:byebye, or ssdp:update with
// next as NEXTBOOTID.UPNP.ORG. The caller holds s.mu.
func (s *Server) advertiseLocked(nts string, next int) {
	targets := s.dev.targets()
	var buf []byte
	for _, l := range s.links {
		for _, group := range groups(l.Addr.Is4()) {
			host := notifyHost(group)
			dst := netip.AddrPortFrom(group, upnp.SSDPPort)
			for _, t := range targets {
				var err error
				buf, err = s.dev.appendNotify(buf[:0], host, t, nts, l.Location, s.id, next)
				if err != nil {
					s.log.Debug("advertisement not built", "nts", nts, "nt", t.nt, "err", err)
					continue
				}
				if err := l.sock.writeTo(buf, netip.Addr{}, 0, dst); err != nil {
					s.log.Debug("advertisement not sent", "nts", nts, "link", l.Name, "group", group, "err", err)
				}
			}
		}
	}
}

// pending is a multicast search whose answers wait for their random delay.
type pending struct {
	search
	// due is when the next answer is sent, deadline when the last must.
	due, deadline time.Time
	// sent counts the answers sent.
	sent int
}

// queue holds pending searches by due time, at most max of them and max /
// sourceShare from one source address.
type queue struct {
	h         pendingHeap
	max       int
	perSource int
	bySource  map[netip.Addr]int
}

func newQueue(n int) *queue {
	return &queue{max: n, perSource: max(1, n/sourceShare), bySource: make(map[netip.Addr]int)}
}

// add queues p, or reports false when the queue or p's source's share of
// it is full.
func (q *queue) add(p *pending) bool {
	src := p.to.Addr()
	if len(q.h) >= q.max || q.bySource[src] >= q.perSource {
		return false
	}
	q.bySource[src]++
	heap.Push(&q.h, p)
	return true
}

// due removes and returns the first search due at now, or nil.
func (q *queue) due(now time.Time) *pending {
	if len(q.h) == 0 || q.h[0].due.After(now) {
		return nil
	}
	return heap.Pop(&q.h).(*pending)
}

// requeue puts back a search returned by due that has more to send.
func (q *queue) requeue(p *pending) { heap.Push(&q.h, p) }

// done forgets a search returned by due that has sent everything.
func (q *queue) done(p *pending) {
	src := p.to.Addr()
	if q.bySource[src]--; q.bySource[src] <= 0 {
		delete(q.bySource, src)
	}
}

// next returns when the first search is due.
func (q *queue) next() (time.Time, bool) {
	if len(q.h) == 0 {
		return time.Time{}, false
	}
	return q.h[0].due, true
}

// len returns the number of searches queued or being answered.
func (q *queue) len() int {
	n := 0
	for _, c := range q.bySource {
		n += c
	}
	return n
}

// pendingHeap is a container/heap of pending searches, earliest due first.
type pendingHeap []*pending

func (h pendingHeap) Len() int           { return len(h) }
func (h pendingHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h pendingHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)        { *h = append(*h, x.(*pending)) }
func (h *pendingHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}
