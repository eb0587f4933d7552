package event

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a small JSON reader for the event's one shape: it decodes and validates in
// one pass, with the grammar of RFC 8259 and encoding/json's choices where the RFC
// leaves room (invalid UTF-8 and lone surrogates become U+FFFD, nesting is bounded).
// encoding/json with json.Valid, RawMessage and a token Decoder read every byte of an
// event three times; this reads it once.
type scanner struct {
	b []byte
	i int
}

var errSyntax = errors.New("not valid JSON")

// plainByte marks the bytes a JSON string holds as they are: not a quote, not a
// backslash, not a control character. Scanning with it is a load and a branch a byte.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const maxDepth = 10000

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// peek returns the next non-space byte, 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// plain moves past the bytes a string holds as they are; it reports whether a byte
// that needs a look (a quote, a backslash, a control byte) follows before the end.
func (s *scanner) plain() bool {
	for s.i < len(s.b) && plainByte[s.b[s.i]] {
		s.i++
	}
	return s.i < len(s.b)
}

// str reads a string; the scanner must be at its opening quote.
func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", errSyntax
	}
	s.i++
	start := s.i
	// Fast path: no escapes, ASCII or valid UTF-8.
	for s.plain() {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			if utf8.Valid(out) {
				return string(out), nil
			}
			return string([]rune(string(out))), nil // invalid bytes become U+FFFD
		case c == '\\':
			return s.strSlow(start)
		case c < 0x20:
			return "", errSyntax
		}
		s.i++
	}
	return "", errSyntax
}

// key reads an object key without allocating when it has no escapes; the bytes are
// valid until the next call.
func (s *scanner) key() ([]byte, error) {
	if s.peek() != '"' {
		return nil, errSyntax
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], nil
		case c == '\\' || c < 0x20:
			str, err := s.str()
			return []byte(str), err
		}
	}
	return nil, errSyntax
}

// strSlow reads the rest of a string with escapes, from start (after the quote). It
// finds the closing quote first (validating on the way), so that it can build the
// string in one allocation of the right size.
func (s *scanner) strSlow(start int) (string, error) {
	s.i = start - 1
	if _, err := s.skipString(); err != nil {
		return "", err
	}
	end := s.i - 1 // the closing quote
	var b strings.Builder
	b.Grow(end - start) // unescaping never grows a string
	raw := s.b[start:end]
	for len(raw) > 0 {
		k := bytes.IndexByte(raw, '\\')
		if k < 0 {
			b.Write(raw)
			break
		}
		b.Write(raw[:k])
		e := raw[k+1]
		raw = raw[k+2:]
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := hex4(raw)
			raw = raw[4:]
			if utf16.IsSurrogate(r) {
				// A high surrogate followed by an escaped low one is one rune; anything
				// else leaves U+FFFD and the next escape stands alone.
				dec := utf8.RuneError
				if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
					if d := utf16.DecodeRune(r, hex4(raw[2:])); d != utf8.RuneError {
						dec = d
						raw = raw[6:]
					}
				}
				r = dec
			}
			b.WriteRune(r)
		}
	}
	str := b.String()
	if !utf8.ValidString(str) {
		str = string([]rune(str)) // invalid bytes become U+FFFD, as in encoding/json
	}
	return str, nil
}

// hex4 reads four hex digits that skipString already checked.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c <= 'F':
			r |= rune(c-'A') + 10
		default:
			r |= rune(c-'a') + 10
		}
	}
	return r
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c-'a') + 10
		case 'A' <= c && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// number reads a number and returns its text.
func (s *scanner) number() ([]byte, error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return nil, errSyntax
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return nil, errSyntax
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return nil, errSyntax
		}
	}
	return s.b[start:s.i], nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// moreNumber reports whether the next byte continues a number (as after "1" in "1.0").
func (s *scanner) moreNumber() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case '0' <= c && c <= '9', c == '.', c == 'e', c == 'E', c == '-', c == '+':
		return true
	}
	return false
}

// skip reads and validates any value.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return errSyntax
	}
	switch c := s.peek(); {
	case c == '"':
		_, err := s.skipString()
		return err
	case c == '{':
		s.i++
		if s.eat('}') {
			return nil
		}
		for {
			if _, err := s.skipString(); err != nil {
				return err
			}
			if !s.eat(':') {
				return errSyntax
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			if closed, err := s.after('}'); closed || err != nil {
				return err
			}
		}
	case c == '[':
		s.i++
		if s.eat(']') {
			return nil
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			if closed, err := s.after(']'); closed || err != nil {
				return err
			}
		}
	case c == 't':
		return s.want("true")
	case c == 'f':
		return s.want("false")
	case c == 'n':
		return s.want("null")
	default:
		_, err := s.number()
		return err
	}
}

// after reads what follows a member of an object or an element of an array: true
// at the closing byte, false after a comma, errSyntax at anything else.
func (s *scanner) after(closing byte) (bool, error) {
	if s.eat(closing) {
		return true, nil
	}
	if !s.eat(',') {
		return false, errSyntax
	}
	return false, nil
}

func (s *scanner) want(word string) error {
	if !s.literal(word) {
		return errSyntax
	}
	return nil
}

// skipString validates a string without building it.
func (s *scanner) skipString() (int, error) {
	if s.peek() != '"' {
		return 0, errSyntax
	}
	start := s.i
	s.i++
	for s.plain() {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return start, nil
		case c < 0x20:
			return 0, errSyntax
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return 0, errSyntax
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				s.i += 2
				if _, ok := s.hex4(); !ok {
					return 0, errSyntax
				}
			default:
				return 0, errSyntax
			}
		default:
			s.i++
		}
	}
	return 0, errSyntax
}
