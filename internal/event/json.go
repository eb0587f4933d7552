package event

import (
	"strconv"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// asciiPlain marks the ASCII bytes written as they are: printable, not a quote or a
// backslash.
var asciiPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as a JSON string. Unlike encoding/json it does not escape
// '<', '>' and '&': post HTML is full of them and escaping grows a post by up to six
// times, which breaks the providers' size limits. U+2028 and U+2029 are
// escaped so the output stays valid JavaScript, and invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		for i < len(s) && asciiPlain[s[i]] {
			i++
		}
		if i >= len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendRenders appends the renders as a JSON object whose keys keep the slice order.
func AppendRenders(dst []byte, renders []Render) []byte {
	return appendList(dst, '{', renders, AppendRender, '}')
}

// AppendRender appends one `"id":{"show":…,"content":…}` member.
func AppendRender(dst []byte, r Render) []byte {
	dst = AppendString(dst, r.ID)
	dst = append(dst, `:{"show":`...)
	dst = strconv.AppendBool(dst, r.Show)
	dst = append(dst, `,"content":`...)
	dst = AppendString(dst, r.Content)
	return append(dst, '}')
}

// AppendRemovals appends the removals as a JSON array, "[]" when there are none.
func AppendRemovals(dst []byte, ids []string) []byte {
	return appendList(dst, '[', ids, AppendString, ']')
}

// appendList appends open, the items appended by each and separated by commas, and
// closing.
func appendList[T any](dst []byte, open byte, items []T, each func([]byte, T) []byte, closing byte) []byte {
	dst = append(dst, open)
	for i, item := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = each(dst, item)
	}
	return append(dst, closing)
}

// RenderSize is the number of bytes AppendRender writes for r, counted without
// writing them.
func RenderSize(r Render) int {
	n := StringSize(r.ID) + StringSize(r.Content) + len(`:{"show":,"content":}`) + len("false")
	if r.Show {
		n--
	}
	return n
}

// StringSize is the number of bytes AppendString writes for s.
func StringSize(s string) int {
	n := 2
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t':
				n += 2
			case b < 0x20:
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6
		case r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
