package config

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portlease/portlease/gateway"
)

// The defaults that Default sets and Parse keeps where the file is silent.
const (
	defaultMaxLifetime = 86400 * time.Second
	defaultPortLow     = 1024
	defaultPortHigh    = 65535
	// DefaultStateFile is where the leases are kept across restarts
	// when the file does not say otherwise.
	DefaultStateFile = "/var/lib/portleased/leases"
)

// maxIfName is the longest interface name: IFNAMSIZ (16 on Linux and
// OpenBSD) less the terminating NUL. natpmpd refuses longer names too.
const maxIfName = 15

// Config is a parsed portleased.conf.
type Config struct {
	// ExternalInterface is the internet-facing interface ("interface IF").
	ExternalInterface string
	// InterfaceLine is the line of the interface directive in effect, for
	// messages the daemon emits later; 0 if none.
	InterfaceLine int
	// Listen holds the "listen on" directives in file order.
	Listen []Listen
	// PortRange is the range of external ports handed out.
	PortRange gateway.PortRange
	// MaxLifetime is the longest lifetime granted to a mapping.
	MaxLifetime time.Duration
	// Rules are the permission rules as written, first match wins. When
	// there are none the daemon applies its default of allowing ports
	// 1024-65535 to and from each LAN subnet; the parser does not, since only
	// the daemon knows the subnets.
	Rules []gateway.Rule
	// ThirdParty holds the "allow third-party PREFIX" directives in file
	// order: hosts that may map for another internal address (PCP
	// THIRD_PARTY, RFC 6887 §13.1). None by default.
	ThirdParty []netip.Prefix
	// UPnP configures the UPnP IGD service.
	UPnP UPnP
	// PCP configures the PCP front-end.
	PCP PCP
	// Limits are the fair shares: leases per host and in the table.
	Limits Limits
	// RequestRate bounds the requests of each source address ("request
	// rate per host"); the zero value is no limit.
	RequestRate RequestRate
	// StateFile is the file the leases are kept in across restarts
	// ("state file PATH"); empty for "state file none", which keeps them
	// in memory only.
	StateFile string
	// StateFileLine is the line of the state file directive, for messages
	// the daemon emits later; 0 if none.
	StateFileLine int
	// User is the unprivileged user the daemon runs as after its start
	// ("user NAME", default portleased).
	User string
	// UserLine is the line of the user directive; 0 if none.
	UserLine int
	// Firewall is the backend the mappings are enforced with ("firewall",
	// default auto: the daemon picks one at start).
	Firewall Firewall
	// FirewallLine is the line of the firewall directive; 0 if none.
	FirewallLine int
	// Observe is the control socket, the metrics and the status page.
	Observe Observe
}

// Listen is one "listen on" directive: exactly one of Addr and Interface is
// set.
type Listen struct {
	// Addr is the address to listen on, valid if an address was given.
	// "listen on *" is recorded as 0.0.0.0.
	Addr netip.Addr
	// Interface is the interface to listen on, set if a name was given.
	Interface string
	// Line is the line of the directive, for messages the daemon emits
	// later (e.g. "listen on eth9: no such interface").
	Line int
}

// String returns the address or interface name as written in the file.
func (l Listen) String() string {
	if l.Interface != "" {
		return l.Interface
	}
	if l.Addr.IsValid() {
		return l.Addr.String()
	}
	return ""
}

// Error is one problem found in a configuration file.
type Error struct {
	File string
	Line int // 0 for a problem with the file as a whole
	Msg  string
}

// Error formats e as "file:line: msg", or "file: msg" when Line is 0.
func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// ErrorList is every problem found in a configuration file, in line order,
// with the problems of line 0 last.
type ErrorList []*Error

