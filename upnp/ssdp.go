package upnp

import (
	"slices"
	"strconv"
	"strings"
)

// SSDP start lines (UDA 1.1 §1.1.1: "M-SEARCH * HTTP/1.1", "NOTIFY *
// HTTP/1.1", and the "HTTP/1.1 200 OK" of a search response, §1.3.3).
const (
	startSearch   = "M-SEARCH * HTTP/1.1"
	startNotify   = "NOTIFY * HTTP/1.1"
	startResponse = "HTTP/1.1 200 OK"
)

// Header field names of SSDP (UDA 1.1 §1.2.2 to §1.3.3). Names are matched
// without regard to case (§1.1.2, after HTTP/1.1).
const (
	hdrHost       = "HOST"
	hdrMan        = "MAN"
	hdrMX         = "MX"
	hdrST         = "ST"
	hdrUserAgent  = "USER-AGENT"
	hdrTCPPort    = "TCPPORT.UPNP.ORG"
	hdrCache      = "CACHE-CONTROL"
	hdrExt        = "EXT"
	hdrLocation   = "LOCATION"
	hdrServer     = "SERVER"
	hdrUSN        = "USN"
	hdrNT         = "NT"
	hdrNTS        = "NTS"
	hdrBootID     = "BOOTID.UPNP.ORG"
	hdrConfigID   = "CONFIGID.UPNP.ORG"
	hdrNextBootID = "NEXTBOOTID.UPNP.ORG"
	hdrSearchPort = "SEARCHPORT.UPNP.ORG"
)

// Values of the MAN and NTS header fields (UDA 1.1 §1.2.2, §1.2.3, §1.2.4,
// §1.3.2).
const (
	manDiscover = `"ssdp:discover"`
	// NTSAlive announces a device or service (UDA 1.1 §1.2.2).
	NTSAlive = "ssdp:alive"
	// NTSByeBye withdraws an announcement (UDA 1.1 §1.2.3).
	NTSByeBye = "ssdp:byebye"
	// NTSUpdate announces a new BOOTID.UPNP.ORG (UDA 1.1 §1.2.4).
	NTSUpdate = "ssdp:update"
)

// Limits of SSDP values.
const (
	// MaxMX is the largest MX a search should carry: UDA 1.1 §1.3.2, "MUST
	// be greater than or equal to 1 and SHOULD be less than 5 inclusive",
	// and "If the MX header field specifies a field value greater than 5,
	// the device SHOULD assume that it contained the value 5 or less".
	MaxMX = 5
	// maxID is the largest BOOTID.UPNP.ORG and CONFIGID.UPNP.ORG value this
	// package reads: UDA 1.1 §1.2.2 makes both non-negative 31-bit integers.
	maxID = 1<<31 - 1
)

// SearchRequest is an M-SEARCH request (UDA 1.1 §1.3.2): a control point
// looking for devices or services.
type SearchRequest struct {
	// Host is the HOST header: "239.255.255.250:1900" for a multicast
	// search, the device's host:port for a unicast one. AppendBinary
	// writes the multicast address when it is empty.
	Host string
	// ST is the search target: SearchAll, SearchRootDevice, "uuid:…", a
	// device type or a service type.
	ST string
	// MX is the longest delay in seconds a device may wait before it
	// answers, 1 to MaxMX for a multicast search. A unicast search has
	// none: 0 leaves the header out. ParseSearchRequest lowers values above
	// MaxMX to MaxMX (UDA 1.1 §1.3.2) and gives 0 when MX is absent; a
	// device MUST silently discard a multicast search without a valid MX,
	// which only the server, knowing the destination address, can tell.
	MX int
	// UserAgent is the USER-AGENT header, "OS/version UPnP/1.1
	// product/version"; empty leaves it out.
	UserAgent string
	// TCPPort is TCPPORT.UPNP.ORG (UDA 2.0 §1.3.2), the TCP port on which
	// the control point wants unicast responses; 0 when absent.
	TCPPort int
}

