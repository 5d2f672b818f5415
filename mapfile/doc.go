// Package mapfile reads and writes the port-mapping files of upnp-daemon
// (https://github.com/FloGa/upnp-daemon), in CSV and in JSON, for
// `portlease keep`. Every line upnp-daemon accepts reads here to the same
// mapping, but for port 0, refused below; a few lines it refuses are
// accepted (each marked "extension" below). The package only parses: it
// opens no sockets and reads no interfaces.
//
// The rules were read in upnp-daemon's source, not guessed: the option
// parsing and file reading in src/cli.rs (0.4 and later), the record type
// UpnpConfig and its use in src/lib.rs and crates/easy-upnp/src/lib.rs, its
// README, and the parser of its address type, cidr-utils 0.5's
// Ipv4Cidr::from_str (src/cidr/v4/ipv4_cidr.rs).
//
// # Fields
//
// A mapping has five fields, named as in upnp-daemon's UpnpConfig:
//
//   - address (optional: an absent column, an absent key, null or an empty
//     value all mean "this host"). An IPv4 address maps the port to that
//     host. A global IPv6 address, or range (portlease's extension), opens a
//     firewall pinhole to it (PCP). A range maps it to this machine's address inside the range. The
//     syntax is cidr-utils': one to four decimal octets without leading
//     zeros, optionally followed by /BITS (0-32) or /NETMASK (a dotted,
//     contiguous mask). Fewer than four octets name the range of that many
//     whole octets ("192.168.0" is 192.168.0.0/24, "10" is 10.0.0.0/8), and a
//     /BITS after them must agree. Host bits are dropped: "192.168.0.10/24"
//     is the range 192.168.0.0/24, not the host. A /32 (or four octets
//     alone) is a host. IPv6 is refused, as upnp-daemon's Ipv4Cidr does.
//   - port (required): 1 to 65535. upnp-daemon's u16 also takes 0; a mapping
//     of port 0 cannot work, so it is refused here.
//   - protocol (required): TCP or UDP. upnp-daemon wants them upper-case;
//     any case is accepted here (extension).
//   - duration (required): the lease in seconds, 0 to 4294967295 (a u32).
//     0 is passed on as upnp-daemon does; UPnP IGD v1 reads it as "no
//     expiry", and some routers refuse it.
//   - comment (required, may be empty): the description stored with the
//     mapping in the router, kept as written.
//
// upnp-daemon hands the address to its UPnP library as follows
// (easy-upnp's get_gateway_and_address_from_options): no address tries
// every non-loopback IPv4 interface in turn until a gateway answers a
// search sent from it, and maps to that interface's address; a host
// address maps to that address; a range takes the first non-loopback IPv4
// interface whose address lies in the range, and maps to its address. What
// to do with an Entry is up to the caller.
//
// Numbers are decimal, as Rust's integer parsing reads them: an optional
// leading +, leading zeros allowed, nothing else. Spaces around the address,
// port, protocol and duration are ignored here; upnp-daemon rejects them
// (extension).
//
// # CSV
//
// As upnp-daemon reads CSV with the Rust csv crate's defaults and a chosen
// delimiter (--csv-delimiter, default ';'):
//
//   - The first line names the columns; it is mandatory. Columns are matched
//     by name, in any order; columns with other names are ignored. A header
//     lacking port, protocol, duration or comment is an error for the whole
//     file (upnp-daemon would fail every line), and so is a header naming a
//     column twice. upnp-daemon matches names exactly; here a name that
//     matches no column exactly may also match one that differs only in
//     case or surrounding spaces (extension).
//   - Fields may be quoted as in RFC 4180, with "" for a quote inside
//     quotes; a quoted field may hold the delimiter and line breaks. A quote
//     inside an unquoted field is kept as a character, as the csv crate does.
//   - Lines may end in LF, CRLF or a lone CR. A UTF-8 byte order mark at the
//     start is skipped. Empty lines are skipped; so are lines of only spaces
//     and tabs (extension).
//   - A record with more or fewer fields than the header is a bad line.
//   - An empty file has no mappings and is not an error, as in upnp-daemon.
//   - Comments (extension): upnp-daemon has no comment syntax, and a line
//     starting with # is a bad line there. Here a line whose first field
//     starts with # is skipped as a comment when the first column is
//     address, port, protocol or duration, whose values never start with #.
//     When the first column is comment or an unknown column, # is data. Before
//     the header, # lines are skipped too, unless the line names every
//     required column: then it is the header, and its first column, say
//     "#address", is an unknown one, as upnp-daemon reads it.
//
// # JSON
//
// With --format json, upnp-daemon reads one JSON array; each element is
// decoded on its own into a mapping:
//
//   - The array's elements are objects with the keys above. Other keys are
//     ignored. port and duration are JSON numbers (a string such as "80" is
//     refused, as serde does); address is a string or null; protocol and
//     comment are strings. A key given twice counts once, the last, as
//     serde_json's Value keeps it. Keys match exactly, or else by case
//     (extension). An empty address string means this host (extension).
//   - An element that is not a good mapping, an object or not, is a bad
//     line; the others still apply.
//   - Input that is not a single JSON array, or not valid JSON at all, is an
//     error for the whole file. Empty input is such an error, as in
//     upnp-daemon (an empty array is not).
//
// upnp-daemon's serde would also read a mapping written as an array of the
// five values in order, or a protocol written as {"TCP": null}; nobody
// writes those and they are refused here.
//
// # Errors
//
// Read returns the good entries and one *LineError for each bad line,
// naming the file, line, field and value: ports.csv:4: protocol: "SCTP" is
// not TCP or UDP. Problems with the file as a whole are returned as the
// error, also a *LineError (wrapping ErrNoHeader, ErrHeader or ErrNotArray),
// and then no entries are returned at all.
package mapfile
