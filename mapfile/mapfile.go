package mapfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Protocol is the transport protocol of a mapping: TCP or UDP.
type Protocol string

// The protocols a mapping file can name.
const (
	TCP Protocol = "TCP"
	UDP Protocol = "UDP"
)

// ParseProtocol returns the protocol named by s, in any case, with
// surrounding spaces ignored.
func ParseProtocol(s string) (Protocol, error) {
	p, err := parseProtocol(s)
	if err != nil {
		return "", fmt.Errorf("mapfile: %w", err)
	}
	return p, nil
}

// Entry is one mapping line.
type Entry struct {
	// Addr and Prefix are what the port is mapped to; at most one is valid.
	// Both zero: this host (upnp-daemon tries each non-loopback IPv4
	// interface until a gateway answers, and maps to its address). Addr: that
	// IPv4 host, this one or another, or a global IPv6 address (an extension:
	// a pinhole to it). Prefix: an IPv4 or IPv6 range, always masked and
	// shorter than one address, meaning this host's address inside the range
	// (upnp-daemon takes the first non-loopback IPv4 interface whose address
	// it contains).
	Addr   netip.Addr
	Prefix netip.Prefix
	// Port is the port, 1 to 65535, used as both external and internal
	// port as upnp-daemon does.
	Port uint16
	// Protocol is TCP or UDP.
	Protocol Protocol
	// Duration is the lease asked for, whole seconds from 0 to 4294967295.
	Duration time.Duration
	// Comment is the description to store with the mapping, as written.
	Comment string
	// Line is the 1-based line in the file: for CSV, the line the record
	// starts on; for JSON, the line of the element's first character.
	Line int
}

// Key identifies the mapping of e across readings of a file: its protocol,
// port and address as written. It leaves out the duration, comment and line,
// which may change without making it another mapping. An address-less entry
// has the target "*".
func (e Entry) Key() string {
	return string(e.Protocol) + " " + strconv.Itoa(int(e.Port)) + " " + e.target()
}

func (e Entry) target() string {
	switch {
	case e.Addr.IsValid():
		return e.Addr.String()
	case e.Prefix.IsValid():
		return e.Prefix.String()
	}
	return "*"
}

// String describes e for people: `TCP 8080 -> 192.168.1.10 (60 s, "web")`,
// `UDP 53 -> this host in 192.168.0.0/24 (0 s)` or `TCP 22 -> this host
// (3600 s, "ssh")`.
func (e Entry) String() string {
	var b strings.Builder
	b.WriteString(string(e.Protocol))
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(int(e.Port)))
	b.WriteString(" -> ")
	switch {
	case e.Addr.IsValid():
		b.WriteString(e.Addr.String())
	case e.Prefix.IsValid():
		b.WriteString("this host in ")
		b.WriteString(e.Prefix.String())
	default:
		b.WriteString("this host")
	}
	b.WriteString(" (")
	b.WriteString(strconv.FormatInt(int64(e.Duration/time.Second), 10))
	b.WriteString(" s")
	if e.Comment != "" {
		b.WriteString(", ")
		b.WriteString(strconv.Quote(e.Comment))
	}
	b.WriteByte(')')
	return b.String()
}

// Format is the format of a mapping file.
type Format int

// The formats of upnp-daemon's --format option.
const (
	CSV Format = iota
	JSON
)