// Error returns the errors one to a line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors of l, for errors.As and errors.Is.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Default returns a Config with the defaults: ports 1024-65535, a maximum
// lifetime of a day, no rules, and neither interface nor listen address.
func Default() *Config {
	return &Config{
		PortRange:   gateway.PortRange{Low: defaultPortLow, High: defaultPortHigh},
		MaxLifetime: defaultMaxLifetime,
		UPnP:        defaultUPnP(),
		PCP:         defaultPCP(),
		Limits:      defaultLimits(),
		RequestRate: RequestRate{PerSecond: DefaultRequestRatePerSecond, Burst: DefaultRequestRateBurst},
		StateFile:   DefaultStateFile,
		User:        DefaultUser,
		Firewall:    FirewallAuto,
		Observe:     defaultObserve(),
	}
}

// ParseFile reads and parses the configuration file at path, naming it path
// in error messages. An error opening or reading the file is returned as is,
// wrapped with "config: "; a file with errors gives the ErrorList of Parse.
func ParseFile(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(path, src)
}

// Parse reads a configuration file from r and parses it. name is the file
// name used in error messages. If the file has any error, Parse returns a nil
// Config and an ErrorList holding every error found.
func Parse(name string, r io.Reader) (*Config, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, ErrorList{{File: name, Msg: "read: " + err.Error()}}
	}
	return parse(name, src)
}

func parse(name string, src []byte) (*Config, error) {
	stmts, errs := lex(name, src)
	p := &parser{file: name, cfg: Default(), errs: errs}
	for _, s := range stmts {
		p.directive(s)
	}
	if !p.sawInterface {
		p.errorf(0, "no interface given")
	}
	if !p.sawListen {
		p.errorf(0, `no "listen on" given`)
	}
	p.checkPCP()
	p.checkObserve()
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int {
			return sortLine(a.Line) - sortLine(b.Line)
		})
		return nil, p.errs
	}
	return p.cfg, nil
}

// sortLine orders line 0, the file as a whole, after every line.
func sortLine(line int) int {
	if line == 0 {
		return math.MaxInt32
	}
	return line
}