// AppendBinary appends the request to b (UDA 1.1 §1.3.2):
//
//	M-SEARCH * HTTP/1.1
//	HOST: 239.255.255.250:1900
//	MAN: "ssdp:discover"
//	MX: seconds to delay response        (left out when 0)
//	ST: search target
//	USER-AGENT: OS/version UPnP/1.1 product/version   (left out when empty)
//	TCPPORT.UPNP.ORG: port               (left out when 0)
//	(blank line)
//
// every line ending in CRLF. It returns b unchanged and an error wrapping
// ErrInvalid when ST is empty, MX is outside 0..MaxMX or 0 with a multicast
// Host, TCPPort is outside 0..65535, or a value holds a control character.
func (r SearchRequest) AppendBinary(b []byte) ([]byte, error) {
	host := r.Host
	if host == "" {
		host = SSDPMulticastAddr().String()
	}
	switch {
	case r.ST == "":
		return b, invalid("M-SEARCH without ST")
	case r.MX < 0 || r.MX > MaxMX:
		return b, invalid("M-SEARCH MX %d outside 0..%d", r.MX, MaxMX)
	case r.MX == 0 && isMulticastHost(host):
		return b, invalid("multicast M-SEARCH needs MX 1..%d", MaxMX)
	case r.TCPPort < 0 || r.TCPPort > 65535:
		return b, invalid("M-SEARCH TCPPORT.UPNP.ORG %d out of range", r.TCPPort)
	}
	if err := checkValues(host, r.ST, r.UserAgent); err != nil {
		return b, err
	}
	b = appendLine(b, startSearch)
	b = appendHeader(b, hdrHost, host)
	b = appendHeader(b, hdrMan, manDiscover)
	if r.MX > 0 {
		b = appendHeaderInt(b, hdrMX, r.MX)
	}
	b = appendHeader(b, hdrST, r.ST)
	if r.UserAgent != "" {
		b = appendHeader(b, hdrUserAgent, r.UserAgent)
	}
	if r.TCPPort != 0 {
		b = appendHeaderInt(b, hdrTCPPort, r.TCPPort)
	}
	return appendLine(b, ""), nil
}

// ParseSearchRequest decodes an M-SEARCH request received by a device
// (UDA 1.1 §1.3.2). It requires the start line, MAN: "ssdp:discover"
// (quoted or not) and a non-empty ST; HOST and USER-AGENT may be missing.
// MX and TCPPORT.UPNP.ORG, when present, must be numbers (MX above MaxMX
// reads as MaxMX). See parseMessage for the rules every SSDP parser shares.
func ParseSearchRequest(b []byte) (SearchRequest, error) {
	m, err := parseMessage(b)
	if err != nil {
		return SearchRequest{}, err
	}
	if m.start != startSearch && m.start != "M-SEARCH * HTTP/1.0" {
		return SearchRequest{}, notSSDP("start line %q is not %q", m.start, startSearch)
	}
	var r SearchRequest
	var man string
	for _, h := range slices.Backward(m.headers) {
		switch {
		case strings.EqualFold(h.name, hdrHost):
			r.Host = h.value
		case strings.EqualFold(h.name, hdrMan):
			man = h.value
		case strings.EqualFold(h.name, hdrST):
			r.ST = h.value
		case strings.EqualFold(h.name, hdrMX):
			n, ok := parseUint31(h.value)
			if !ok {
				return SearchRequest{}, malformed("M-SEARCH MX %q is not a number of seconds", h.value)
			}
			r.MX = min(n, MaxMX)
		case strings.EqualFold(h.name, hdrUserAgent):
			r.UserAgent = h.value
		case strings.EqualFold(h.name, hdrTCPPort):
			n, ok := parseUint31(h.value)
			if !ok || n == 0 || n > 65535 {
				return SearchRequest{}, malformed("M-SEARCH TCPPORT.UPNP.ORG %q is not a port", h.value)
			}
			r.TCPPort = n
		}
	}
	switch {
	case !strings.EqualFold(strings.Trim(man, `"`), "ssdp:discover"):
		return SearchRequest{}, malformed("M-SEARCH MAN %q is not %s", man, manDiscover)
	case r.ST == "":
		return SearchRequest{}, malformed("M-SEARCH without ST")
	}
	return r, nil
}

