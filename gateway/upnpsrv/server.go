// Package upnpsrv is the HTTP side of portleased's UPnP Internet Gateway
// Device: the device and service descriptions (UPnP Device Architecture 1.1
// §2), SOAP control (§3) and GENA eventing (§4) of InternetGatewayDevice:2
// with WANIPConnection:2, or InternetGatewayDevice:1 with WANIPConnection:1,
// served from the lease core (package gateway) that NAT-PMP and PCP share.
// SSDP discovery (§1) is another package's job; it announces the URL that
// DescriptionPath names.
//
// The device is a front-end like natpmpsrv: every port-mapping action turns
// into a call on the one lease table, and the table's answer into a SOAP
// response or fault. The device tree is the one the IGD templates ask for:
//
//	InternetGatewayDevice:N       Layer3Forwarding:1
//	└─ WANDevice:N                WANCommonInterfaceConfig:1
//	   └─ WANConnectionDevice:N   WANIPConnection:N
//	                              WANIPv6FirewallControl:1 (IGD:2, when the core has pinholes)
//
// WANIPv6FirewallControl:1 opens IPv6 pinholes on the same leases as PCP;
// pinhole.go lists its error codes. In secure mode a host opens pinholes
// for its own addresses: those with its link-layer address in
// Config.Neighbours.
//
// Requests come only from the LAN prefixes of Config.Clients, each from the
// prefix of the gateway's address it reached; one host holds at most
// Config.MaxConnectionsPerHost connections, so that it cannot take all
// Config.MaxConnections; a Host header names an address or one of
// Config.HostNames (DNS rebinding); Config.Limiter, when set, bounds each
// client's rate of control actions (HTTP 503 with Retry-After beyond). A
// control request's body is read into one buffer of its length and parsed
// by upnp.ParseActionRequestBody, whose allocation is proportional to it.
// In secure mode (the default) a client maps ports only to its own address
// and deletes only its own mappings. Event callbacks go only to the
// subscriber's own address (CallStranger, CVE-2020-12695).
//
// # Error codes
//
// Every refusal of a control request is a SOAP fault with a UPnPError and
// HTTP status 500 (UDA 1.1 §3.2.2), except a body over the limit (HTTP 413)
// and an action over the client's rate (Config.Limiter: HTTP 503 with
// Retry-After: 1, no body, so that a control point retries rather than
// reading a failure of the action):
//
//	401 Invalid Action          unknown action or service type; SOAPACTION does not name the body's action
//	402 Invalid Args            malformed XML; an argument missing or of the wrong type; NewEnabled 0;
//	                            an internal client that is not IPv4 unicast; internal port 0 (:1)
//	404 Invalid Var             QueryStateVariable of a variable that is not evented
//	501 Action Failed           the kernel refused the change; the link's counters cannot be read
//	601 Argument Value Out of Range   a protocol other than TCP or UDP
//	606 Action not authorized   the permission rules deny the mapping; secure mode: another host's
//	                            address or mapping, NewManage 1; SetConnectionType, RequestConnection,
//	                            ForceTermination
//	713 SpecifiedArrayIndexInvalid   GetGenericPortMappingEntry past the last mapping
//	714 NoSuchEntryInArray      GetSpecificPortMappingEntry, DeletePortMapping of no mapping
//	716 WildCardNotPermittedInExtPort   AddPortMapping of external port 0
//	718 ConflictInMappingEntry  the external port is another internal client's
//	726 RemoteHostOnlySupportsWildcard  AddPortMapping with a remote host
//	728 NoPortMapsAvailable     AddAnyPortMapping finds no allowed port free
//	730 PortMappingNotFound     DeletePortMappingRange, GetListOfPortMappings find nothing
//	732 WildCardNotPermittedInIntPort   internal port 0 (:2)
//	733 InconsistentParameters  a range whose start is above its end
//	720, 721                    SetDefaultConnectionService naming another device, service (Layer3Forwarding:1)
//
// 715, 724, 725, 727, 729 and 731 are never answered: remote hosts are the
// wildcard only (726), ports may differ, leases may have any length, external
// ports may be chosen, NAT-PMP and PCP share the table (a port they hold is a
// plain 718), and SetConnectionType is 606.
//
// The lease core keeps one lease per internal endpoint and protocol (PCP's
// model): mapping a second external port to the same internal address and
// port moves the mapping rather than adding one, as in NAT-PMP.
package upnpsrv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portlease/portlease/internal/defaults"

	"github.com/portlease/portlease/gateway"
)

