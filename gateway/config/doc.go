// Package config parses portleased.conf, the configuration file of the
// portleased gateway daemon.
//
// The format is that of OpenBSD's natpmpd.conf(5): every natpmpd.conf works
// unchanged. portleased adds directives of its own for the external port
// range, lifetimes and miniupnpd-style permission rules.
//
// # Syntax
//
// The file is a list of directives, one to a line. Words are separated by
// spaces or tabs. As in natpmpd.conf:
//
//   - A hash mark (#) outside quotes starts a comment that extends to the end
//     of the line, on a line of its own or after a directive.
//   - A backslash at the end of a line joins the next line to it, also inside
//     a comment (natpmpd's lexer joins lines before it looks for comments).
//   - A word may be quoted with double or single quotes. Inside quotes a
//     backslash before the quote character stands for that character, and a
//     line break is skipped, as natpmpd does; an unterminated quoted string
//     is an error.
//   - Keywords are case-sensitive. Blank lines are ignored. Lines may end in
//     CRLF.
//
// natpmpd.conf(5) documents no macros, include files or other sections, and
// natpmpd's grammar has none, so neither has this one: a line such as
// `ext_if = "em0"` is an unknown directive.
//
// # natpmpd.conf directives
//
//	interface IF
//
// IF is the external (internet-facing) interface whose address clients are
// translated to. An interface name is 1 to 15 bytes of printable ASCII
// without / : # " ' \ or *. natpmpd allows the directive more than once and
// keeps the last; so does this parser. At least one is required.
//
//	listen on ADDRESS|IF|*
//
// An address (IPv4 or IPv6, with an optional %zone) or an interface name to
// serve mapping requests on; one per line, as many as needed, at least one.
// `*`, which natpmpd also accepts, stands for every IPv4 address and is
// recorded as 0.0.0.0. natpmpd resolves host names with DNS; portleased does
// not: a word that is not an address is taken as an interface name, and the
// daemon reports it if no such interface exists.
//
// # portleased directives
//
//	port range LOW-HIGH
//
// The external ports handed out, LOW and HIGH inclusive, 1 <= LOW <= HIGH
// <= 65535; a single port N means N-N. The default is 1024-65535. At most
// once.
//
//	lifetime max SECONDS
//
// The longest lifetime granted to a mapping, 1 to 4294967295 seconds (the
// range of NAT-PMP's and PCP's 32-bit lifetime fields). The default is 86400
// (a day). At most once.
//
//	allow|deny EXT-PORTS ADDRESS[/MASK] INT-PORTS
//
// A permission rule in miniupnpd.conf's syntax. EXT-PORTS and INT-PORTS are
// N or N-M with 0 <= N <= M <= 65535 (miniupnpd accepts port 0, as in its
// sample's closing `deny 0-65535 0.0.0.0/0 0-65535`). MASK is a prefix
// length or, for IPv4, a contiguous dotted netmask (192.168.1.0/24 or
// 192.168.1.0/255.255.255.0); without it the rule names one host. IPv6
// prefixes are accepted too; a rule matches addresses of its own family
// only (IPv6 rules decide pinholes, whose external port is the internal
// port). Rules are kept in file order and the first one that matches a
// request decides it.
//
//	allow third-party ADDRESS[/MASK]
//
// Hosts in the prefix may map ports for another internal address (PCP
// THIRD_PARTY, RFC 6887 §13.1; UPnP InternalClient in secure mode). No
// host may by default. Any number of them.
//
// The parser records rules only as written. When the file has none
// (len(Config.Rules) == 0), the daemon applies the default
// "allow 1024-65535 SUBNET 1024-65535" for each LAN subnet it serves and
// each global IPv6 prefix of its LAN links: only the daemon knows those. miniupnpd's optional fifth field, a regular
// expression on the mapping's description, is refused as unsupported.
//
//	max mappings per host N|none
//	max mappings N|none
//
// Fair shares. The first is the number of leases one internal address may
// hold: IPv4 mappings and IPv6 pinholes of NAT-PMP, PCP and UPnP together
// (default 1024); the second the number of leases of the whole table
// (default 65536). N is 1 to 2147483647; none lifts the limit. A host at
// its limit is refused a new lease with each protocol's "out of resources"
// (NAT-PMP result 4, PCP USER_EX_QUOTA, UPnP 728 or 701 for a pinhole; a
// full table is PCP NO_RESOURCES); its renewals pass. A reload that lowers
// a limit keeps the leases beyond it. Each at most once.
//
// # UPnP IGD
//
// UPnP is on by default, as NAT-PMP is, so a natpmpd.conf with only
// interface and listen on serves both. Each of these is allowed once:
//
//	upnp on|off                   serve UPnP IGD (default on)
//	upnp friendly name NAME       the device's friendlyName (default portleased)
//	upnp http port PORT           description and control port (default 5000)
//	upnp notify interval SECONDS  ssdp:alive interval, 30-86400 (default 900)
//	upnp secure mode on|off       clients map only to their own address (default on)
//	upnp version 1|2              InternetGatewayDevice version (default 2)
//
// # Errors
//
// A file with any error is refused whole. Parse reports every error it finds,
// not only the first, as an ErrorList of "file:line: message" entries in line
// order. Errors about the file as a whole, such as a missing interface
// directive, have line 0 and read "file: message"; they come last.
package config