// SearchResponse is a device's answer to an M-SEARCH (UDA 1.1 §1.3.3).
type SearchResponse struct {
	// ST is the search target the response answers.
	ST string
	// USN is the unique service name, "uuid:device-UUID::type" or
	// "uuid:device-UUID" (UDA 1.1 §1.2.2); SplitUSN splits it.
	USN string
	// Location is the URL of the root device's description (§2.1).
	Location string
	// Server is "OS/version UPnP/1.1 product/version", free text in
	// practice; empty when absent.
	Server string
	// MaxAge is the max-age directive of CACHE-CONTROL in seconds, how long
	// the advertisement is valid; -1 when absent or unreadable.
	MaxAge int
	// BootID is BOOTID.UPNP.ORG, -1 when absent (UDA 1.0 devices).
	BootID int
	// ConfigID is CONFIGID.UPNP.ORG, -1 when absent.
	ConfigID int
	// SearchPort is SEARCHPORT.UPNP.ORG, the port the device answers
	// unicast searches on when it is not 1900; 0 when absent.
	SearchPort int
}

// AppendBinary appends the response to b (UDA 1.1 §1.3.3):
//
//	HTTP/1.1 200 OK
//	CACHE-CONTROL: max-age=seconds       (left out when MaxAge < 0)
//	EXT:
//	LOCATION: URL of the description
//	SERVER: OS/version UPnP/1.1 product/version   (left out when empty)
//	ST: search target
//	USN: unique service name
//	BOOTID.UPNP.ORG: n                   (left out when < 0)
//	CONFIGID.UPNP.ORG: n                 (left out when < 0)
//	SEARCHPORT.UPNP.ORG: port            (left out when 0)
//	(blank line)
//
// DATE, which §1.3.3 only recommends, is left out: this package keeps no
// clock. EXT is always there: §1.3.3 requires it "for backwards
// compatibility with UPnP 1.0". It returns b unchanged and an error wrapping
// ErrInvalid when ST, USN or Location is empty, an ID is above 2^31-1,
// SearchPort is outside 0..65535, or a value holds a control character.
func (r SearchResponse) AppendBinary(b []byte) ([]byte, error) {
	switch {
	case r.ST == "" || r.USN == "" || r.Location == "":
		return b, invalid("search response needs ST, USN and LOCATION")
	case r.MaxAge > maxID || r.BootID > maxID || r.ConfigID > maxID:
		return b, invalid("search response max-age or ID above 2^31-1")
	case r.SearchPort < 0 || r.SearchPort > 65535:
		return b, invalid("search response SEARCHPORT.UPNP.ORG %d out of range", r.SearchPort)
	}
	if err := checkValues(r.ST, r.USN, r.Location, r.Server); err != nil {
		return b, err
	}
	b = appendLine(b, startResponse)
	if r.MaxAge >= 0 {
		b = appendMaxAge(b, r.MaxAge)
	}
	b = appendHeader(b, hdrExt, "")
	b = appendHeader(b, hdrLocation, r.Location)
	if r.Server != "" {
		b = appendHeader(b, hdrServer, r.Server)
	}
	b = appendHeader(b, hdrST, r.ST)
	b = appendHeader(b, hdrUSN, r.USN)
	b = appendIDs(b, r.BootID, r.ConfigID, -1, r.SearchPort)
	return appendLine(b, ""), nil
}

