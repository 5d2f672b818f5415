package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// DefaultControlSocket is where the operator's control socket is made
// ("control socket PATH|none").
const DefaultControlSocket = "/run/portleased/control"

// minStatusToken is the shortest token "status page token" accepts.
const minStatusToken = 16

// Observe configures what shows the gateway to its operator: the control
// socket, the metrics over HTTP and the status page on the LAN (issue 14).
type Observe struct {
	// ControlSocket is the path of the Unix socket of the control API and
	// the operator command ("control socket PATH|none"); empty: none.
	ControlSocket string
	// ControlSocketLine is the line of "control socket"; 0 if none.
	ControlSocketLine int
	// MetricsListen is the address and port the Prometheus metrics are
	// served on over HTTP ("metrics listen ADDRESS:PORT"); not valid:
	// only on the control socket.
	MetricsListen netip.AddrPort
	// MetricsLine is the line of "metrics listen", for messages the
	// daemon emits later (an address on the WAN link); 0 if none.
	MetricsLine int
	// StatusPage serves the status page on the UPnP HTTP port ("status
	// page on|off", on by default).
	StatusPage bool
	// StatusAdmin lets the page delete leases, with StatusToken ("status
	// page admin on|off", off by default).
	StatusAdmin bool
	// StatusToken is the token the page's control actions must carry
	// ("status page token TOKEN"); required with StatusAdmin.
	StatusToken string
	// StatusLine is the line of the last "status page" directive; 0 if
	// none.
	StatusLine int
}

func defaultObserve() Observe {
	return Observe{ControlSocket: DefaultControlSocket, StatusPage: true}
}

// control parses "control socket PATH|none".
func (p *parser) control(s statement) {
	args, ok := p.keyword(s, "socket")
	if !ok {
		return
	}
	if len(args) == 0 {
		p.errorf(s.line, "control socket: missing path (or none)")
		return
	}
	w := args[0]
	if p.extra("control socket", args[1:]) {
		return
	}
	p.cfg.Observe.ControlSocketLine = s.line
	switch {
	case w.text == "none":
		p.cfg.Observe.ControlSocket = ""
	case !filepath.IsAbs(w.text):
		p.errorf(w.line, "control socket: %q is not an absolute path", w.text)
	default:
		p.cfg.Observe.ControlSocket = filepath.Clean(w.text)
	}
}

// metrics parses "metrics listen ADDRESS:PORT".
func (p *parser) metrics(s statement) {
	args, ok := p.keyword(s, "listen")
	if !ok {
		return
	}
	if len(args) == 0 {
		p.errorf(s.line, "metrics listen: missing ADDRESS:PORT")
		return
	}
	w := args[0]
	if p.extra("metrics listen", args[1:]) {
		return
	}
	ap, err := netip.ParseAddrPort(w.text)
	if err != nil || ap.Port() == 0 || ap.Addr().IsUnspecified() || ap.Addr().Zone() != "" {
		p.errorf(w.line, "metrics listen: %q: want one address and a port, such as 192.168.1.1:9380 or [2001:db8::1]:9380 (not 0.0.0.0 nor [::]: never on the WAN side)", w.text)
		return
	}
	p.cfg.Observe.MetricsListen = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	p.cfg.Observe.MetricsLine = s.line
}

// status parses "status page on|off", "status page admin on|off" and
// "status page token TOKEN".
func (p *parser) status(s statement) {
	args, ok := p.keyword(s, "page")
	if !ok {
		return
	}
	o := &p.cfg.Observe
	o.StatusLine = s.line
	onOff := func(name string, w []token, set *bool) {
		if len(w) == 0 {
			p.errorf(s.line, "%s: missing on or off", name)
			return
		}
		if p.extra(name, w[1:]) {
			return
		}
		if w[0].text != "on" && w[0].text != "off" {
			p.errorf(w[0].line, "%s: %q: want on or off", name, w[0].text)
			return
		}
		*set = w[0].text == "on"
	}
	switch {
	case len(args) == 0:
		p.errorf(s.line, "status page: missing on, off, admin or token")
	case args[0].text == "on" || args[0].text == "off":
		onOff("status page", args, &o.StatusPage)
	case args[0].text == "admin":
		onOff("status page admin", args[1:], &o.StatusAdmin)
	case args[0].text == "token":
		if len(args) < 2 {
			p.errorf(s.line, "status page token: missing token")
			return
		}
		if p.extra("status page token", args[2:]) {
			return
		}
		t := args[1].text
		if len(t) < minStatusToken || strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r > '~' }) {
			p.errorf(args[1].line, "status page token: want at least %d printable characters without spaces (such as the output of: head -c 24 /dev/urandom | base64)", minStatusToken)
			return
		}
		o.StatusToken = t
	default:
		p.errorf(args[0].line, "status page: unknown setting %q (want on, off, admin or token)", args[0].text)
	}
}

// checkObserve reports the problems of the observe settings as a whole.
func (p *parser) checkObserve() {
	if o := p.cfg.Observe; o.StatusAdmin && o.StatusToken == "" {
		p.errorf(0, "status page admin on needs a status page token")
	}
}

// observeString writes the observe settings as the file would.
func observeString(o Observe) string {
	var b strings.Builder
	if o.ControlSocket == "" {
		b.WriteString("control socket none\n")
	} else {
		fmt.Fprintf(&b, "control socket %s\n", o.ControlSocket)
	}
	if o.MetricsListen.IsValid() {
		fmt.Fprintf(&b, "metrics listen %s\n", o.MetricsListen)
	}
	fmt.Fprintf(&b, "status page %s\n", onOffWord(o.StatusPage))
	fmt.Fprintf(&b, "status page admin %s\n", onOffWord(o.StatusAdmin))
	if o.StatusToken != "" {
		fmt.Fprintf(&b, "status page token %s\n", o.StatusToken)
	}
	return b.String()
}

func onOffWord(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
