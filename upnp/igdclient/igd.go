package igdclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portlease/portlease/upnp"
)

// IGD is one connection service (WANIPConnection or WANPPPConnection) of an
// Internet Gateway Device, ready to be driven. Discover and Dial return it;
// its exported fields describe it and must not be changed. An IGD is safe for
// concurrent use.
type IGD struct {
	// Location is the URL of the device description, rebased onto the host
	// that answered the search when the announced host did not answer.
	Location *url.URL
	// Local is the local address the IGD is reached from: the one the
	// Target named, else the one the kernel chose for the description's
	// connection. AddPortMapping advertises it as InternalClient by default.
	Local netip.Addr
	// Service is the connection service, as described (its ControlURL is
	// resolved against Location but not rebased; see String for the URL in
	// use).
	Service upnp.ConnectionService
	// FriendlyName and UDN name the root device.
	FriendlyName, UDN string
	// BootID is the BOOTID.UPNP.ORG of the search response (UDA 1.1
	// §1.2.2), -1 when unknown (UDA 1.0 devices, Dial).
	BootID int
	// Server is the SERVER header of the search response, empty for Dial.
	Server string
	// Firewall is the device's WANIPv6FirewallControl:1 service (IGD:2),
	// nil when it has none: the pinhole actions (AddPinhole and the
	// others) go to it.
	Firewall *upnp.ConnectionService

	// Status and ExternalAddr are what the service answered to
	// GetStatusInfo and GetExternalIPAddress when it was found; Status is
	// empty and ExternalAddr invalid when it did not say. They rank IGDs;
	// call Connected and ExternalIPAddress for the current values.
	Status       string
	ExternalAddr netip.Addr

	c     *Client
	order int // discovery order, the last sort key

	mu      sync.Mutex
	control *url.URL // the control URL in use, possibly rebased
	rebased bool     // control has been rebased (or needs no rebase)
}

// newIGD returns an IGD for service s of the description at loc.
func (c *Client) newIGD(loc *url.URL, local netip.Addr, s upnp.ConnectionService) *IGD {
	g := &IGD{
		Location:     loc,
		Local:        local,
		Service:      s,
		FriendlyName: s.FriendlyName,
		UDN:          s.UDN,
		BootID:       -1,
		c:            c,
		control:      s.ControlURL,
		rebased:      !otherHost(s.ControlURL, loc),
	}
	if !c.allowForeign && foreignURL(s.ControlURL, loc) {
		// Never contacted: only its rebase onto the gateway is used.
		g.control, g.rebased = upnp.RebaseToHost(s.ControlURL, loc), true
	}
	return g
}

// controlRefused wraps err, a failure to reach the control URL in use, in
// ErrForeignHost when the described control URL u names another host than
// the description's and was rebased for that reason.
func (g *IGD) controlRefused(u *url.URL, err error) error {
	var te *transportError
	if err == nil || g.c.allowForeign || !foreignURL(u, g.Location) || !errors.As(err, &te) {
		return err
	}
	return foreignHostError("control URL", u, g.Location.Hostname(), err)
}

// String describes g as "WANIPConnection:2 at http://host:port/ctl (name)".
func (g *IGD) String() string {
	ctl, _ := g.controlURL()
	s := shortType(g.Service.ServiceType) + " at " + ctl.String()
	if g.FriendlyName != "" {
		s += " (" + g.FriendlyName + ")"
	}
	return s
}

// Version returns the version of the connection service, 1 or 2.
func (g *IGD) Version() int {
	if g.Service.Version >= 2 {
		return 2
	}
	return 1
}

// ExternalIPAddress asks the router for its external address
// (GetExternalIPAddress). A router without one (it answers "" or 0.0.0.0)
// gives the zero Addr and a nil error. An address that is private, shared
// (100.64/10) or otherwise not public means another NAT beyond the router:
// see PublicAddr.
func (g *IGD) ExternalIPAddress(ctx context.Context) (netip.Addr, error) {
	r, err := g.call(ctx, upnp.GetExternalIPAddress(g.Service.ServiceType))
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := upnp.ExternalIPAddress(r)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("igdclient: GetExternalIPAddress: %w", err)
	}
	return a, nil
}