// ParseSearchResponse decodes a device's answer to an M-SEARCH (UDA 1.1
// §1.3.3). The status line must be "HTTP/1.1 200" or "HTTP/1.0 200", any
// reason phrase: some routers answer in HTTP/1.0. ST, USN and LOCATION are
// required; EXT, SERVER, DATE and the UDA 1.1 fields may be missing, and an
// unreadable CACHE-CONTROL, BOOTID.UPNP.ORG, CONFIGID.UPNP.ORG or
// SEARCHPORT.UPNP.ORG reads as absent rather than losing the gateway (the
// Sagemcom F@ST 3890 of tailscale issue 3557 sends a UUID in 01-NLS; others
// put spaces in "max-age = 1800", as UDA 1.0's own template does). See
// parseMessage for the rules every SSDP parser shares.
func ParseSearchResponse(b []byte) (SearchResponse, error) {
	m, err := parseMessage(b)
	if err != nil {
		return SearchResponse{}, err
	}
	if !isOKStatus(m.start) {
		return SearchResponse{}, notSSDP("status line %q is not %q", m.start, startResponse)
	}
	r := SearchResponse{MaxAge: -1, BootID: -1, ConfigID: -1}
	for _, h := range slices.Backward(m.headers) {
		switch {
		case strings.EqualFold(h.name, hdrST):
			r.ST = h.value
		case strings.EqualFold(h.name, hdrUSN):
			r.USN = h.value
		case strings.EqualFold(h.name, hdrLocation):
			r.Location = h.value
		case strings.EqualFold(h.name, hdrServer):
			r.Server = h.value
		case strings.EqualFold(h.name, hdrCache):
			r.MaxAge = parseMaxAge(h.value)
		case strings.EqualFold(h.name, hdrBootID):
			r.BootID = parseID(h.value)
		case strings.EqualFold(h.name, hdrConfigID):
			r.ConfigID = parseID(h.value)
		case strings.EqualFold(h.name, hdrSearchPort):
			r.SearchPort = parsePortHeader(h.value)
		}
	}
	if r.ST == "" || r.USN == "" || r.Location == "" {
		return SearchResponse{}, malformed("search response without ST, USN or LOCATION")
	}
	return r, nil
}

// Notify is an SSDP advertisement (UDA 1.1 §1.2): NOTIFY with NTS
// ssdp:alive (§1.2.2), ssdp:byebye (§1.2.3) or ssdp:update (§1.2.4).
type Notify struct {
	// Host is the HOST header; AppendBinary writes
	// "239.255.255.250:1900" when it is empty.
	Host string
	// NT is the notification type: SearchRootDevice, "uuid:…", a device
	// type or a service type.
	NT string
	// NTS is NTSAlive, NTSByeBye or NTSUpdate.
	NTS string
	// USN is the unique service name (§1.2.2).
	USN string
	// Location is the URL of the root device's description; required for
	// ssdp:alive and ssdp:update, absent from ssdp:byebye.
	Location string
	// Server is the SERVER header of ssdp:alive; empty when absent.
	Server string
	// MaxAge is the max-age of CACHE-CONTROL (ssdp:alive), -1 when absent
	// or unreadable.
	MaxAge int
	// BootID is BOOTID.UPNP.ORG, -1 when absent.
	BootID int
	// ConfigID is CONFIGID.UPNP.ORG, -1 when absent.
	ConfigID int
	// NextBootID is NEXTBOOTID.UPNP.ORG of ssdp:update, -1 when absent.
	NextBootID int
	// SearchPort is SEARCHPORT.UPNP.ORG, 0 when absent.
	SearchPort int
}

