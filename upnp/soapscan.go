package upnp

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxActionArgs bounds the arguments of a control request. An IGD action
// has at most a dozen in arguments (UDA 1.1 §3.2.1 sends them all, in
// order); the bound keeps a body of empty elements from costing an Arg (32
// bytes) for every 4 bytes it holds.
const maxActionArgs = 64

// Control requests are read by a scanner written for the one document they
// are, a SOAP envelope (UDA 1.1 §3.2.1), instead of encoding/xml: that
// decoder allocates for every token (names, attribute slices, character
// data), about 90 bytes per byte of a body made of empty elements, 5.9 MB
// for 64 KiB. The scanner walks the body in place and allocates only the
// strings of the result (names and values, no more than the body) and a
// slice of at most maxActionArgs arguments.
//
// It reads what parseXML reads, as encoding/xml's non-strict mode does: a
// bare "&" and unknown entities stay as they are, an element left unclosed
// is closed by its parent's end tag, CR LF and CR are read as LF, and a
// document that declares ISO-8859-1 (or US-ASCII, windows-1252) is read as
// Latin-1. It refuses what a SOAP message may not hold (a document type
// declaration or any other "<!" directive, SOAP 1.1 §3), unquoted and
// valueless attributes, characters XML 1.0 §2.2 does not allow, invalid
// UTF-8, nesting deeper than maxXMLDepth, and more than maxActionArgs
// arguments.

// openTag is an element being read: data[start] is its "<", data[start+1:
// nameEnd] its name, and its content starts at content.
type openTag struct {
	start, nameEnd, content int
}

// envelopeScan reads a control request's envelope.
type envelopeScan struct {
	data   []byte
	pos    int
	latin1 bool
	stack  [maxXMLDepth]openTag
	depth  int

	rootSeen    bool
	bodyFound   bool // the root's first Body child has been opened
	bodyOpen    bool // and is open
	actionFound bool // the Body's first element has been opened
	actionOpen  bool // and is open
	hasChildren bool // the open argument holds elements

	action      openTag
	actionSpace string
	args        []Arg
}

// scanAction reads a control request's body: it returns the action
// element's local name, its namespace (the prefix when it is not bound, as
// encoding/xml reads it) and its arguments, values as sent.
func scanAction(data []byte) (name, space string, args []Arg, err error) {
	s := &envelopeScan{data: data}
	if err := s.prolog(); err != nil {
		return "", "", nil, err
	}
	for s.pos < len(s.data) {
		if err := s.next(); err != nil {
			return "", "", nil, err
		}
	}
	switch {
	case !s.rootSeen:
		return "", "", nil, malformed("XML without an element")
	case s.depth != 0:
		return "", "", nil, malformed("XML ends inside <%s>", truncate(string(s.name(s.stack[s.depth-1]))))
	case !s.bodyFound:
		return "", "", nil, malformed("SOAP envelope without a Body")
	case !s.actionFound:
		return "", "", nil, malformed("SOAP Body without an element")
	}
	_, local := splitName(s.name(s.action))
	return s.text(local), s.actionSpace, s.args, nil
}

// prolog reads the XML declaration, if the document starts with one, for
// its encoding (XML 1.0 §4.3.3).
func (s *envelopeScan) prolog() error {
	if !bytes.HasPrefix(s.data, []byte("<?xml")) || len(s.data) < 6 || !isSpace(s.data[5]) && s.data[5] != '?' {
		return nil
	}
	end := bytes.Index(s.data, []byte("?>"))
	if end < 0 {
		return malformed("XML declaration not closed")
	}
	decl := s.data[5:end]
	if v, ok := pseudoAttr(decl, "version"); ok && v != "1.0" {
		return malformed("XML version %q, only 1.0 is read", truncate(v))
	}
	if enc, ok := pseudoAttr(decl, "encoding"); ok && !strings.EqualFold(enc, "utf-8") {
		switch strings.ToLower(enc) {
		case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "us-ascii", "ascii", "windows-1252", "cp1252":
			s.latin1 = true
		default:
			return malformed("XML encoding %q not supported", truncate(enc))
		}
	}
	s.pos = end + 2
	return nil
}