// parser holds the state of one Parse.
type parser struct {
	file string
	cfg  *Config
	errs ErrorList

	sawInterface, sawListen   bool
	portRangeLine, lifetimeAt int
	pcpMinAt                  int
	maxPerHostAt              int
	maxMappingsAt             int
	requestRateAt             int
	upnpSeen                  map[string]int
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// once records that the directive what is given at line, in *at, and
// reports true; or, when *at holds an earlier line, reports the directive
// given twice and returns false.
func (p *parser) once(line int, at *int, what string) bool {
	if *at != 0 {
		p.errorf(line, "%s: already given at line %d", what, *at)
		return false
	}
	*at = line
	return true
}

// extra reports the first of args, words left over after a directive.
func (p *parser) extra(what string, args []token) bool {
	if len(args) == 0 {
		return false
	}
	p.errorf(args[0].line, "%s: unexpected %q", what, args[0].text)
	return true
}

// keyword checks that args starts with the second keyword want of directive
// first, and returns the words after it.
func (p *parser) keyword(s statement, want string) ([]token, bool) {
	first, args := s.tokens[0], s.tokens[1:]
	if len(args) == 0 {
		p.errorf(s.line, "%s: expected %q", first.text, want)
		return nil, false
	}
	if args[0].text != want {
		p.errorf(args[0].line, "%s: expected %q, got %q", first.text, want, args[0].text)
		return nil, false
	}
	return args[1:], true
}

func (p *parser) directive(s statement) {
	switch kw := s.tokens[0]; kw.text {
	case "interface":
		p.sawInterface = true
		p.iface(s)
	case "listen":
		p.sawListen = true
		p.listen(s)
	case "port":
		p.portRange(s)
	case "lifetime":
		p.lifetime(s)
	case "allow", "deny":
		p.rule(s)
	case "upnp":
		p.upnp(s)
	case "pcp":
		p.pcp(s)
	case "state":
		p.stateFile(s)
	case "max":
		p.max(s)
	case "user":
		p.user(s)
	case "request":
		p.request(s)
	case "firewall":
		p.firewall(s)
	case "control":
		p.control(s)
	case "metrics":
		p.metrics(s)
	case "status":
		p.status(s)
	default:
		p.errorf(kw.line, "unknown directive %q", kw.text)
	}
}

// iface parses "interface IF". Like natpmpd, a later one replaces an earlier
// one.
func (p *parser) iface(s statement) {
	args := s.tokens[1:]
	if len(args) == 0 {
		p.errorf(s.line, "interface: missing interface name")
		return
	}
	name := args[0]
	ok := true
	if msg := ifNameProblem(name.text, "an interface name"); msg != "" {
		p.errorf(name.line, "interface: %s", msg)
		ok = false
	}
	if p.extra("interface", args[1:]) || !ok {
		return
	}
	p.cfg.ExternalInterface = name.text
	p.cfg.InterfaceLine = s.line
}

// listen parses "listen on ADDRESS|IF|*".
func (p *parser) listen(s statement) {
	args, ok := p.keyword(s, "on")
	if !ok {
		return
	}
	if len(args) == 0 {
		p.errorf(s.line, "listen on: missing address or interface")
		return
	}
	w := args[0]
	l, msg := parseListen(w.text)
	if msg != "" {
		p.errorf(w.line, "listen on: %s", msg)
	}
	if p.extra("listen on", args[1:]) || msg != "" {
		return
	}
	l.Line = s.line
	p.cfg.Listen = append(p.cfg.Listen, l)
}

func parseListen(s string) (Listen, string) {
	if s == "*" {
		return Listen{Addr: netip.IPv4Unspecified()}, ""
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if z := a.Zone(); z != "" && ifNameProblem(z, "") != "" {
			return Listen{}, fmt.Sprintf("%q: bad zone %q", s, z)
		}
		return Listen{Addr: a}, ""
	}
	if strings.Contains(s, ":") || s != "" && strings.Trim(s, "0123456789.") == "" {
		return Listen{}, fmt.Sprintf("%q is not an IP address", s)
	}
	if msg := ifNameProblem(s, "an IP address or an interface name"); msg != "" {
		return Listen{}, msg
	}
	return Listen{Interface: s}, ""
}

// ifNameProblem says what makes s unfit as an interface name, "" if
// nothing. Beyond Linux's rules (no /, : or blank space, not . or ..) it
// refuses what would need quoting in the file, so String can write any name
// bare. what names the expected thing in the message.
func ifNameProblem(s, what string) string {
	if s == "" || s == "." || s == ".." {
		return fmt.Sprintf("%q is not %s", s, what)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`/:#"'\*`, c) >= 0 {
			return fmt.Sprintf("%q is not %s", s, what)
		}
	}
	if len(s) > maxIfName {
		return fmt.Sprintf("%q is too long for an interface name (at most %d bytes)", s, maxIfName)
	}
	return ""
}

// portRange parses "port range LOW-HIGH".
func (p *parser) portRange(s statement) {
	args, ok := p.keyword(s, "range")
	if !ok {
		return
	}
	if len(args) == 0 {
		p.errorf(s.line, "port range: missing LOW-HIGH")
		return
	}
	if !p.once(s.line, &p.portRangeLine, "port range") {
		return
	}
	w := args[0]
	r, msg := parseRange(w.text, 1)
	if msg != "" {
		p.errorf(w.line, "port range: %s", msg)
	}
	if p.extra("port range", args[1:]) || msg != "" {
		return
	}
	p.cfg.PortRange = r
}

// lifetime parses "lifetime max SECONDS".
func (p *parser) lifetime(s statement) {
	args, ok := p.keyword(s, "max")
	if !ok {
		return
	}
	if len(args) == 0 {
		p.errorf(s.line, "lifetime max: missing seconds")
		return
	}
	if !p.once(s.line, &p.lifetimeAt, "lifetime max") {
		return
	}
	w := args[0]
	n, err := strconv.ParseUint(w.text, 10, 32)
	bad := err != nil || n == 0
	if bad {
		p.errorf(w.line, "lifetime max: %s is not a number of seconds (1-%d)", quoteNonNumber(w.text), uint64(math.MaxUint32))
	}
	if p.extra("lifetime max", args[1:]) || bad {
		return
	}
	p.cfg.MaxLifetime = time.Duration(n) * time.Second
}