// AppendBinary appends the advertisement to b (UDA 1.1 §1.2.2 to §1.2.4):
//
//	NOTIFY * HTTP/1.1
//	HOST: 239.255.255.250:1900
//	CACHE-CONTROL: max-age=seconds       (left out when MaxAge < 0)
//	LOCATION: URL of the description     (left out when empty)
//	SERVER: OS/version UPnP/1.1 product/version   (left out when empty)
//	NT: notification type
//	NTS: ssdp:alive | ssdp:byebye | ssdp:update
//	USN: unique service name
//	BOOTID.UPNP.ORG: n                   (left out when < 0)
//	CONFIGID.UPNP.ORG: n                 (left out when < 0)
//	NEXTBOOTID.UPNP.ORG: n               (left out when < 0)
//	SEARCHPORT.UPNP.ORG: port            (left out when 0)
//	(blank line)
//
// It writes the fields that are set; an ssdp:byebye should leave Location,
// Server and MaxAge unset, as §1.2.3 lists none of them. It returns b
// unchanged and an error wrapping ErrInvalid when NT or USN is empty, NTS is
// not one of the three, Location is empty for ssdp:alive or ssdp:update, a
// number is out of range, or a value holds a control character.
func (n Notify) AppendBinary(b []byte) ([]byte, error) {
	host := n.Host
	if host == "" {
		host = SSDPMulticastAddr().String()
	}
	switch {
	case n.NT == "" || n.USN == "":
		return b, invalid("NOTIFY needs NT and USN")
	case n.NTS != NTSAlive && n.NTS != NTSByeBye && n.NTS != NTSUpdate:
		return b, invalid("NOTIFY NTS %q is not ssdp:alive, ssdp:byebye or ssdp:update", n.NTS)
	case n.NTS != NTSByeBye && n.Location == "":
		return b, invalid("NOTIFY %s needs LOCATION", n.NTS)
	case n.MaxAge > maxID || n.BootID > maxID || n.ConfigID > maxID || n.NextBootID > maxID:
		return b, invalid("NOTIFY max-age or ID above 2^31-1")
	case n.SearchPort < 0 || n.SearchPort > 65535:
		return b, invalid("NOTIFY SEARCHPORT.UPNP.ORG %d out of range", n.SearchPort)
	}
	if err := checkValues(host, n.NT, n.USN, n.Location, n.Server); err != nil {
		return b, err
	}
	b = appendLine(b, startNotify)
	b = appendHeader(b, hdrHost, host)
	if n.MaxAge >= 0 {
		b = appendMaxAge(b, n.MaxAge)
	}
	if n.Location != "" {
		b = appendHeader(b, hdrLocation, n.Location)
	}
	if n.Server != "" {
		b = appendHeader(b, hdrServer, n.Server)
	}
	b = appendHeader(b, hdrNT, n.NT)
	b = appendHeader(b, hdrNTS, n.NTS)
	b = appendHeader(b, hdrUSN, n.USN)
	b = appendIDs(b, n.BootID, n.ConfigID, n.NextBootID, n.SearchPort)
	return appendLine(b, ""), nil
}

// ParseNotify decodes an SSDP advertisement (UDA 1.1 §1.2). NT, USN and an
// NTS of ssdp:alive, ssdp:byebye or ssdp:update are required, and LOCATION
// for ssdp:alive and ssdp:update; HOST, SERVER and the UDA 1.1 fields may be
// missing, and unreadable numbers read as absent, as in ParseSearchResponse.
// See parseMessage for the rules every SSDP parser shares.
func ParseNotify(b []byte) (Notify, error) {
	m, err := parseMessage(b)
	if err != nil {
		return Notify{}, err
	}
	if m.start != startNotify && m.start != "NOTIFY * HTTP/1.0" {
		return Notify{}, notSSDP("start line %q is not %q", m.start, startNotify)
	}
	n := Notify{MaxAge: -1, BootID: -1, ConfigID: -1, NextBootID: -1}
	for _, h := range slices.Backward(m.headers) {
		switch {
		case strings.EqualFold(h.name, hdrHost):
			n.Host = h.value
		case strings.EqualFold(h.name, hdrNT):
			n.NT = h.value
		case strings.EqualFold(h.name, hdrNTS):
			n.NTS = h.value
		case strings.EqualFold(h.name, hdrUSN):
			n.USN = h.value
		case strings.EqualFold(h.name, hdrLocation):
			n.Location = h.value
		case strings.EqualFold(h.name, hdrServer):
			n.Server = h.value
		case strings.EqualFold(h.name, hdrCache):
			n.MaxAge = parseMaxAge(h.value)
		case strings.EqualFold(h.name, hdrBootID):
			n.BootID = parseID(h.value)
		case strings.EqualFold(h.name, hdrConfigID):
			n.ConfigID = parseID(h.value)
		case strings.EqualFold(h.name, hdrNextBootID):
			n.NextBootID = parseID(h.value)
		case strings.EqualFold(h.name, hdrSearchPort):
			n.SearchPort = parsePortHeader(h.value)
		}
	}
	switch {
	case n.NT == "" || n.USN == "":
		return Notify{}, malformed("NOTIFY without NT or USN")
	case strings.EqualFold(n.NTS, NTSAlive):
		n.NTS = NTSAlive
	case strings.EqualFold(n.NTS, NTSByeBye):
		n.NTS = NTSByeBye
	case strings.EqualFold(n.NTS, NTSUpdate):
		n.NTS = NTSUpdate
	default:
		return Notify{}, malformed("NOTIFY NTS %q is not ssdp:alive, ssdp:byebye or ssdp:update", n.NTS)
	}
	if n.NTS != NTSByeBye && n.Location == "" {
		return Notify{}, malformed("NOTIFY %s without LOCATION", n.NTS)
	}
	return n, nil
}

