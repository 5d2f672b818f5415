// Package igdclient is a UPnP Internet Gateway Device control point: it finds
// the IGDs of a network over SSDP, fetches their descriptions, picks the
// connection service to use and drives it over SOAP (port mappings, external
// address, status). It also listens for SSDP NOTIFY, so that a client learns
// when a router rebooted. The wire formats live in package upnp; this package
// owns the sockets.
//
// It is written for the routers that exist, not only for the specification
// (UPnP Device Architecture 1.1 and 2.0, WANIPConnection:1 and :2). Each
// quirk handled is described where it is handled; in short:
//
//   - Discovery searches for every IGD and connection service type as well as
//     ssdp:all (some devices answer ssdp:all with their first type only),
//     multicast and/or unicast to the gateways (some answer only one of the
//     two), and takes replies from any source port (some reply from a port
//     other than 1900).
//   - A description or control URL may name a host that is not the one that
//     answered: the URL is rebased onto the host that did (see Discover).
//     The other host itself is contacted only when
//     Config.AllowForeignControlURL allows it (see ErrForeignHost).
//   - Answers to searches are taken only from the searching interface's
//     subnets (see Target.OnLink).
//   - Among several IGDs or services, a connected one with a public external
//     address comes first (see Discover for the full order).
//   - AddPortMapping survives 725 OnlyPermanentLeasesSupported, 402 for a
//     lease, 724 SamePortValuesRequired and 718 ConflictInMappingEntry, never
//     sends the wildcard external port 0, and reads the mapping back to learn
//     the lease actually granted.
//   - PortMappings accepts 713, 714 and 402 as the end of the table.
//
// A Client holds no state between calls other than its configuration; an IGD
// remembers only a rebased control URL. Both are safe for concurrent use.
//
// # Network namespaces
//
// Discover and WatchNotify open their UDP sockets on the calling goroutine
// before starting any other, so a caller that runs them inside a network
// namespace (for instance through netlab's Host.Do) gets its sockets there.
// HTTP goes through the configured HTTP client, whose dialer decides the
// namespace: set Config.Dial (or Config.HTTPClient) accordingly.
package igdclient

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/portlease/portlease/upnp"
)

// Sizes and timeouts. Every read from the network is bounded: datagrams by
// maxDatagram, descriptions by upnp.MaxDescriptionSize, SOAP responses by
// upnp.MaxResponseSize, HTTP headers by 64 KiB (own HTTP client).
const (
	// DefaultHTTPTimeout bounds each HTTP exchange of the client's own HTTP
	// client (connect, headers, whole exchange).
	DefaultHTTPTimeout = 5 * time.Second

	// maxDatagram is the receive buffer for SSDP datagrams: one byte more
	// than upnp.MaxSSDPSize, so that a longer datagram shows as truncated
	// and is dropped.
	maxDatagram = upnp.MaxSSDPSize + 1

	// maxRedirects bounds the redirects followed by the client's own HTTP
	// client when it fetches a description.
	maxRedirects = 3
)

// Errors. Faults from the router other than those mapped onto these pass
// through as *upnp.Fault (use errors.As).
var (
	// ErrNotFound: the router holds no such port mapping (714
	// NoSuchEntryInArray). A DeletePortMapping that fails with it may be
	// treated as done.
	ErrNotFound = errors.New("igdclient: no such port mapping")

	// ErrConflict: the external port is held by another mapping (718
	// ConflictInMappingEntry). The error is a *ConflictError, which names the
	// holder when the router let us read it.
	ErrConflict = errors.New("igdclient: external port held by another mapping")

	// ErrNoIGD: discovery found no usable Internet Gateway Device.
	ErrNoIGD = errors.New("igdclient: no internet gateway device found")
)

// Config configures a Client. The zero value is ready to use.
type Config struct {
	// Logger receives debug logs of every exchange and warnings about
	// router quirks. Nil discards them.
	Logger *slog.Logger

	// HTTPClient carries descriptions and SOAP calls. Nil means a client of
	// our own: DefaultHTTPTimeout on connect, headers and whole exchange, no
	// proxy (never from the environment: the router is on the LAN), no
	// connection reuse (routers' small HTTP servers often handle one
	// request per connection), at most 3 redirects. Either way the client
	// uses a copy whose redirects must stay on the gateway's host (see
	// AllowForeignControlURL) before the client's own check applies.
	HTTPClient *http.Client

	// Dial, when set and HTTPClient is nil, opens the TCP connections of the
	// client's own HTTP client (for instance inside a network namespace).
	// Nil means a net.Dialer with DefaultHTTPTimeout.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)

	// AllowForeignControlURL lets a description's location, URLBase or
	// control URLs, and HTTP redirects, name a host other than the gateway
	// (the host that answered the search, or the location's host for
	// Dial), for the rare router that needs it; each such use is logged as
	// a warning. Off, they are refused with an error naming both hosts
	// (ErrForeignHost) and never contacted: only their rebase onto the
	// gateway (same scheme, port and path) is tried.
	AllowForeignControlURL bool

	// UserAgent is sent in M-SEARCH and HTTP requests. Empty means
	// "<OS>/<arch> UPnP/1.1 portlease/0.1" (UDA 1.1 §1.3.2: OS/version
	// UPnP/1.1 product/version).
	UserAgent string
}

// Client discovers and drives IGDs. Create it with New.
type Client struct {
	log          *slog.Logger
	hc           *http.Client
	ua           string
	allowForeign bool
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	c := &Client{log: cfg.Logger, ua: cfg.UserAgent, allowForeign: cfg.AllowForeignControlURL}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = newHTTPClient(cfg.Dial)
	}
	c.hc = trustedHTTPClient(hc, c.allowForeign, c.log)
	if c.ua == "" {
		c.ua = runtime.GOOS + "/" + runtime.GOARCH + " UPnP/1.1 portlease/0.1"
	}
	return c
}

// newHTTPClient builds the client's own HTTP client (see Config.HTTPClient).
func newHTTPClient(dial func(ctx context.Context, network, address string) (net.Conn, error)) *http.Client {
	if dial == nil {
		d := &net.Dialer{Timeout: DefaultHTTPTimeout}
		dial = d.DialContext
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dial,
			DisableKeepAlives:      true,
			DisableCompression:     true,
			ResponseHeaderTimeout:  DefaultHTTPTimeout,
			TLSHandshakeTimeout:    DefaultHTTPTimeout,
			MaxResponseHeaderBytes: 64 << 10,
		},
		Timeout: DefaultHTTPTimeout,
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return errors.New("igdclient: too many redirects")
			}
			return nil
		},
	}
}