// stateFile parses "state file PATH|none". PATH must be absolute: the
// daemon may change its working directory.
func (p *parser) stateFile(s statement) {
	args, ok := p.keyword(s, "file")
	if !ok {
		return
	}
	if len(args) == 0 {
		p.errorf(s.line, "state file: missing path (or none)")
		return
	}
	if !p.once(s.line, &p.cfg.StateFileLine, "state file") {
		return
	}
	w := args[0]
	if p.extra("state file", args[1:]) {
		return
	}
	switch {
	case w.text == "none":
		p.cfg.StateFile = ""
	case !filepath.IsAbs(w.text):
		p.errorf(w.line, "state file: %q is not an absolute path", w.text)
	default:
		p.cfg.StateFile = filepath.Clean(w.text)
	}
}

// rule parses "allow|deny EXT-PORTS ADDRESS[/MASK] INT-PORTS" and
// "allow third-party ADDRESS[/MASK]".
func (p *parser) rule(s statement) {
	verb, args := s.tokens[0].text, s.tokens[1:]
	if len(args) > 0 && args[0].text == "third-party" {
		p.thirdParty(s)
		return
	}
	if len(args) < 3 {
		p.errorf(s.line, "%s: missing fields (want %q)", verb, verb+" EXT-PORTS ADDRESS[/MASK] INT-PORTS")
		return
	}
	nerr := len(p.errs)
	ext, msg := parseRange(args[0].text, 0)
	if msg != "" {
		p.errorf(args[0].line, "%s: external ports: %s", verb, msg)
	}
	pfx, msg := parsePrefix(args[1].text)
	if msg != "" {
		p.errorf(args[1].line, "%s: internal address: %s", verb, msg)
	}
	in, msg := parseRange(args[2].text, 0)
	if msg != "" {
		p.errorf(args[2].line, "%s: internal ports: %s", verb, msg)
	}
	if len(args) > 3 {
		p.errorf(args[3].line, "%s: unexpected %q (miniupnpd's description filter is not supported)", verb, args[3].text)
	}
	if len(p.errs) > nerr {
		return
	}
	p.cfg.Rules = append(p.cfg.Rules, gateway.Rule{
		Allow:         verb == "allow",
		ExternalPorts: ext,
		Internal:      pfx,
		InternalPorts: in,
	})
}

// thirdParty parses "allow third-party ADDRESS[/MASK]".
func (p *parser) thirdParty(s statement) {
	verb, args := s.tokens[0].text, s.tokens[2:]
	if verb != "allow" {
		p.errorf(s.tokens[1].line, "%s third-party: only \"allow third-party ADDRESS[/MASK]\" exists (none is allowed by default)", verb)
		return
	}
	if len(args) == 0 {
		p.errorf(s.line, "allow third-party: missing address (want %q)", "allow third-party ADDRESS[/MASK]")
		return
	}
	if p.extra("allow third-party", args[1:]) {
		return
	}
	pfx, msg := parsePrefix(args[0].text)
	if msg != "" {
		p.errorf(args[0].line, "allow third-party: %s", msg)
		return
	}
	p.cfg.ThirdParty = append(p.cfg.ThirdParty, pfx)
}

// parseRange parses "N" or "N-M" with lowest <= N <= M <= 65535.
func parseRange(s string, lowest uint16) (gateway.PortRange, string) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		n, msg := parsePort(s, lowest)
		return gateway.PortRange{Low: n, High: n}, msg
	}
	if lo == "" || hi == "" {
		return gateway.PortRange{}, fmt.Sprintf("%q is not a port range (N or N-M)", s)
	}
	a, msg := parsePort(lo, lowest)
	if msg != "" {
		return gateway.PortRange{}, msg
	}
	b, msg := parsePort(hi, lowest)
	if msg != "" {
		return gateway.PortRange{}, msg
	}
	if a > b {
		return gateway.PortRange{}, fmt.Sprintf("%s: low port above high port", s)
	}
	return gateway.PortRange{Low: a, High: b}, ""
}