// Defaults of the limits in Config.
const (
	DefaultMaxRequestBytes  = 64 << 10
	DefaultMaxHeaderBytes   = 8 << 10
	DefaultReadTimeout      = 10 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
	DefaultMaxConnections   = 256
	DefaultMaxSubscriptions = 64
)

// DefaultMaxConnectionsPerHost is the default of Config.MaxConnectionsPerHost:
// a browser opens at most 6 connections to one host, a control point one or
// two.
const DefaultMaxConnectionsPerHost = 16

// Config configures a Server. Table, UUID and Clients are required; the
// zero value of every other field is a documented default.
type Config struct {
	// Table is the lease core. Required.
	Table *gateway.Table
	// Logger receives refused requests and subscriptions at debug level
	// and failures at error level; the table logs grants itself. Nil
	// discards.
	Logger *slog.Logger
	// UUID is the root device's UUID, its UDN without "uuid:" (UDA 1.1
	// §1.1.4); the embedded devices' UDNs are derived from it. Required;
	// keep it stable across restarts.
	UUID string
	// FriendlyName is the device name users see. Default "portleased".
	FriendlyName string
	// Version is the IGD version offered: 2 (the default) describes
	// InternetGatewayDevice:2 with WANIPConnection:2 and still answers
	// requests that name WANIPConnection:1; 1 describes
	// InternetGatewayDevice:1 with WANIPConnection:1 only.
	Version int
	// AllowForeign lets a client map ports to another host's address and
	// delete other hosts' mappings. False (the default) is secure mode: a
	// client maps only to its own source address and deletes only its own
	// mappings, and is answered 606 Action not authorized otherwise.
	AllowForeign bool
	// Neighbours tells the link-layer addresses of LAN hosts: in secure
	// mode a host may open an IPv6 pinhole for any address with the same
	// link-layer address as its own (WANIPv6FirewallControl:1). Nil: only
	// for the address it sends the request from. portleased passes
	// KernelNeighbours{}.
	Neighbours Neighbours
	// MayActFor, when not nil, reports whether requester may open a
	// pinhole for another host's address internal in secure mode (the
	// policy's third-party rule, gateway.Policy.MayActFor).
	MayActFor func(requester, internal netip.Addr) bool
	// PinholePackets counts the packets a pinhole let through
	// (GetPinholePackets, CheckPinholeWorking). Nil: the count is not
	// known; GetPinholePackets is answered 501 Action Failed and
	// CheckPinholeWorking tells whether the pinhole is live.
	PinholePackets func(l gateway.Lease) (uint64, error)
	// OutboundTimeout returns how long the gateway keeps an idle outbound
	// flow of protocol p (GetOutboundPinholeTimeout). Nil means
	// DefaultOutboundTimeout.
	OutboundTimeout func(p gateway.Protocol) (time.Duration, error)
	// Clients are the LAN prefixes served. A connection from any other
	// address (the WAN side, a hostile neighbour) is closed at once.
	// Required.
	Clients []netip.Prefix
	// ExternalInterface is the WAN link, whose counters
	// WANCommonInterfaceConfig reports.
	ExternalInterface string
	// LinkStats reads the WAN link's counters. Nil means
	// DefaultLinkStats(ExternalInterface) when ExternalInterface is set;
	// without either, the counters are answered 501 Action Failed.
	LinkStats func() (LinkStats, error)
	// BootID and ConfigID are BOOTID.UPNP.ORG and CONFIGID.UPNP.ORG
	// (UDA 1.1 §1.2.2); ConfigID is also the configId attribute of the
	// descriptions (§2.3, §2.5). Negative leaves the attribute out.
	BootID, ConfigID int
	// Server is the SERVER header of every response, "OS/version UPnP/1.1
	// product/version" (UDA 1.1 §3.2.2), best the one SSDP sends. Default
	// DefaultServer.
	Server string
	// Dial opens the connections that deliver events to subscribers. Nil
	// means a net.Dialer. Tests aim it into a network namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// MaxRequestBytes bounds a request body. Default 64 KiB.
	MaxRequestBytes int64
	// MaxHeaderBytes bounds a request's header. Default 8 KiB.
	MaxHeaderBytes int
	// ReadTimeout bounds the reading of one request, header and body.
	// Default 10 s.
	ReadTimeout time.Duration
	// IdleTimeout closes a kept-alive connection idle that long. Default
	// 60 s.
	IdleTimeout time.Duration
	// MaxConnections bounds the connections served at once, over all
	// listeners; more wait in the kernel's backlog. Default 256.
	MaxConnections int
	// MaxConnectionsPerHost bounds the connections one source address
	// holds at once, counted as they are accepted, so that one host cannot
	// take every one of MaxConnections: a connection beyond it is closed at
	// once. Default 16.
	MaxConnectionsPerHost int
	// HostNames are names a request's Host header may give besides an IP
	// address (the router's name in the LAN's DNS, "router.lan"), compared
	// without regard to case, with or without a port. Any other name is
	// refused (403): a page of another site that a browser on the LAN
	// loads reaches the gateway under its own name (DNS rebinding).
	HostNames []string
	// Limiter, when not nil, is asked before every control action (SOAP
	// POST) of a client that may change the table (not the reads: see
	// changesState); a refused one is answered HTTP 503 Service
	// Unavailable with Retry-After: 1 and no body, which control points
	// retry later (a SOAP fault would read as the action's own failure).
	// Descriptions and subscriptions are not counted.
	Limiter Limiter
	// MaxSubscriptions bounds the event subscriptions, a quarter of them
	// (at least 4) per client. Default 64.
	MaxSubscriptions int
	// Latency, when set, observes the time each control action (SOAP
	// POST) takes, from its handler's call to its answer's write;
	// descriptions and subscriptions are not observed. Nil: nothing.
	Latency Latency
	// StatusPage, when not nil, serves StatusPath and the paths under it
	// (the operator's status page, package statuspage) after the checks
	// of every request: a LAN client, a Host header that names the
	// gateway, the connections per host. Its requests' context ends when
	// Shutdown begins, so that long responses (event streams) end.
	StatusPage http.Handler
}

