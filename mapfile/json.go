package mapfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// readJSON parses a JSON mapping file: one array, each element decoded on
// its own, as upnp-daemon does; see the package documentation.
func readJSON(data []byte, name string) ([]Entry, []*LineError, error) {
	lines := newLineIndex(data)
	fatal := func(off int64, msg string, err error) error {
		e := &LineError{File: name, Line: lines.at(off), Msg: msg, Err: ErrNotArray}
		if err != nil {
			e.Err = fmt.Errorf("%w: %w", ErrNotArray, err)
		}
		return e
	}
	invalid := func(err error) error {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fatal(int64(len(data)), "invalid JSON: unexpected end of input", io.ErrUnexpectedEOF)
		}
		// A json.Decoder's SyntaxError.Offset does not count what Token
		// consumed; scanning the whole input again gives the true offset.
		var se *json.SyntaxError
		if errors.As(json.Unmarshal(data, new(json.RawMessage)), &se) {
			return fatal(max(se.Offset-1, 0), "invalid JSON: "+se.Error(), se)
		}
		return fatal(int64(len(data)), "invalid JSON: "+err.Error(), err)
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, nil, &LineError{File: name, Msg: "empty input, want a JSON array of mappings", Err: ErrNotArray}
	}
	if err != nil {
		return nil, nil, invalid(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, nil, fatal(skipJSONSpace(data, 0), "the file holds "+describeToken(tok)+", want a JSON array of mappings", nil)
	}
	var entries []Entry
	var bad []*LineError
	for dec.More() {
		start := skipJSONSpace(data, dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, invalid(err)
		}
		line := lines.at(start)
		e, field, err := decodeJSONEntry(raw, line)
		if err != nil {
			bad = append(bad, &LineError{File: name, Line: line, Field: field, Msg: err.Error()})
			continue
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return nil, nil, invalid(err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fatal(skipJSONSpace(data, end), "data after the array's closing ]", nil)
	}
	return entries, bad, nil
}

// decodeJSONEntry decodes one element of the array, valid JSON. It returns
// the entry, or the bad field ("" for the element as a whole) and what is
// wrong.
func decodeJSONEntry(raw []byte, line int) (Entry, string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return Entry{}, "", err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return Entry{}, "", fmt.Errorf("the element is %s, not an object", describeToken(tok))
	}
	// As serde_json's Value, which upnp-daemon decodes the file into first,
	// keep the last value of a key given twice.
	vals := make(map[string]any)
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Entry{}, "", err
		}
		k, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return Entry{}, "", err
		}
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	var r rawEntry
	for f := range numFields {
		name := fieldName(f)
		v, ok := vals[name]
		if !ok {
			found := ""
			for _, k := range keys {
				if !strings.EqualFold(strings.TrimSpace(k), name) {
					continue
				}
				if found != "" {
					return Entry{}, name, fmt.Errorf("keys %q and %q both name it", found, k)
				}
				found = k
			}
			v, ok = vals[found], found != ""
		}
		s, err := jsonFieldText(f, v, ok)
		if err != nil {
			return Entry{}, name, err
		}
		r.val[f] = s
	}
	e, f, err := r.parse(line)
	if err != nil {
		return Entry{}, fieldName(f), err
	}
	return e, "", nil
}

// jsonFieldText returns the text of field f's value v, checking its JSON
// type as upnp-daemon's serde does. present is whether the key was there.
func jsonFieldText(f int, v any, present bool) (string, error) {
	if f == idxAddress {
		switch v := v.(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		}
		return "", fmt.Errorf("want a string or null, got %s", describeValue(v))
	}
	if !present {
		return "", errors.New("missing")
	}
	switch f {
	case idxPort, idxDuration:
		if n, ok := v.(json.Number); ok {
			return n.String(), nil
		}
		return "", fmt.Errorf("want a number, got %s", describeValue(v))
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", fmt.Errorf("want a string, got %s", describeValue(v))
}

// describeToken names the kind of JSON value a token starts.
func describeToken(tok json.Token) string {
	switch tok {
	case json.Delim('{'):
		return "an object"
	case json.Delim('['):
		return "an array"
	}
	return describeValue(tok)
}

// describeValue names a decoded JSON value, quoting scalars.
func describeValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("%t", v)
	case json.Number:
		return "the number " + v.String()
	case string:
		return fmt.Sprintf("the string %q", v)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%v", v)
}

// skipJSONSpace returns the offset of the first byte at or after off that
// is neither JSON white space nor a comma.
func skipJSONSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
			continue
		}
		break
	}
	return off
}

// lineIndex holds the offsets at which the lines after the first start; a
// line ends at LF, CRLF or a lone CR.
type lineIndex []int64

func newLineIndex(data []byte) lineIndex {
	var l lineIndex
	for i, c := range data {
		if c == '\n' || (c == '\r' && (i+1 == len(data) || data[i+1] != '\n')) {
			l = append(l, int64(i+1))
		}
	}
	return l
}

// at returns the 1-based line of the byte at offset off.
func (l lineIndex) at(off int64) int {
	return 1 + sort.Search(len(l), func(i int) bool { return l[i] > off })
}
