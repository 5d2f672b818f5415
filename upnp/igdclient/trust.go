package igdclient

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/portlease/portlease/internal/netaddr"
)

// What the client trusts. The gateway is the host that answered the SSDP
// search (or, for Dial, the host of the location given): a description's
// location, its URLBase and control URLs, and every HTTP redirect must name
// that host. A URL naming another one (a control URL of
// http://169.254.169.254/..., say) is never contacted unless
// Config.AllowForeignControlURL says so; rebasing it onto the gateway (same
// scheme, port and path, upnp.RebaseToHost) is always allowed, since it
// moves towards the trusted host. SSDP answers are taken only from
// addresses on the searching interface's subnets (see Target.OnLink).

// ErrForeignHost: a description, a control URL or a redirect names a host
// other than the gateway's, and Config.AllowForeignControlURL is off. The
// error wrapping it names both hosts.
var ErrForeignHost = errors.New("igdclient: URL names a host other than the gateway")

// foreignHostError says that what (a location, control URL or redirect) at
// u names another host than gateway, with the reason it could not be used
// on the gateway instead (nil: none tried).
func foreignHostError(what string, u *url.URL, gateway string, reason error) error {
	err := fmt.Errorf("%w: %s %s names host %s, not the gateway %s (AllowForeignControlURL, portlease --allow-foreign-control-url, allows it)",
		ErrForeignHost, what, u, u.Hostname(), gateway)
	if reason != nil {
		return fmt.Errorf("%w; on the gateway instead: %w", err, reason)
	}
	return err
}

// sameHost reports whether two URL host names (without port) name the same
// host: equal addresses (IPv4-mapped IPv6 and zones aside), or equal names
// in any case.
func sameHost(a, b string) bool {
	x, errA := netip.ParseAddr(a)
	y, errB := netip.ParseAddr(b)
	if errA == nil && errB == nil {
		return x.Unmap().WithZone("") == y.Unmap().WithZone("")
	}
	return strings.EqualFold(a, b)
}

// foreignURL reports whether u names a host other than the one of base
// (ports aside: a gateway may serve its description and control on
// different ports).
func foreignURL(u, base *url.URL) bool {
	if u == nil || base == nil {
		return false
	}
	return !sameHost(u.Hostname(), base.Hostname())
}

// trustedHTTPClient returns a copy of hc whose redirects stay on the host of
// the first request: one to another host fails with ErrForeignHost, or, when
// allow is set, is followed with a warning. Redirects that pass are then
// checked by hc's own CheckRedirect (the default: at most 10).
func trustedHTTPClient(hc *http.Client, allow bool, log *slog.Logger) *http.Client {
	out := *hc
	next := hc.CheckRedirect
	out.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if foreignURL(req.URL, first) {
			if !allow {
				return foreignHostError("redirect from "+first.String()+" to", req.URL, first.Hostname(), nil)
			}
			log.Warn("igdclient: following a redirect to another host than the gateway, as allowed",
				"from", first.String(), "to", req.URL.String())
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("igdclient: stopped after 10 redirects")
		}
		return nil
	}
	return &out
}

// onLink returns the prefixes SSDP answers are taken from for t: t.OnLink
// when set, else the subnets of t's interface (the one named, else the one
// holding t.Local), else those of every interface of the host.
func onLink(t Target) ([]netip.Prefix, error) {
	if t.OnLink != nil {
		return t.OnLink, nil
	}
	ifi, err := multicastInterface(t)
	if err != nil {
		return nil, err
	}
	var addrs []net.Addr
	if ifi != nil {
		addrs, err = ifi.Addrs()
	} else {
		addrs, err = net.InterfaceAddrs()
	}
	if err != nil {
		return nil, fmt.Errorf("igdclient: interface addresses: %w", err)
	}
	return netaddr.Prefixes(addrs), nil
}

// acceptedSource reports whether an SSDP answer from src is taken: src is
// on one of the prefixes, an IPv6 link-local address, or one of the
// destinations the caller asked to search (an address named explicitly).
func acceptedSource(src netip.Addr, prefixes []netip.Prefix, asked []netip.AddrPort) bool {
	src = src.Unmap().WithZone("")
	if src.Is6() && src.IsLinkLocalUnicast() {
		return true
	}
	for _, p := range prefixes {
		if p.Contains(src) {
			return true
		}
	}
	for _, d := range asked {
		if d.Addr().Unmap() == src {
			return true
		}
	}
	return false
}
