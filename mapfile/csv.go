package mapfile

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// csvHeader is what the header line says about the columns.
type csvHeader struct {
	// fields is the number of fields on the header line; every record must
	// have as many.
	fields int
	// col is the column of each field, -1 if absent.
	col [numFields]int
	// hashComments is whether a record whose first field starts with '#' is
	// a comment: when the first column can never hold such a value.
	hashComments bool
}

// readCSV parses a CSV mapping file as upnp-daemon's csv crate reader does:
// a mandatory header line, records with exactly as many fields, RFC 4180
// quotes, any line ending; see the package documentation.
func readCSV(data []byte, name string, delim rune) ([]Entry, []*LineError, error) {
	if delim == 0 {
		delim = DefaultDelimiter
	}
	if !validDelim(delim) {
		return nil, nil, fmt.Errorf("mapfile: %q cannot be a CSV delimiter", delim)
	}
	r := csv.NewReader(bytes.NewReader(normalizeCR(data)))
	r.Comma = delim
	r.FieldsPerRecord = -1 // checked here, so that a short line is one bad line
	r.LazyQuotes = true    // a quote inside an unquoted field is data, as in the csv crate

	h, err := readCSVHeader(r, name, delim)
	if err != nil || h == nil {
		return nil, nil, err
	}
	var entries []Entry
	var bad []*LineError
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, nil, fmt.Errorf("mapfile: read %s: %w", name, err)
			}
			bad = append(bad, &LineError{File: name, Line: pe.StartLine, Msg: pe.Err.Error(), Err: err})
			continue
		}
		line, _ := r.FieldPos(0)
		if blankRecord(rec, delim) || (h.hashComments && hashRecord(rec)) {
			continue
		}
		if len(rec) != h.fields {
			bad = append(bad, &LineError{File: name, Line: line,
				Msg: fmt.Sprintf("has %d fields, the header has %d", len(rec), h.fields)})
			continue
		}
		var raw rawEntry
		for i, c := range h.col {
			if c >= 0 {
				raw.val[i] = rec[c]
			}
		}
		e, fi, err := raw.parse(line)
		if err == nil && !utf8.ValidString(e.Comment) {
			fi, err = idxComment, errInvalidUTF8(e.Comment)
		}
		if err != nil {
			fieldLine, _ := r.FieldPos(h.col[fi])
			bad = append(bad, &LineError{File: name, Line: fieldLine, Field: fieldName(fi), Msg: err.Error()})
			continue
		}
		entries = append(entries, e)
	}
	return entries, bad, nil
}

// readCSVHeader reads up to and including the header line. It returns nil
// and no error for a file with no lines but blank ones and comments, which
// upnp-daemon reads as empty.
func readCSVHeader(r *csv.Reader, name string, delim rune) (*csvHeader, error) {
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, &LineError{File: name, Line: pe.StartLine, Msg: "header: " + pe.Err.Error(), Err: ErrNoHeader}
			}
			return nil, fmt.Errorf("mapfile: read %s: %w", name, err)
		}
		line, _ := r.FieldPos(0)
		if blankRecord(rec, delim) {
			continue
		}
		col, err := matchColumns(rec)
		if err != nil {
			return nil, &LineError{File: name, Line: line, Msg: err.Error(), Err: ErrHeader}
		}
		if missing := missingColumn(col); missing != "" {
			switch {
			case hashRecord(rec):
				continue // a comment before the header (extension)
			case col == noColumns():
				msg := "missing header line: the first line must name the columns, e.g. " + exampleHeader(delim)
				if len(rec) == 1 && strings.Contains(strings.ToLower(rec[0]), fieldProtocol) {
					msg += fmt.Sprintf(" (line %d is one field: is %q the delimiter?)", line, delim)
				}
				return nil, &LineError{File: name, Err: ErrNoHeader, Msg: msg}
			}
			return nil, &LineError{File: name, Line: line, Msg: fmt.Sprintf("header lacks the column %q", missing), Err: ErrHeader}
		}
		h := &csvHeader{fields: len(rec), col: col}
		for i := idxAddress; i <= idxDuration; i++ {
			if col[i] == 0 {
				h.hashComments = true
			}
		}
		return h, nil
	}
}

// matchColumns finds each field's column among names. A name matches
// exactly, as in upnp-daemon; failing that, it may differ in case and
// surrounding spaces. A field named twice is an error, as it is for
// upnp-daemon's serde ("duplicate field").
func matchColumns(names []string) ([numFields]int, error) {
	var col [numFields]int
	for f := range col {
		col[f] = -1
		want := fieldName(f)
		for i, n := range names {
			if n != want {
				continue
			}
			if col[f] >= 0 {
				return col, fmt.Errorf("header names the column %q twice", want)
			}
			col[f] = i
		}
		if col[f] >= 0 {
			continue
		}
		for i, n := range names {
			if !strings.EqualFold(strings.TrimSpace(n), want) {
				continue
			}
			if col[f] >= 0 {
				return col, fmt.Errorf("header names the column %q twice: %q and %q", want, names[col[f]], n)
			}
			col[f] = i
		}
	}
	return col, nil
}

// noColumns returns the columns of a line that names no field.
func noColumns() [numFields]int {
	return [numFields]int{-1, -1, -1, -1, -1}
}

// missingColumn returns the first required field without a column, or "".
func missingColumn(col [numFields]int) string {
	for f := idxPort; f < numFields; f++ {
		if col[f] < 0 {
			return fieldName(f)
		}
	}
	return ""
}

// exampleHeader returns the header upnp-daemon documents, with delim.
func exampleHeader(delim rune) string {
	var b strings.Builder
	for f := range numFields {
		if f > 0 {
			b.WriteRune(delim)
		}
		b.WriteString(fieldName(f))
	}
	return b.String()
}

// blankRecord reports whether rec is a line of nothing but spaces and tabs.
// encoding/csv already skips empty lines.
func blankRecord(rec []string, delim rune) bool {
	if len(rec) > 1 && delim != ' ' && delim != '\t' {
		return false
	}
	for _, f := range rec {
		if strings.Trim(f, " \t") != "" {
			return false
		}
	}
	return true
}

// hashRecord reports whether rec's first field starts with '#'.
func hashRecord(rec []string) bool {
	return strings.HasPrefix(strings.TrimLeft(rec[0], " \t"), "#")
}

// validDelim reports whether encoding/csv can split fields at r.
func validDelim(r rune) bool {
	return r != '"' && r != '\r' && r != '\n' && utf8.ValidRune(r) && r != utf8.RuneError
}

// normalizeCR turns each lone CR into LF, in place: the csv crate ends a
// record at CR, LF or CRLF, encoding/csv only at LF and CRLF.
func normalizeCR(data []byte) []byte {
	for i, c := range data {
		if c == '\r' && (i+1 == len(data) || data[i+1] != '\n') {
			data[i] = '\n'
		}
	}
	return data
}
