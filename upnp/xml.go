package upnp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// node is an element of a parsed XML document: the small tree this
// package's readers walk instead of binding structs, so that element names
// match whatever their prefix, namespace or case.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	text     string  // character data directly inside, CDATA included
	children []*node // child elements in document order
	inner    string  // the raw bytes between the start and end tags
}

// parseXML parses data into a tree and returns its root element. It
// tolerates what devices get wrong, as encoding/xml's non-strict mode does
// (a bare "&" as in "AT&T", unknown entities, an element left unclosed
// inside its parent), and reads ISO-8859-1 and US-ASCII besides UTF-8. It
// refuses nesting deeper than maxXMLDepth, text outside the root element
// other than white space, and a second root element.
func parseXML(data []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false
	d.CharsetReader = charsetReader
	var (
		root  *node
		stack []*node
		text  [][]byte // text of each open element
		start []int64  // offset of each open element's content
	)
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, malformed("XML line %d: %s", se.Line, se.Msg)
			}
			return nil, malformed("XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxXMLDepth {
				return nil, malformed("XML nested deeper than %d elements", maxXMLDepth)
			}
			n := &node{name: t.Name, attrs: t.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, malformed("XML with a second root element <%s>", t.Name.Local)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
			text = append(text, nil)
			start = append(start, d.InputOffset())
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, malformed("XML end tag </%s> without a start", t.Name.Local)
			}
			i := len(stack) - 1
			n := stack[i]
			n.text = string(text[i])
			if s := start[i]; 0 <= s && s <= off && off <= int64(len(data)) {
				n.inner = string(data[s:off])
			}
			stack, text, start = stack[:i], text[:i], start[:i]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) != 0 {
					return nil, malformed("XML text outside the root element")
				}
				continue
			}
			i := len(stack) - 1
			text[i] = append(text[i], t...)
		}
	}
	switch {
	case root == nil:
		return nil, malformed("XML without an element")
	case len(stack) != 0:
		return nil, malformed("XML ends inside <%s>", stack[len(stack)-1].name.Local)
	}
	return root, nil
}

// charsetReader lets the decoder read documents that declare ISO-8859-1 or
// US-ASCII (some router firmware does) by converting them to UTF-8.
func charsetReader(label string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "us-ascii", "ascii", "windows-1252", "cp1252":
		in, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(in))
		for _, c := range in {
			out = utf8.AppendRune(out, rune(c))
		}
		return bytes.NewReader(out), nil
	}
	return nil, fmt.Errorf("encoding %q not supported", label)
}

// child returns the first child element whose local name is local, in any
// case and namespace, or nil.
func (n *node) child(local string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if strings.EqualFold(c.name.Local, local) {
			return c
		}
	}
	return nil
}

// childText returns the text of the first child element named local with
// white space trimmed, or "" when there is none.
func (n *node) childText(local string) string {
	if c := n.child(local); c != nil {
		return strings.TrimSpace(c.text)
	}
	return ""
}

// find returns the first element named local in n's subtree, n included,
// depth first, or nil.
func (n *node) find(local string) *node {
	if strings.EqualFold(n.name.Local, local) {
		return n
	}
	for _, c := range n.children {
		if f := c.find(local); f != nil {
			return f
		}
	}
	return nil
}

// value returns an argument element's value: its text, or, when it holds
// elements (a NewPortListing sent as unescaped XML), the raw XML between
// its tags.
func (n *node) value() string {
	if len(n.children) > 0 {
		return n.inner
	}
	return n.text
}

// attr returns the value of the attribute named local, in any namespace.
func (n *node) attr(local string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// isNCName reports whether s can be written as an element name without a
// prefix: a letter or "_", then letters, digits, "_", "-" and "." (XML
// Namespaces §3, restricted to ASCII plus letters beyond it).
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', r >= 0x80 && r != utf8.RuneError:
		case i > 0 && (r == '-' || r == '.' || '0' <= r && r <= '9'):
		default:
			return false
		}
	}
	return true
}

// appendXMLText appends s escaped for XML character data: "&", "<" and ">"
// as entities, CR as "&#xD;" so that it survives the parser's line-end
// normalisation, and characters XML 1.0 §2.2 does not allow (control
// characters, invalid UTF-8) as U+FFFD.
func appendXMLText(b []byte, s string) []byte {
	return appendEscaped(b, s, false)
}

// appendXMLAttr appends s escaped for an attribute value in double quotes:
// as appendXMLText, plus '"', and tab and LF as character references so
// that attribute normalisation keeps them.
func appendXMLAttr(b []byte, s string) []byte {
	return appendEscaped(b, s, true)
}

func appendEscaped(b []byte, s string, attr bool) []byte {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '&':
			b = append(b, "&amp;"...)
		case r == '<':
			b = append(b, "&lt;"...)
		case r == '>':
			b = append(b, "&gt;"...)
		case r == '\r':
			b = append(b, "&#xD;"...)
		case attr && r == '"':
			b = append(b, "&quot;"...)
		case attr && r == '\n':
			b = append(b, "&#xA;"...)
		case attr && r == '\t':
			b = append(b, "&#x9;"...)
		case r == utf8.RuneError && size == 1, !isXMLChar(r):
			b = utf8.AppendRune(b, utf8.RuneError)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// appendXMLValue appends s as character data: in a CDATA section when s
// holds "<" (an XML document such as NewPortListing, which miniupnpd sends
// so and which parsers without entity support read back whole) and no
// "]]>", escaped otherwise.
func appendXMLValue(b []byte, s string) []byte {
	if strings.Contains(s, "<") && !strings.Contains(s, "]]>") && isXMLText(s) {
		b = append(b, "<![CDATA["...)
		b = append(b, s...)
		return append(b, "]]>"...)
	}
	return appendXMLText(b, s)
}

// isXMLText reports whether s can go into a CDATA section unchanged: valid
// UTF-8, XML characters only, no CR (which the parser would turn into LF).
func isXMLText(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError && size == 1 || r == '\r' || !isXMLChar(r) {
			return false
		}
	}
	return true
}

// isXMLString reports whether s is valid UTF-8 made of characters XML 1.0
// §2.2 allows, so that it survives escaping unchanged.
func isXMLString(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
			return false
		}
	}
	return true
}

// isXMLChar reports whether r is a character XML 1.0 §2.2 allows.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0a || r == 0x0d ||
		r >= 0x20 && r <= 0xd7ff ||
		r >= 0xe000 && r <= 0xfffd ||
		r >= 0x10000 && r <= 0x10ffff
}

// appendElement appends <name>text</name> with text escaped.
func appendElement(b []byte, name, text string) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = appendXMLText(b, text)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}