// LinkStats are the WAN link's figures that WANCommonInterfaceConfig:1
// reports.
type LinkStats struct {
	BytesSent, BytesReceived     uint64
	PacketsSent, PacketsReceived uint64
	// Up is whether the link is up (PhysicalLinkStatus).
	Up bool
	// MaxBitRateUp and MaxBitRateDown are the link's speed in bit/s, 0
	// when unknown (Layer1UpstreamMaxBitRate, Layer1DownstreamMaxBitRate).
	MaxBitRateUp, MaxBitRateDown uint32
}

// Server is the UPnP IGD device's HTTP server. It serves the same device on
// every listener given to Serve.
type Server struct {
	cfg Config
	// allowForeign is Config.AllowForeign, which SetAllowForeign changes
	// while serving.
	allowForeign atomic.Bool
	log          *slog.Logger
	table        leaseTable
	pinholes     pinholeCore // nil when the core has no pinholes
	http         *http.Server
	desc         []byte
	services     []*service
	byPath       map[string]route
	udnWCD       string // the WANConnectionDevice's UDN
	adv          advertisement
	started      time.Time

	slots     chan struct{} // one per connection served
	conns     hostConns     // connections served per source address
	done      chan struct{} // closed by Shutdown
	notifier  *http.Client
	transport *http.Transport
	notifyCtx context.Context
	stopCtx   context.CancelFunc
	notifySem chan struct{}
	changed   chan struct{} // the table changed (cap 1)
	wg        sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	subs      map[string]*subscription
	perClient map[netip.Addr]int
	watching  bool
	stopWatch func()

	walkMu sync.Mutex
	walks  map[walkKey]walkEntry
}

// route is what a path serves.
type route struct {
	svc  *service
	kind routeKind
	doc  []byte // the description or SCPD
}

type routeKind int

const (
	routeDoc routeKind = iota
	routeControl
	routeEvent
)

// DefaultServer is the SERVER header when Config.Server is empty.
const DefaultServer = "Linux UPnP/1.1 portleased/1.0"

// DescriptionPath is the path of the root device description, the path of
// SSDP's LOCATION.
const DescriptionPath = "/rootDesc.xml"

// New checks cfg and returns a server ready to Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Table == nil {
		return nil, errors.New("upnpsrv: no lease table")
	}
	return newServer(cfg, cfg.Table)
}

