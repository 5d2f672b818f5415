package config

import "bytes"

// token is one word of a directive: a run of characters up to blank space,
// a comment or the end of the line, or a quoted string without its quotes.
type token struct {
	text string
	line int
}

// statement is one directive: the tokens of one logical line.
type statement struct {
	line   int // the line of the first token
	tokens []token
}

// isBlank reports whether c separates words.
func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'
}

// lex splits src into statements the way natpmpd's lexer does (see the
// package documentation). A statement with an unterminated quoted string is
// dropped and reported in errs.
func lex(file string, src []byte) (stmts []statement, errs ErrorList) {
	src = bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
	// continued reports whether a backslash-newline pair starts at i.
	continued := func(i int) bool {
		return src[i] == '\\' && i+1 < len(src) && src[i+1] == '\n'
	}

	line := 1
	var cur statement
	bad := false
	flush := func() {
		if len(cur.tokens) > 0 && !bad {
			stmts = append(stmts, cur)
		}
		cur = statement{}
		bad = false
	}
	add := func(text []byte, l int) {
		if len(cur.tokens) == 0 {
			cur.line = l
		}
		cur.tokens = append(cur.tokens, token{text: string(text), line: l})
	}

	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			flush()
			line++
			i++
		case isBlank(c):
			i++
		case continued(i):
			line++
			i += 2
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				if continued(i) {
					line++
					i += 2
					continue
				}
				i++
			}
		case c == '"' || c == '\'':
			start := line
			var text []byte
			closed := false
			for i++; i < len(src) && !closed; {
				d := src[i]
				switch {
				case d == c:
					closed = true
					i++
				case d == '\\' && i+1 < len(src) && src[i+1] == c:
					text = append(text, c)
					i += 2
				case continued(i):
					line++
					i += 2
				case d == '\n':
					line++
					i++
				default:
					text = append(text, d)
					i++
				}
			}
			if !closed {
				errs = append(errs, &Error{File: file, Line: start, Msg: "unterminated quoted string"})
				bad = true
			}
			add(text, start)
		default:
			start := line
			var text []byte
			for i < len(src) {
				if continued(i) {
					line++
					i += 2
					continue
				}
				d := src[i]
				if d == '\n' || d == '#' || isBlank(d) {
					break
				}
				text = append(text, d)
				i++
			}
			add(text, start)
		}
	}
	flush()
	return stmts, errs
}