// SplitUSN splits a unique service name (UDA 1.1 §1.2.2, the NT and USN
// pairs of a device and its services) into
// the device's UDN and the type after "::": "uuid:X::upnp:rootdevice" gives
// "uuid:X" and "upnp:rootdevice"; "uuid:X" alone gives "uuid:X" and "".
func SplitUSN(usn string) (udn, typ string) {
	udn, typ, _ = strings.Cut(usn, "::")
	return udn, typ
}

// header is one header field of an SSDP message.
type header struct{ name, value string }

// message is an SSDP message split into its start line and header fields.
type message struct {
	start   string
	headers []header
}

// parseMessage splits an SSDP message (UDA 1.1 §1.1: HTTP/1.1 messages over
// UDP, without a body) into its start line and header fields. It is strict
// about structure and lenient where real devices differ:
//
//   - more than MaxSSDPSize bytes: ErrTooLarge;
//   - lines end in CRLF or a bare LF; the blank line that ends the headers
//     may be missing (the datagram ends the message), and anything after it
//     is ignored (some devices add "Content-Length: 0" and nothing else);
//   - empty lines before the start line are skipped (RFC 9112 §2.2);
//   - every header line needs a colon and a token for a name; names are
//     matched without regard to case; spaces and tabs around names and
//     values are dropped ("Location:http://…" of the Linksys answer quoted
//     in miniupnpd's minissdp.c, "ST : x");
//   - a line starting with a space or tab continues the previous value
//     (obsolete line folding, RFC 9112 §5.2), joined with one space;
//   - a control character other than tab in a value: ErrMalformed;
//   - when a field appears twice, the first one counts: the parsers walk
//     the fields from the last to the first.
func parseMessage(b []byte) (message, error) {
	if len(b) > MaxSSDPSize {
		return message{}, ErrTooLarge
	}
	s := string(b)
	var line string
	for {
		if s == "" {
			return message{}, notSSDP("empty message")
		}
		line, s = nextLine(s)
		if line != "" {
			break
		}
	}
	m := message{start: strings.TrimRight(line, " \t")}
	for s != "" {
		line, s = nextLine(s)
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(m.headers) == 0 {
				return message{}, malformed("SSDP continuation line before any header")
			}
			h := &m.headers[len(m.headers)-1]
			if v := trimSpace(line); v != "" {
				if err := checkText(v); err != nil {
					return message{}, err
				}
				h.value = strings.TrimLeft(h.value+" "+v, " ")
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return message{}, malformed("SSDP header line %q without a colon", truncate(line))
		}
		name, value = trimSpace(name), trimSpace(value)
		if !isToken(name) {
			return message{}, malformed("SSDP header name %q is not a token", truncate(name))
		}
		if err := checkText(value); err != nil {
			return message{}, err
		}
		m.headers = append(m.headers, header{name, value})
	}
	return m, nil
}

// nextLine returns the first line of s without its CRLF or LF, and the rest.
func nextLine(s string) (line, rest string) {
	line, rest, _ = strings.Cut(s, "\n")
	return strings.TrimSuffix(line, "\r"), rest
}

// trimSpace drops spaces and tabs, the HTTP whitespace, from both ends.
func trimSpace(s string) string { return strings.Trim(s, " \t") }

// truncate shortens s for an error message.
func truncate(s string) string {
	const n = 40
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// isOKStatus reports whether line is the status line of a successful
// HTTP/1.1 or HTTP/1.0 response: "HTTP/1.1 200", then a reason phrase or
// nothing.
func isOKStatus(line string) bool {
	rest, ok := strings.CutPrefix(line, "HTTP/1.1 ")
	if !ok {
		rest, ok = strings.CutPrefix(line, "HTTP/1.0 ")
	}
	if !ok {
		return false
	}
	code, _, _ := strings.Cut(trimSpace(rest), " ")
	return code == "200"
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), the form of
// a header field name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// checkText returns an error wrapping ErrMalformed when s holds a control
// character other than tab: in a header value, CR or LF would end the line
// early and the others have no business there (RFC 9110 §5.5).
func checkText(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return malformed("SSDP header value %q holds control character %#x", truncate(s), c)
		}
	}
	return nil
}