// Connected reports whether the service's connection is up
// (GetStatusInfo). "Connected" is the specified value; some devices answer
// "Up", which counts as well.
func (g *IGD) Connected(ctx context.Context) (bool, error) {
	s, err := g.status(ctx)
	if err != nil {
		return false, err
	}
	return connectedStatus(s), nil
}

// status returns NewConnectionStatus from GetStatusInfo.
func (g *IGD) status(ctx context.Context) (string, error) {
	r, err := g.call(ctx, upnp.GetStatusInfo(g.Service.ServiceType))
	if err != nil {
		return "", err
	}
	s, err := upnp.StatusInfo(r)
	if err != nil {
		return "", fmt.Errorf("igdclient: GetStatusInfo: %w", err)
	}
	return s, nil
}

// connectedStatus reports whether a NewConnectionStatus means connected.
func connectedStatus(s string) bool {
	return strings.EqualFold(s, "Connected") || strings.EqualFold(s, "Up")
}

// PublicAddr reports whether a is an address the internet can reach: not
// private (RFC 1918), not shared (100.64.0.0/10, RFC 6598, carrier-grade
// NAT), not loopback, link-local, multicast or unspecified. A router whose
// external address is not public sits behind another NAT, and mappings made
// on it are not reachable from the internet.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() ||
		a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	return !sharedPrefix().Contains(a)
}

// sharedPrefix is 100.64.0.0/10, the shared address space of RFC 6598.
func sharedPrefix() netip.Prefix { return netip.MustParsePrefix("100.64.0.0/10") }

// controlURL returns the control URL in use and whether it was rebased or
// needs no rebase.
func (g *IGD) controlURL() (*url.URL, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.control, g.rebased
}