// pseudoAttr returns the value of name="value" in an XML declaration.
func pseudoAttr(decl []byte, name string) (string, bool) {
	i := bytes.Index(decl, []byte(name))
	if i < 0 {
		return "", false
	}
	rest := bytes.TrimLeft(decl[i+len(name):], " \t\r\n")
	if len(rest) == 0 || rest[0] != '=' {
		return "", false
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || rest[0] != '"' && rest[0] != '\'' {
		return "", false
	}
	v, _, ok := bytes.Cut(rest[1:], rest[:1])
	return string(v), ok
}

// next reads one piece of the document: character data, a comment, a CDATA
// section, a processing instruction, a start or an end tag.
func (s *envelopeScan) next() error {
	d := s.data[s.pos:]
	switch {
	case d[0] != '<':
		n := bytes.IndexByte(d, '<')
		if n < 0 {
			n = len(d)
		}
		s.pos += n
		return s.charData(d[:n], false)
	case bytes.HasPrefix(d, []byte("<!--")):
		n := bytes.Index(d[4:], []byte("--"))
		if n < 0 {
			return malformed("XML comment not closed")
		}
		if 4+n+2 >= len(d) || d[4+n+2] != '>' {
			return malformed(`XML comment holding "--"`)
		}
		s.pos += 4 + n + 3
	case bytes.HasPrefix(d, []byte("<![CDATA[")):
		n := bytes.Index(d[9:], []byte("]]>"))
		if n < 0 {
			return malformed("XML CDATA section not closed")
		}
		s.pos += 9 + n + 3
		return s.charData(d[9:9+n], true)
	case bytes.HasPrefix(d, []byte("<!")):
		return malformed("XML directive %q: a SOAP message holds no document type declaration", truncate(string(d[:min(len(d), 12)])))
	case bytes.HasPrefix(d, []byte("<?")):
		n := bytes.Index(d[2:], []byte("?>"))
		if n < 0 {
			return malformed("XML processing instruction not closed")
		}
		if nameEnd(d, 2) == 2 {
			return malformed("XML processing instruction without a target")
		}
		s.pos += 2 + n + 2
	case bytes.HasPrefix(d, []byte("</")):
		return s.endTag()
	default:
		return s.startTag()
	}
	return nil
}

// charData checks character data; outside the root element only white
// space may stand.
func (s *envelopeScan) charData(raw []byte, cdata bool) error {
	if s.depth == 0 {
		if len(bytes.TrimLeft(raw, " \t\r\n")) != 0 {
			return malformed("XML text outside the root element")
		}
		return nil
	}
	_, err := decodeText(nil, raw, s.latin1, cdata, false)
	return err
}

// startTag reads <name attr="value" ...> or <name .../>.
func (s *envelopeScan) startTag() error {
	start := s.pos
	ne := nameEnd(s.data, start+1)
	if ne == start+1 || !validName(s.data[start+1:ne]) {
		return malformed("XML: expected an element name after <")
	}
	end, empty, err := s.attrs(ne, nil)
	if err != nil {
		return err
	}
	if s.depth == maxXMLDepth {
		return malformed("XML nested deeper than %d elements", maxXMLDepth)
	}
	t := openTag{start: start, nameEnd: ne, content: end}
	if s.depth == 0 {
		if s.rootSeen {
			return malformed("XML with a second root element <%s>", truncate(string(s.name(t))))
		}
		s.rootSeen = true
		if _, local := splitName(s.name(t)); !strings.EqualFold(string(local), "Envelope") {
			return malformed("SOAP root element is <%s>, not <Envelope>", truncate(string(local)))
		}
	}
	s.stack[s.depth] = t
	s.depth++
	if err := s.opened(t); err != nil {
		return err
	}
	s.pos = end
	if empty {
		return s.closeTop(end)
	}
	return nil
}

// opened follows the envelope's shape as an element opens at s.depth-1.
func (s *envelopeScan) opened(t openTag) error {
	_, local := splitName(s.name(t))
	switch level := s.depth - 1; {
	case level == 1 && !s.bodyFound && strings.EqualFold(string(local), "Body"):
		s.bodyFound, s.bodyOpen = true, true
	case level == 2 && s.bodyOpen && !s.actionFound:
		s.actionFound, s.actionOpen = true, true
		s.action = t
		space, err := s.namespace(t)
		if err != nil {
			return err
		}
		s.actionSpace = space
	case level == 3 && s.actionOpen:
		if len(s.args) == maxActionArgs {
			return malformed("SOAP action with more than %d arguments", maxActionArgs)
		}
		s.hasChildren = false
	case level == 4 && s.actionOpen:
		s.hasChildren = true
	}
	return nil
}

// endTag reads </name>. As in encoding/xml's non-strict mode, it closes the
// innermost open element of that local name and every element left open
// inside it; the prefixes must match.
func (s *envelopeScan) endTag() error {
	start := s.pos
	ne := nameEnd(s.data, start+2)
	i := skipSpace(s.data, ne)
	if ne == start+2 || i >= len(s.data) || s.data[i] != '>' {
		return malformed("XML: invalid characters between </ and >")
	}
	prefix, local := splitName(s.data[start+2 : ne])
	j := s.depth - 1
	for ; j >= 0; j-- {
		p, l := splitName(s.name(s.stack[j]))
		if bytes.Equal(l, local) {
			if !bytes.Equal(p, prefix) {
				return malformed("XML element <%s> closed by </%s>", truncate(string(s.name(s.stack[j]))), truncate(string(s.data[start+2:ne])))
			}
			break
		}
	}
	if j < 0 {
		return malformed("XML end tag </%s> without a start", truncate(string(local)))
	}
	for s.depth > j {
		if err := s.closeTop(start); err != nil {
			return err
		}
	}
	s.pos = i + 1
	return nil
}

// closeTop closes the innermost open element, whose content ends at end.
func (s *envelopeScan) closeTop(end int) error {
	s.depth--
	t := s.stack[s.depth]
	switch s.depth {
	case 3:
		if s.actionOpen {
			return s.addArg(t, end)
		}
	case 2:
		s.actionOpen = false
	case 1:
		s.bodyOpen = false
	}
	return nil
}

// addArg keeps an argument of the action: its text, or the raw XML between
// its tags when it holds elements (a NewPortListing sent unescaped).
func (s *envelopeScan) addArg(t openTag, end int) error {
	_, local := splitName(s.name(t))
	if !isNCName(string(local)) {
		return malformed("SOAP argument name %q", truncate(string(local)))
	}
	a := Arg{Name: s.text(local)}
	content := s.data[t.content:end]
	switch {
	case s.hasChildren:
		a.Value = s.text(content)
	case !bytes.ContainsAny(content, "&<\r"):
		a.Value = s.text(content)
	default:
		v, err := s.decodeContent(content)
		if err != nil {
			return err
		}
		a.Value = v
	}
	if s.args == nil {
		s.args = make([]Arg, 0, 8)
	}
	s.args = append(s.args, a)
	return nil
}

// decodeContent returns the character data of an element's content that
// holds no elements: text and CDATA sections decoded, comments and
// processing instructions left out. The result is built in one allocation
// of at most its source's size (references only shrink), plus a byte for
// each Latin-1 byte beyond ASCII.
func (s *envelopeScan) decodeContent(content []byte) (string, error) {
	var out strings.Builder
	out.Grow(s.utf8Len(content))
	buf := make([]byte, 0, 4)
	for len(content) > 0 {
		var raw []byte
		cdata := false
		switch {
		case bytes.HasPrefix(content, []byte("<![CDATA[")):
			n := bytes.Index(content, []byte("]]>"))
			raw, cdata, content = content[9:n], true, content[n+3:]
		case bytes.HasPrefix(content, []byte("<!--")):
			content = content[bytes.Index(content[4:], []byte("-->"))+7:]
			continue
		case bytes.HasPrefix(content, []byte("<?")):
			content = content[bytes.Index(content[2:], []byte("?>"))+4:]
			continue
		default:
			n := bytes.IndexByte(content, '<')
			if n < 0 {
				n = len(content)
			}
			raw, content = content[:n], content[n:]
		}
		// Decoded piecewise through a small buffer, so that the builder's
		// one allocation is the only one.
		for len(raw) > 0 {
			n := pieceLen(raw)
			var err error
			if buf, err = decodeText(buf[:0], raw[:n], s.latin1, cdata, true); err != nil {
				return "", err
			}
			out.Write(buf)
			raw = raw[n:]
		}
	}
	return out.String(), nil
}

// pieceLen returns the length of the first piece of raw text that
// decodeText may decode alone: a byte or a reference up to its ";" or the
// next "&", with a CR its LF.
func pieceLen(raw []byte) int {
	switch raw[0] {
	case '&':
		if _, n, ok := reference(raw); ok {
			return n
		}
	case '\r':
		if len(raw) > 1 && raw[1] == '\n' {
			return 2
		}
	}
	if raw[0] >= utf8.RuneSelf {
		if _, n := utf8.DecodeRune(raw); n > 1 {
			return n
		}
	}
	return 1
}

// utf8Len returns the length of raw bytes of the document as UTF-8.
func (s *envelopeScan) utf8Len(b []byte) int {
	n := len(b)
	if s.latin1 {
		for _, c := range b {
			if c >= utf8.RuneSelf {
				n++
			}
		}
	}
	return n
}

// namespace returns the namespace of element t's name, as encoding/xml
// gives it: the URI its prefix (or, without one, the default namespace) is
// bound to by t or the elements around it, innermost first and the last of
// one tag's declarations; an unbound prefix is its own namespace.
func (s *envelopeScan) namespace(t openTag) (string, error) {
	prefix, local := splitName(s.name(t))
	switch {
	case string(prefix) == "xmlns", len(prefix) == 0 && string(local) == "xmlns":
		return string(prefix), nil
	case string(prefix) == "xml":
		return "http://www.w3.org/XML/1998/namespace", nil
	}
	for i := s.depth - 1; i >= 0; i-- {
		var found []byte
		tag := s.stack[i]
		if _, _, err := s.attrs(tag.nameEnd, func(name, value []byte) {
			p, l := splitName(name)
			if len(prefix) == 0 && len(p) == 0 && string(l) == "xmlns" || len(prefix) > 0 && string(p) == "xmlns" && bytes.Equal(l, prefix) {
				found = value
			}
		}); err != nil {
			return "", err
		}
		if found != nil {
			v, err := decodeText(nil, found, s.latin1, false, true)
			return string(v), err
		}
	}
	return string(prefix), nil
}

// attrs reads the attributes of a start tag from i, the end of its name,
// and calls attr for each (when not nil); it returns the offset after the
// tag and whether it is an empty-element tag.
func (s *envelopeScan) attrs(i int, attr func(name, value []byte)) (end int, empty bool, err error) {
	d := s.data
	for {
		i = skipSpace(d, i)
		switch {
		case i >= len(d):
			return 0, false, malformed("XML ends inside a tag")
		case d[i] == '>':
			return i + 1, false, nil
		case d[i] == '/':
			if i+1 < len(d) && d[i+1] == '>' {
				return i + 2, true, nil
			}
			return 0, false, malformed("XML: expected /> in element")
		}
		ne := nameEnd(d, i)
		if ne == i || !validName(d[i:ne]) {
			return 0, false, malformed("XML: expected an attribute name in element")
		}
		name := d[i:ne]
		i = skipSpace(d, ne)
		if i >= len(d) || d[i] != '=' {
			return 0, false, malformed("XML attribute %q without a value", truncate(string(name)))
		}
		i = skipSpace(d, i+1)
		if i >= len(d) || d[i] != '"' && d[i] != '\'' {
			return 0, false, malformed("XML attribute %q without a quoted value", truncate(string(name)))
		}
		n := bytes.IndexByte(d[i+1:], d[i])
		if n < 0 {
			return 0, false, malformed("XML ends inside an attribute value")
		}
		value := d[i+1 : i+1+n]
		if bytes.IndexByte(value, '<') >= 0 {
			return 0, false, malformed("XML: unescaped < inside an attribute value")
		}
		if _, err := decodeText(nil, value, s.latin1, false, false); err != nil {
			return 0, false, err
		}
		if attr != nil {
			attr(name, value)
		}
		i += n + 2
	}
}

// name returns the name of an open element.
func (s *envelopeScan) name(t openTag) []byte { return s.data[t.start+1 : t.nameEnd] }

// text returns raw bytes of the document as a string, Latin-1 converted,
// in one allocation.
func (s *envelopeScan) text(b []byte) string {
	if !s.latin1 {
		return string(b)
	}
	var out strings.Builder
	out.Grow(s.utf8Len(b))
	for _, c := range b {
		out.WriteRune(rune(c))
	}
	return out.String()
}

// decodeText checks character data or an attribute value (XML 1.0 §2.2,
// §2.4, §4.1) and, when write is set, appends it to dst decoded: the
// predefined entities and character references replaced (other references
// and a bare "&" kept as they are), CR LF and CR as LF, Latin-1 as UTF-8.
// A CDATA section has no references.
func decodeText(dst, raw []byte, latin1, cdata, write bool) ([]byte, error) {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '&' && !cdata:
			if r, n, ok := reference(raw[i:]); ok {
				if !isXMLChar(r) {
					return nil, malformed("XML: illegal character code %U", r)
				}
				if write {
					dst = utf8.AppendRune(dst, r)
				}
				i += n
				continue
			}
			if write {
				dst = append(dst, c)
			}
			i++
		case c == '\r':
			if write {
				dst = append(dst, '\n')
			}
			i++
			if i < len(raw) && raw[i] == '\n' {
				i++
			}
		case latin1:
			if !isXMLChar(rune(c)) {
				return nil, malformed("XML: illegal character code %U", rune(c))
			}
			if write {
				dst = utf8.AppendRune(dst, rune(c))
			}
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, malformed("XML: invalid UTF-8")
			}
			if !isXMLChar(r) {
				return nil, malformed("XML: illegal character code %U", r)
			}
			if write {
				dst = append(dst, raw[i:i+size]...)
			}
			i += size
		}
	}
	return dst, nil
}