// checkValues returns an error wrapping ErrInvalid when a header value to
// be written holds a control character other than tab, or starts or ends
// with white space, which a parser would drop.
func checkValues(values ...string) error {
	for _, v := range values {
		if checkText(v) != nil || trimSpace(v) != v {
			return invalid("SSDP header value %q cannot be written", truncate(v))
		}
	}
	return nil
}

// isMulticastHost reports whether a HOST value names an SSDP multicast
// group, where a search needs an MX (UDA 1.1 §1.3.2 and Appendix A).
func isMulticastHost(host string) bool {
	return host == SSDPMulticastAddr().String() ||
		strings.EqualFold(strings.TrimSuffix(host, ":1900"), "[ff02::c]") ||
		strings.EqualFold(strings.TrimSuffix(host, ":1900"), "[ff05::c]") ||
		strings.EqualFold(strings.TrimSuffix(host, ":1900"), "[ff0e::c]")
}

// parseUint31 reads a decimal number from 0 to 2^31-1.
func parseUint31(s string) (int, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n <= maxID
}

// parseID reads BOOTID.UPNP.ORG, CONFIGID.UPNP.ORG or NEXTBOOTID.UPNP.ORG,
// non-negative 31-bit numbers (UDA 1.1 §1.2.2), -1 when unreadable.
func parseID(s string) int {
	if n, ok := parseUint31(s); ok {
		return n
	}
	return -1
}

// parsePortHeader reads SEARCHPORT.UPNP.ORG, 0 when unreadable.
func parsePortHeader(s string) int {
	if n, ok := parseUint31(s); ok && n <= 65535 {
		return n
	}
	return 0
}

// parseMaxAge reads the max-age directive of a CACHE-CONTROL value
// ("max-age=1800"; UDA 1.1 §1.2.2, "Other directives MUST NOT be sent and
// MUST be ignored when received"), or -1. Spaces around "=" and a quoted
// number are accepted: UDA 1.0 printed "max-age = seconds" in its own
// template, and ohNet sent it so (openhome/ohNet issue 17).
func parseMaxAge(v string) int {
	for d := range strings.SplitSeq(v, ",") {
		name, val, ok := strings.Cut(d, "=")
		if !ok || !strings.EqualFold(trimSpace(name), "max-age") {
			continue
		}
		if n, ok := parseUint31(strings.Trim(trimSpace(val), `"`)); ok {
			return n
		}
		return -1
	}
	return -1
}

// appendLine appends s and CRLF.
func appendLine(b []byte, s string) []byte {
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// appendHeader appends "NAME: value" and CRLF, or "NAME:" and CRLF for an
// empty value (the EXT: of UDA 1.1 §1.3.3).
func appendHeader(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ':')
	if value != "" {
		b = append(b, ' ')
		b = append(b, value...)
	}
	return append(b, '\r', '\n')
}

// appendHeaderInt appends "NAME: n" and CRLF.
func appendHeaderInt(b []byte, name string, n int) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// appendMaxAge appends "CACHE-CONTROL: max-age=n" and CRLF.
func appendMaxAge(b []byte, n int) []byte {
	b = append(b, hdrCache+": max-age="...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// appendIDs appends the UDA 1.1 fields that are present: BOOTID.UPNP.ORG,
// CONFIGID.UPNP.ORG, NEXTBOOTID.UPNP.ORG (each when not negative) and
// SEARCHPORT.UPNP.ORG (when not 0).
func appendIDs(b []byte, boot, config, next, searchPort int) []byte {
	if boot >= 0 {
		b = appendHeaderInt(b, hdrBootID, boot)
	}
	if config >= 0 {
		b = appendHeaderInt(b, hdrConfigID, config)
	}
	if next >= 0 {
		b = appendHeaderInt(b, hdrNextBootID, next)
	}
	if searchPort != 0 {
		b = appendHeaderInt(b, hdrSearchPort, searchPort)
	}
	return b
}
