package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// UPnP is the configuration of the UPnP IGD service. UPnP is on by default,
// as NAT-PMP is: a natpmpd.conf with only interface and listen on serves
// both.
type UPnP struct {
	// Enabled is false after "upnp off".
	Enabled bool
	// FriendlyName is the device's friendlyName ("upnp friendly name").
	FriendlyName string
	// HTTPPort is the port of the description and control server on each
	// LAN address ("upnp http port").
	HTTPPort int
	// NotifyInterval is how often ssdp:alive is sent ("upnp notify
	// interval"); the advertisements' max-age is twice as long.
	NotifyInterval time.Duration
	// SecureMode lets a client map ports only to its own address ("upnp
	// secure mode on|off").
	SecureMode bool
	// Version is the InternetGatewayDevice version offered, 1 or 2 ("upnp
	// version"); 2 also answers requests for the version 1 services.
	Version int
	// HostNames are names a request's Host header may give for the
	// gateway besides its addresses ("upnp hostname NAME ..."): upnpc -u
	// http://router.lan:5000/rootDesc.xml. Other names are still refused
	// (DNS rebinding).
	HostNames []string
	// MaxConnectionsPerHost bounds the HTTP connections one source
	// address holds at once ("upnp max connections per host N"); 0, when
	// the directive is not given, is DefaultMaxConnectionsPerHost.
	MaxConnectionsPerHost int
}

// PrivilegedPort reports whether HTTPPort is below 1024, so that the
// daemon keeps CAP_NET_BIND_SERVICE after its privilege drop. It does not
// look at Enabled: a reload may turn UPnP on with the same port.
func (u UPnP) PrivilegedPort() bool { return u.HTTPPort < 1024 }

// The UPnP defaults.
const (
	DefaultFriendlyName   = "portleased"
	DefaultHTTPPort       = 5000
	DefaultNotifyInterval = 900 * time.Second
	DefaultUPnPVersion    = 2
)

// DefaultMaxConnectionsPerHost is the default of "upnp max connections per
// host", of the 256 the HTTP server serves at once.
const DefaultMaxConnectionsPerHost = 16

func defaultUPnP() UPnP {
	return UPnP{
		Enabled:        true,
		FriendlyName:   DefaultFriendlyName,
		HTTPPort:       DefaultHTTPPort,
		NotifyInterval: DefaultNotifyInterval,
		SecureMode:     true,
		Version:        DefaultUPnPVersion,
	}
}