// newServer is New with the lease core as an interface, for tests.
func newServer(cfg Config, c core) (*Server, error) {
	cfg.UUID = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(cfg.UUID)), "uuid:")
	if !validUUID(cfg.UUID) {
		return nil, fmt.Errorf("upnpsrv: UUID %q is not 8-4-4-4-12 hexadecimal digits", cfg.UUID)
	}
	switch cfg.Version {
	case 0:
		cfg.Version = 2
	case 1, 2:
	default:
		return nil, fmt.Errorf("upnpsrv: IGD version %d, want 1 or 2", cfg.Version)
	}
	if len(cfg.Clients) == 0 {
		return nil, errors.New("upnpsrv: no client prefixes")
	}
	cfg.HostNames = slices.Clone(cfg.HostNames)
	for i, n := range cfg.HostNames {
		n = strings.TrimSuffix(n, ".")
		if n == "" || strings.ContainsAny(n, ":/[] \t\r\n") {
			return nil, fmt.Errorf("upnpsrv: host name %q", cfg.HostNames[i])
		}
		cfg.HostNames[i] = n
	}
	cfg.Clients = slices.Clone(cfg.Clients)
	for i, p := range cfg.Clients {
		if !p.IsValid() {
			return nil, fmt.Errorf("upnpsrv: client prefix %v", p)
		}
		cfg.Clients[i] = p.Masked()
	}
	if cfg.FriendlyName == "" {
		cfg.FriendlyName = "portleased"
	}
	if cfg.Server == "" || strings.ContainsAny(cfg.Server, "\r\n") {
		cfg.Server = DefaultServer
	}
	if cfg.OutboundTimeout == nil {
		cfg.OutboundTimeout = DefaultOutboundTimeout
	}
	if cfg.LinkStats == nil && cfg.ExternalInterface != "" {
		cfg.LinkStats = DefaultLinkStats(cfg.ExternalInterface)
	}
	defaults.Positive(&cfg.MaxRequestBytes, DefaultMaxRequestBytes)
	defaults.Positive(&cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	defaults.Positive(&cfg.ReadTimeout, DefaultReadTimeout)
	defaults.Positive(&cfg.IdleTimeout, DefaultIdleTimeout)
	defaults.Positive(&cfg.MaxConnections, DefaultMaxConnections)
	defaults.Positive(&cfg.MaxConnectionsPerHost, DefaultMaxConnectionsPerHost)
	defaults.Positive(&cfg.MaxSubscriptions, DefaultMaxSubscriptions)

	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		table:     newLeaseTable(c),
		pinholes:  pinholesOf(c),
		started:   time.Now(),
		slots:     make(chan struct{}, cfg.MaxConnections),
		done:      make(chan struct{}),
		notifySem: make(chan struct{}, maxNotifyConcurrency),
		changed:   make(chan struct{}, 1),
		subs:      make(map[string]*subscription),
		perClient: make(map[netip.Addr]int),
		conns:     hostConns{max: cfg.MaxConnectionsPerHost, n: make(map[netip.Addr]int)},
		walks:     make(map[walkKey]walkEntry),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.allowForeign.Store(cfg.AllowForeign)
	if err := s.buildDevice(); err != nil {
		return nil, err
	}
	s.notifyCtx, s.stopCtx = context.WithCancel(context.Background())
	s.transport = &http.Transport{
		Proxy:                  nil, // events go to the subscriber, never through a proxy
		DialContext:            s.dialNotify,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 4 << 10,
		ResponseHeaderTimeout:  notifyTimeout,
	}
	s.notifier = &http.Client{
		Transport: s.transport,
		Timeout:   notifyTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect would aim events elsewhere
		},
	}
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.ReadTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.ReadTimeout + 10*time.Second,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// validUUID reports whether u has the form of UDA 1.1 §1.1.4,
// 8-4-4-4-12 hexadecimal digits.
func validUUID(u string) bool {
	if len(u) != 36 {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// newUUID returns a random (version 4) UUID, for subscription IDs
// (UDA 1.1 §4.1.2, "SID: uuid:subscription-UUID").
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// DescriptionPath returns the path of the root device description,
// "/rootDesc.xml", the path of the URL that SSDP announces (UDA 1.1 §1.2.2,
// LOCATION).
func (s *Server) DescriptionPath() string { return DescriptionPath }

// Serve serves HTTP on ln, which must listen on a LAN address, until
// Shutdown; it returns http.ErrServerClosed then. It may be called for
// several listeners at once. Connections from outside Config.Clients, or
// from outside the prefix of the address they reached, are closed as soon
// as they are accepted; at most Config.MaxConnections are served at once
// over all listeners, at most Config.MaxConnectionsPerHost from one
// address.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		ln.Close()
		return http.ErrServerClosed
	}
	return s.http.Serve(&guardListener{Listener: ln, s: s})
}

