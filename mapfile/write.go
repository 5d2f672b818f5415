package mapfile

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Write writes entries as a mapping file in the format of o, which both Read
// and upnp-daemon read back to the same entries (Line aside): CSV with the
// header address;port;protocol;duration;comment and o's delimiter, or a JSON
// array as in upnp-daemon's README. It refuses an entry Read could not have
// returned.
func Write(w io.Writer, entries []Entry, o Options) error {
	for i, e := range entries {
		if err := e.check(); err != nil {
			return fmt.Errorf("mapfile: entry %d (%s): %w", i, e, err)
		}
	}
	switch o.Format {
	case CSV:
		return writeCSV(w, entries, o.Delimiter)
	case JSON:
		return writeJSON(w, entries)
	}
	return fmt.Errorf("mapfile: unknown format %v", o.Format)
}

// check reports why Read could not have returned e, if it could not.
func (e Entry) check() error {
	switch {
	case e.Addr.IsValid() && e.Prefix.IsValid():
		return fmt.Errorf("both an address and a range")
	case e.Addr.IsValid() && !e.Addr.Is4() && (e.Addr.Is4In6() || e.Addr.Zone() != "" || !e.Addr.IsGlobalUnicast()):
		return fmt.Errorf("address %v is neither IPv4 nor a global IPv6 address", e.Addr)
	case e.Prefix.IsValid() && (e.Prefix.Bits() == e.Prefix.Addr().BitLen() || e.Prefix.Addr().Is4In6()):
		return fmt.Errorf("range %v is not a range shorter than a single address", e.Prefix)
	case e.Port == 0:
		return fmt.Errorf("port 0")
	case e.Protocol != TCP && e.Protocol != UDP:
		return fmt.Errorf("protocol %q is not TCP or UDP", string(e.Protocol))
	case e.Duration < 0 || e.Duration > MaxDuration || e.Duration%time.Second != 0:
		return fmt.Errorf("duration %v is not 0 to %d whole seconds", e.Duration, int64(MaxDuration/time.Second))
	}
	return nil
}

// addressText returns e's address field as Read takes it back.
func (e Entry) addressText() string {
	switch {
	case e.Addr.IsValid():
		return e.Addr.String()
	case e.Prefix.IsValid():
		return e.Prefix.Masked().String()
	}
	return ""
}

func writeCSV(w io.Writer, entries []Entry, delim rune) error {
	if delim == 0 {
		delim = DefaultDelimiter
	}
	if !validDelim(delim) {
		return fmt.Errorf("mapfile: %q cannot be a CSV delimiter", delim)
	}
	cw := csv.NewWriter(w)
	cw.Comma = delim
	rec := make([]string, numFields)
	for f := range numFields {
		rec[f] = fieldName(f)
	}
	if err := cw.Write(rec); err != nil {
		return fmt.Errorf("mapfile: %w", err)
	}
	for _, e := range entries {
		rec[idxAddress] = e.addressText()
		rec[idxPort] = strconv.Itoa(int(e.Port))
		rec[idxProtocol] = string(e.Protocol)
		rec[idxDuration] = strconv.FormatInt(int64(e.Duration/time.Second), 10)
		rec[idxComment] = e.Comment
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("mapfile: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("mapfile: %w", err)
	}
	return nil
}

// jsonEntry is an element of a JSON mapping file, keys in upnp-daemon's
// order.
type jsonEntry struct {
	Address  *string `json:"address"`
	Port     uint16  `json:"port"`
	Protocol string  `json:"protocol"`
	Duration int64   `json:"duration"`
	Comment  string  `json:"comment"`
}

func writeJSON(w io.Writer, entries []Entry) error {
	out := make([]jsonEntry, len(entries))
	for i, e := range entries {
		out[i] = jsonEntry{
			Port:     e.Port,
			Protocol: string(e.Protocol),
			Duration: int64(e.Duration / time.Second),
			Comment:  e.Comment,
		}
		if a := e.addressText(); a != "" {
			out[i].Address = &a
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("mapfile: %w", err)
	}
	return nil
}