// reference reads the reference at the start of b ("&amp;", "&#38;",
// "&#x26;"): the character, the bytes it takes, and whether it is one of
// XML's predefined entities or a character reference up to U+10FFFF. It
// reads no further than the reference's own characters, so that a body of
// bare "&"s costs linear time.
func reference(b []byte) (rune, int, bool) {
	if len(b) > 1 && b[1] == '#' {
		i, base := 2, 10
		if i < len(b) && b[i] == 'x' {
			i, base = i+1, 16
		}
		start := i
		for i < len(b) && ('0' <= b[i] && b[i] <= '9' || base == 16 && ('a' <= b[i] && b[i] <= 'f' || 'A' <= b[i] && b[i] <= 'F')) {
			i++
		}
		if i == start || i >= len(b) || b[i] != ';' {
			return 0, 0, false
		}
		n, err := strconv.ParseUint(string(b[start:i]), base, 32)
		if err != nil || n > utf8.MaxRune {
			return 0, 0, false
		}
		r := rune(n)
		if !utf8.ValidRune(r) {
			r = utf8.RuneError // a surrogate, as string(rune(n)) reads it
		}
		return r, i + 1, true
	}
	end := nameEnd(b, 1)
	if end >= len(b) || b[end] != ';' {
		return 0, 0, false
	}
	var r rune
	switch string(b[1:end]) {
	case "lt":
		r = '<'
	case "gt":
		r = '>'
	case "amp":
		r = '&'
	case "apos":
		r = '\''
	case "quot":
		r = '"'
	default:
		return 0, 0, false
	}
	return r, end + 1, true
}

// nameEnd returns the end of the name starting at d[i]: name characters are
// ASCII letters, digits, "_", ":", ".", "-" and every byte beyond ASCII.
func nameEnd(d []byte, i int) int {
	for i < len(d) {
		c := d[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == ':' || c == '.' || c == '-' || c >= utf8.RuneSelf) {
			break
		}
		i++
	}
	return i
}

// validName reports whether a name read by nameEnd is one: valid UTF-8, not
// starting with a digit, "." or "-", at most one ":".
func validName(n []byte) bool {
	c := n[0]
	return utf8.Valid(n) && !('0' <= c && c <= '9' || c == '.' || c == '-') && bytes.Count(n, []byte(":")) <= 1
}

// splitName splits a qualified name into prefix and local part as
// encoding/xml does: "p:l" with both non-empty, else no prefix.
func splitName(n []byte) (prefix, local []byte) {
	p, l, ok := bytes.Cut(n, []byte(":"))
	if !ok || len(p) == 0 || len(l) == 0 {
		return nil, n
	}
	return p, l
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