// Shutdown stops serving: it closes the listeners, ends every event
// subscription, and waits for requests and event deliveries in progress to
// finish, or for ctx to be done. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	for sid, sub := range s.subs {
		sub.end()
		delete(s.subs, sid)
	}
	clear(s.perClient)
	stopWatch := s.stopWatch
	s.stopWatch = nil
	s.mu.Unlock()
	if stopWatch != nil {
		stopWatch()
	}
	err := s.http.Shutdown(ctx)
	s.stopCtx()
	waited := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	s.transport.CloseIdleConnections()
	return err
}

// ExternalAddressChanged tells the server that the table's external address
// changed: subscribers of WANIPConnection get ExternalIPAddress and
// ConnectionStatus (Connected while there is an address) in an event
// message, and those of WANCommonInterfaceConfig PhysicalLinkStatus
// (UDA 1.1 §4.2).
func (s *Server) ExternalAddressChanged() { s.wakeAll() }

// SetAllowForeign changes Config.AllowForeign while serving: requests
// handled after it returns follow the new setting. Secure mode is not part
// of the descriptions, so nothing is announced.
func (s *Server) SetAllowForeign(allow bool) { s.allowForeign.Store(allow) }

// allowed reports whether a is in one of the served prefixes.
func (s *Server) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.Clients {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remoteAddr returns the address of a connection's peer, or the zero Addr.
func remoteAddr(hostport string) netip.Addr {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// ServeHTTP answers one request: GET of a description, POST of a control
// action, SUBSCRIBE or UNSUBSCRIBE of events. Serve uses it; it also checks
// the client's address itself, for use behind another listener.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", s.cfg.Server)
	client := remoteAddr(r.RemoteAddr)
	if !s.onLink(client, localAddr(r)) {
		s.log.Debug("refused request", "client", r.RemoteAddr, "path", r.URL.Path)
		httpError(w, http.StatusForbidden)
		return
	}
	// DNS rebinding: a web page of another site that a browser on the LAN
	// loads cannot name the gateway by its address in Host.
	if !s.hostAllowed(r.Host) {
		s.log.Debug("refused request: Host is neither an address nor a host name of the gateway", "client", client, "host", r.Host)
		httpError(w, http.StatusForbidden)
		return
	}
	if s.cfg.StatusPage != nil && isStatusPath(r.URL.Path) {
		s.serveStatus(w, r)
		return
	}
	rt, ok := s.byPath[r.URL.Path]
	if !ok {
		httpError(w, http.StatusNotFound)
		return
	}
	switch rt.kind {
	case routeDoc:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpError(w, http.StatusMethodNotAllowed)
			return
		}
		writeXML(w, http.StatusOK, rt.doc)
	case routeControl:
		s.timedControl(w, r, rt.svc, client)
	case routeEvent:
		s.event(w, r, rt.svc, client)
	}
}

// hostAllowed reports whether the Host header names an IP address or one of
// Config.HostNames, with or without a port. An empty Host (HTTP/1.0) is
// accepted.
func (s *Server) hostAllowed(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		return true
	}
	host = strings.TrimSuffix(host, ".")
	for _, n := range s.cfg.HostNames {
		if strings.EqualFold(host, n) {
			return true
		}
	}
	return false
}

// writeXML sends an XML document with the headers of a description's
// retrieval (UDA 1.1 §2) and of a control response (§3.2.2): CONTENT-TYPE text/xml; charset="utf-8", and EXT, which control
// responses carry (harmless elsewhere). ServeHTTP set SERVER.
func writeXML(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", `text/xml; charset="utf-8"`)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h["EXT"] = []string{""}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// httpError sends a bodyless HTTP error, as GENA's errors are (UDA 1.1
// §4.1.2) and as other errors may be.
func httpError(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Length", "0")
	if status == http.StatusRequestEntityTooLarge || status == http.StatusBadRequest {
		h.Set("Connection", "close") // the rest of the request is not read
	}
	w.WriteHeader(status)
}