// upnp parses the "upnp ..." directives:
//
//	upnp on|off
//	upnp friendly name NAME
//	upnp http port PORT
//	upnp notify interval SECONDS
//	upnp secure mode on|off
//	upnp version 1|2
//	upnp hostname NAME ...
//	upnp max connections per host N
func (p *parser) upnp(s statement) {
	args := s.tokens[1:]
	if len(args) == 0 {
		p.errorf(s.line, "upnp: expected on, off, friendly name, http port, notify interval, secure mode, version, hostname or max connections per host")
		return
	}
	// The sub-directive is one or two words.
	sub := args[0].text
	rest := args[1:]
	switch sub {
	case "friendly", "http", "notify", "secure":
		second := map[string]string{"friendly": "name", "http": "port", "notify": "interval", "secure": "mode"}[sub]
		if len(rest) == 0 || rest[0].text != second {
			p.errorf(args[0].line, "upnp %s: expected %q", sub, second)
			return
		}
		sub += " " + second
		rest = rest[1:]
	case "max":
		const words = "connections per host"
		if len(rest) < 3 || rest[0].text+" "+rest[1].text+" "+rest[2].text != words {
			p.errorf(args[0].line, "upnp max: expected %q", words)
			return
		}
		sub += " " + words
		rest = rest[3:]
	}
	name := "upnp " + sub
	if sub == "on" || sub == "off" {
		name = "upnp on|off"
	}
	if p.upnpSeen == nil {
		p.upnpSeen = make(map[string]int)
	}
	if at, dup := p.upnpSeen[name]; dup {
		p.errorf(s.line, "%s: already given at line %d", name, at)
		return
	}
	p.upnpSeen[name] = s.line
	one := func() (token, bool) {
		if len(rest) == 0 {
			p.errorf(s.line, "%s: missing value", name)
			return token{}, false
		}
		if p.extra(name, rest[1:]) {
			return token{}, false
		}
		return rest[0], true
	}
	u := &p.cfg.UPnP
	switch sub {
	case "on", "off":
		if !p.extra("upnp "+sub, rest) {
			u.Enabled = sub == "on"
		}
	case "friendly name":
		w, ok := one()
		if !ok {
			return
		}
		if w.text == "" || len(w.text) > 64 || strings.ContainsAny(w.text, "<>&\r\n") {
			p.errorf(w.line, "upnp friendly name: %q: want 1 to 64 characters without < > &", w.text)
			return
		}
		u.FriendlyName = w.text
	case "http port":
		w, ok := one()
		if !ok {
			return
		}
		n, err := strconv.Atoi(w.text)
		if err != nil || n < 1 || n > 65535 {
			p.errorf(w.line, "upnp http port: %s is not a port (1-65535)", quoteNonNumber(w.text))
			return
		}
		u.HTTPPort = n
	case "notify interval":
		w, ok := one()
		if !ok {
			return
		}
		n, err := strconv.Atoi(w.text)
		if err != nil || n < 30 || n > 86400 {
			p.errorf(w.line, "upnp notify interval: %s is not a number of seconds (30-86400)", quoteNonNumber(w.text))
			return
		}
		u.NotifyInterval = time.Duration(n) * time.Second
	case "secure mode":
		w, ok := one()
		if !ok {
			return
		}
		if w.text != "on" && w.text != "off" {
			p.errorf(w.line, "upnp secure mode: %q: want on or off", w.text)
			return
		}
		u.SecureMode = w.text == "on"
	case "version":
		w, ok := one()
		if !ok {
			return
		}
		if w.text != "1" && w.text != "2" {
			p.errorf(w.line, "upnp version: %q: want 1 or 2", w.text)
			return
		}
		u.Version = int(w.text[0] - '0')
	case "hostname":
		if len(rest) == 0 {
			p.errorf(s.line, "%s: missing value", name)
			return
		}
		for _, w := range rest {
			if !hostName(w.text) {
				p.errorf(w.line, "upnp hostname: %q is not a DNS name (letters, digits, - and . ; not an address)", w.text)
				return
			}
		}
		for _, w := range rest {
			u.HostNames = append(u.HostNames, strings.ToLower(strings.TrimSuffix(w.text, ".")))
		}
	case "max connections per host":
		w, ok := one()
		if !ok {
			return
		}
		n, err := strconv.Atoi(w.text)
		if err != nil || n < 1 || n > 256 {
			p.errorf(w.line, "upnp max connections per host: %s is not a number from 1 to 256", quoteNonNumber(w.text))
			return
		}
		u.MaxConnectionsPerHost = n
	default:
		p.errorf(args[0].line, "upnp: unknown setting %q (want on, off, friendly name, http port, notify interval, secure mode, version, hostname or max connections per host)", sub)
	}
}

// ConnectionsPerHost returns the bound on one source address's HTTP
// connections: MaxConnectionsPerHost, or its default when not given.
func (u UPnP) ConnectionsPerHost() int {
	if u.MaxConnectionsPerHost == 0 {
		return DefaultMaxConnectionsPerHost
	}
	return u.MaxConnectionsPerHost
}

// hostName reports whether n is a DNS name (RFC 1123 §2.1: labels of
// letters, digits and "-", not starting or ending with "-", up to 63
// bytes; at most 253 in all, a final "." allowed) that is not an IPv4
// address.
func hostName(n string) bool {
	n = strings.TrimSuffix(n, ".")
	if n == "" || len(n) > 253 {
		return false
	}
	digits := true
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			switch {
			case '0' <= c && c <= '9':
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-':
				digits = false
			default:
				return false
			}
		}
	}
	return !digits
}

// upnpString renders the UPnP settings as directives.
func upnpString(u UPnP) string {
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	s := fmt.Sprintf("upnp %s\nupnp friendly name %q\nupnp http port %d\nupnp notify interval %d\nupnp secure mode %s\nupnp version %d\n",
		onOff(u.Enabled), u.FriendlyName, u.HTTPPort, int(u.NotifyInterval/time.Second), onOff(u.SecureMode), u.Version)
	if len(u.HostNames) > 0 {
		s += "upnp hostname " + strings.Join(u.HostNames, " ") + "\n"
	}
	// Rendered only when given, so that the rendering of a configuration
	// that does not give it stays what it was.
	if u.MaxConnectionsPerHost != 0 {
		s += fmt.Sprintf("upnp max connections per host %d\n", u.MaxConnectionsPerHost)
	}
	return s
}