// parsePort parses a decimal port number from lowest to 65535.
func parsePort(s string, lowest uint16) (uint16, string) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n < uint64(lowest) {
		return 0, fmt.Sprintf("%s is not a port (%d-65535)", quoteNonNumber(s), lowest)
	}
	return uint16(n), ""
}

// quoteNonNumber returns s bare if it is a decimal number, else quoted.
func quoteNonNumber(s string) string {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		return s
	}
	return strconv.Quote(s)
}

// parsePrefix parses miniupnpd's ADDRESS[/MASK], where MASK is a prefix
// length or, for IPv4, a dotted netmask; without a mask the prefix holds the
// one address. The address is kept as written, host bits included.
func parsePrefix(s string) (netip.Prefix, string) {
	as, ms, hasMask := strings.Cut(s, "/")
	a, err := netip.ParseAddr(as)
	switch {
	case err != nil:
		return netip.Prefix{}, fmt.Sprintf("%q is not an IP address", as)
	case a.Zone() != "":
		return netip.Prefix{}, fmt.Sprintf("%q: a zone is not allowed here", as)
	case a.Is4In6():
		return netip.Prefix{}, fmt.Sprintf("%q is an IPv4-mapped address: write it as IPv4", as)
	}
	if !hasMask {
		return netip.PrefixFrom(a, a.BitLen()), ""
	}
	if n, err := strconv.ParseUint(ms, 10, 8); err == nil && int(n) <= a.BitLen() {
		return netip.PrefixFrom(a, int(n)), ""
	}
	if a.Is4() {
		if m, err := netip.ParseAddr(ms); err == nil && m.Is4() {
			b := m.As4()
			v := binary.BigEndian.Uint32(b[:])
			if inv := ^v; inv&(inv+1) != 0 {
				return netip.Prefix{}, fmt.Sprintf("%q is not a contiguous netmask", ms)
			}
			return netip.PrefixFrom(a, bits.OnesCount32(v)), ""
		}
		return netip.Prefix{}, fmt.Sprintf("%q is not a prefix length (0-32) or a netmask", ms)
	}
	return netip.Prefix{}, fmt.Sprintf("%q is not a prefix length (0-%d)", ms, a.BitLen())
}

// String returns c in canonical form, a file that Parse reads back to the
// same Config (line numbers aside). Every setting is written out, defaults
// included.
func (c *Config) String() string {
	var b strings.Builder
	if c.ExternalInterface != "" {
		fmt.Fprintf(&b, "interface %s\n", c.ExternalInterface)
	}
	for _, l := range c.Listen {
		fmt.Fprintf(&b, "listen on %s\n", l)
	}
	fmt.Fprintf(&b, "port range %s\n", c.PortRange)
	fmt.Fprintf(&b, "lifetime max %d\n", c.MaxLifetime/time.Second)
	for _, r := range c.Rules {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	for _, pfx := range c.ThirdParty {
		fmt.Fprintf(&b, "allow third-party %s\n", pfx)
	}
	b.WriteString(upnpString(c.UPnP))
	b.WriteString(pcpString(c.PCP))
	b.WriteString(limitsString(c.Limits))
	fmt.Fprintf(&b, "request rate per host %s\n", c.RequestRate)
	fmt.Fprintf(&b, "user %s\n", c.User)
	fmt.Fprintf(&b, "firewall %s\n", c.Firewall)
	b.WriteString(observeString(c.Observe))
	if c.StateFile == "" {
		b.WriteString("state file none\n")
	} else {
		fmt.Fprintf(&b, "state file %s\n", c.StateFile)
	}
	return b.String()
}