// String returns the name of f as ParseFormat takes it.
func (f Format) String() string {
	switch f {
	case CSV:
		return "csv"
	case JSON:
		return "json"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat returns the format named s: "csv" or "json", in any case.
func ParseFormat(s string) (Format, error) {
	switch {
	case strings.EqualFold(s, "csv"):
		return CSV, nil
	case strings.EqualFold(s, "json"):
		return JSON, nil
	}
	return 0, fmt.Errorf("mapfile: unknown format %q (want csv or json)", s)
}

// DefaultDelimiter is the CSV field delimiter when Options.Delimiter is 0,
// as upnp-daemon's --csv-delimiter default.
const DefaultDelimiter = ';'

// Options are the settings for reading and writing a file. The zero value
// reads CSV with ';' between fields.
type Options struct {
	// Format is the file's format.
	Format Format
	// Delimiter separates CSV fields; 0 means DefaultDelimiter. It may not
	// be a quote, CR, LF or U+FFFD.
	Delimiter rune
	// Name is the file name in messages. "-" shows as "<stdin>", "" as
	// "<input>". ReadFile uses its path when Name is empty.
	Name string
}

func (o Options) displayName() string {
	switch o.Name {
	case "-":
		return "<stdin>"
	case "":
		return "<input>"
	}
	return o.Name
}

// Errors wrapped by the *LineError that Read returns when a whole file is
// refused.
var (
	// ErrNoHeader is wrapped when a CSV file's first line names none of
	// the columns.
	ErrNoHeader = errors.New("mapfile: missing header line")
	// ErrHeader is wrapped when a CSV header lacks a required column or
	// names one twice.
	ErrHeader = errors.New("mapfile: bad header line")
	// ErrNotArray is wrapped when a JSON file is not one JSON array, or not
	// valid JSON.
	ErrNotArray = errors.New("mapfile: not a JSON array")
)

// LineError is a problem with one line of a file, or with the file as a
// whole. Read returns bad lines as LineErrors: each is reported and skipped,
// and the other lines still apply.
type LineError struct {
	File string
	// Line is the 1-based line, 0 for the file as a whole.
	Line int
	// Field is the column or key the problem is in, "" for the whole line.
	Field string
	// Msg says what is wrong, quoting the bad value.
	Msg string
	// Err is the underlying error for errors.Is and errors.As, if any; Msg
	// already says what it says.
	Err error
}

// Error returns "file:line: field: msg", leaving out a zero line and an
// empty field: `ports.csv:3: port: "70000" is not a port (1-65535)`.
func (e *LineError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns e.Err.
func (e *LineError) Unwrap() error { return e.Err }

// utf8BOM is the UTF-8 byte order mark, skipped at the start of a file.
const utf8BOM = "\xEF\xBB\xBF"

// Read parses a whole mapping file. It returns the good entries in file
// order, and each bad line as a *LineError: those are not fatal. A fatal
// error (unreadable input, a CSV file without its header line or with a
// header lacking a required column, JSON that is not one array) returns
// err != nil and no entries; problems with the content are *LineErrors.
// An empty CSV file has no entries and no error.
func Read(r io.Reader, o Options) (entries []Entry, bad []*LineError, err error) {
	name := o.displayName()
	if o.Format != CSV && o.Format != JSON {
		return nil, nil, fmt.Errorf("mapfile: unknown format %v", o.Format)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("mapfile: read %s: %w", name, err)
	}
	data = bytes.TrimPrefix(data, []byte(utf8BOM))
	if o.Format == JSON {
		return readJSON(data, name)
	}
	return readCSV(data, name, o.Delimiter)
}

// ReadFile reads the mapping file at path as Read does; path "-" reads
// standard input. Messages name the file o.Name, or path if that is empty.
func ReadFile(path string, o Options) ([]Entry, []*LineError, error) {
	if o.Name == "" {
		o.Name = path
	}
	if path == "-" {
		return Read(os.Stdin, o)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("mapfile: %w", err)
	}
	defer f.Close()
	return Read(f, o)
}

// Field names, as in upnp-daemon's UpnpConfig, in its order.
const (
	fieldAddress  = "address"
	fieldPort     = "port"
	fieldProtocol = "protocol"
	fieldDuration = "duration"
	fieldComment  = "comment"
)

// Field indexes, in upnp-daemon's order; all fields but the address are
// required.
const (
	idxAddress = iota
	idxPort
	idxProtocol
	idxDuration
	idxComment
	numFields
)

// fieldName returns the name of the field with index i.
func fieldName(i int) string {
	switch i {
	case idxAddress:
		return fieldAddress
	case idxPort:
		return fieldPort
	case idxProtocol:
		return fieldProtocol
	case idxDuration:
		return fieldDuration
	}
	return fieldComment
}

// rawEntry holds the text of each field of a line, "" for an absent
// address.
type rawEntry struct {
	val [numFields]string
}

// parse checks every field of r in upnp-daemon's order and returns the
// entry, or the index of the first bad field and what is wrong with it.
func (r *rawEntry) parse(line int) (Entry, int, error) {
	e := Entry{Line: line}
	var err error
	if e.Addr, e.Prefix, err = parseAddress(r.val[idxAddress]); err != nil {
		return Entry{}, idxAddress, err
	}
	if e.Port, err = parsePort(r.val[idxPort]); err != nil {
		return Entry{}, idxPort, err
	}
	if e.Protocol, err = parseProtocol(r.val[idxProtocol]); err != nil {
		return Entry{}, idxProtocol, err
	}
	if e.Duration, err = parseDuration(r.val[idxDuration]); err != nil {
		return Entry{}, idxDuration, err
	}
	e.Comment = r.val[idxComment]
	return e, 0, nil
}