// call performs the SOAP action a on the service.
//
// Quirk: some devices put a host in their control URL (or in the URLBase it
// is resolved against) that is not the host serving the description: a
// stale or WAN-side address, or another box altogether. Such a host is not
// trusted: the call goes to the control URL rebased onto the description's
// host (upnp.RebaseToHost), and when that does not answer the error
// (ErrForeignHost) names both hosts. With Config.AllowForeignControlURL the
// described host is tried first; when it does not answer (the connection
// fails or times out), the call is repeated once rebased, and if that
// works, the IGD keeps using the rebased URL. A control URL on the
// description's host but another port is handled that way in either case.
//
// A gateway that limits each host's request rate answers HTTP 503 with
// Retry-After (RFC 9110 §15.6.4, §10.2.3); the call waits that long, up to
// maxBusyWait, and tries again, at most busyRetries times.
func (g *IGD) call(ctx context.Context, a upnp.Action) (upnp.Response, error) {
	ctl, settled := g.controlURL()
	r, err := g.c.soap(ctx, ctl, a)
	var busy *BusyError
	for try := 0; try < busyRetries && errors.As(err, &busy) && busy.RetryAfter <= maxBusyWait; try++ {
		g.c.log.Debug("igdclient: gateway busy, waiting", "action", a.Name, "retry_after", busy.RetryAfter)
		t := time.NewTimer(max(busy.RetryAfter, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return r, err
		case <-t.C:
		}
		r, err = g.c.soap(ctx, ctl, a)
	}
	var te *transportError
	if err == nil || settled || ctx.Err() != nil || !errors.As(err, &te) {
		return r, g.controlRefused(g.Service.ControlURL, err)
	}
	alt := upnp.RebaseToHost(ctl, g.Location)
	if alt == nil || alt.String() == ctl.String() {
		return r, err
	}
	g.c.log.Warn("igdclient: control URL does not answer, trying the description's host",
		"control", ctl.String(), "rebased", alt.String(), "err", err)
	r2, err2 := g.c.soap(ctx, alt, a)
	if err2 != nil && errors.As(err2, &te) {
		// Neither answers: keep the URL as described and report the
		// first failure.
		return r, err
	}
	g.mu.Lock()
	g.control, g.rebased = alt, true
	g.mu.Unlock()
	return r2, err2
}

// Retries of a call the gateway answers 503 Service Unavailable.
const (
	busyRetries = 3
	maxBusyWait = 10 * time.Second
)

// BusyError is an HTTP 503 answer to an action: the gateway is busy, or
// limits this host's rate of requests (portleased's "request rate per
// host"). RetryAfter is its Retry-After in seconds, 0 when it gave none.
type BusyError struct {
	Action     string
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("igdclient: %s: the gateway is busy or limits this host's requests (HTTP 503, retry after %v)", e.Action, e.RetryAfter)
}

// transportError is a failure to reach the HTTP server at all (no
// connection, no answer), as opposed to an answer we did not like.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// soap posts the envelope of a to ctl and parses the answer. A SOAP fault
// comes back as an error wrapping *upnp.Fault, whatever the HTTP status
// (UDA says 500; some devices send 200).
func (c *Client) soap(ctx context.Context, ctl *url.URL, a upnp.Action) (upnp.Response, error) {
	body := a.AppendEnvelope(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ctl.String(), bytes.NewReader(body))
	if err != nil {
		return upnp.Response{}, fmt.Errorf("igdclient: %s: %w", a.Name, err)
	}
	req.Header.Set("Content-Type", `text/xml; charset="utf-8"`)
	req.Header.Set("SOAPAction", a.SOAPAction())
	req.Header.Set("User-Agent", c.ua)
	// One request per connection: many routers' HTTP servers close after
	// each answer, some mishandle a second request.
	req.Close = true
	resp, err := c.hc.Do(req)
	if err != nil {
		c.log.Debug("igdclient: soap", "action", a.Name, "url", ctl.String(), "err", err)
		return upnp.Response{}, &transportError{fmt.Errorf("igdclient: %s: %w", a.Name, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return upnp.Response{}, &BusyError{Action: a.Name, RetryAfter: time.Duration(max(secs, 0)) * time.Second}
	}
	b, err := readLimited(resp.Body, upnp.MaxResponseSize)
	if err != nil {
		return upnp.Response{}, fmt.Errorf("igdclient: %s: read response: %w", a.Name, err)
	}
	r, err := upnp.ParseResponse(bytes.NewReader(b), a.Name)
	c.log.Debug("igdclient: soap", "action", a.Name, "url", ctl.String(), "status", resp.StatusCode, "err", err)
	if err != nil {
		var f *upnp.Fault
		if !errors.As(err, &f) && resp.StatusCode != http.StatusOK {
			return upnp.Response{}, fmt.Errorf("igdclient: %s: http status %q: %w", a.Name, resp.Status, err)
		}
		return upnp.Response{}, fmt.Errorf("igdclient: %s: %w", a.Name, err)
	}
	return r, nil
}

// errTooLarge reports a body or datagram over its size limit.
var errTooLarge = errors.New("igdclient: response too large")

// readLimited reads all of r, failing with errTooLarge past n bytes.
func readLimited(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > n {
		return nil, errTooLarge
	}
	return b, nil
}

// faultCode returns the UPnP error code carried by err, if any.
func faultCode(err error) (upnp.ErrorCode, bool) {
	var f *upnp.Fault
	if !errors.As(err, &f) {
		return 0, false
	}
	return upnp.ErrorCode(f.Code), true
}

// shortType returns the last two fields of a URN:
// "urn:schemas-upnp-org:service:WANIPConnection:2" -> "WANIPConnection:2".
func shortType(urn string) string {
	f := strings.Split(urn, ":")
	if len(f) < 2 {
		return urn
	}
	return f[len(f)-2] + ":" + f[len(f)-1]
}

// otherHost reports whether u names a host (address or name, and port)
// other than the one of base.
func otherHost(u, base *url.URL) bool {
	if u == nil || base == nil {
		return false
	}
	return !strings.EqualFold(u.Hostname(), base.Hostname()) || effectivePort(u) != effectivePort(base)
}

// effectivePort returns u's port, or the scheme's default.
func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// withHost returns a copy of u with its host replaced by addr, keeping the
// port.
func withHost(u *url.URL, addr netip.Addr) *url.URL {
	v := *u
	v.Host = net.JoinHostPort(addr.String(), effectivePort(u))
	return &v
}
