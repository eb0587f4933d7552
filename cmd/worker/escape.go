package main

import (
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"
)

// escaper writes what an operator command prints with every character a terminal
// would act on escaped: C0 and C1 controls and DEL (escape sequences that retitle the
// terminal, clear the screen or rewrite lines), bidirectional overrides, and bytes
// that are not UTF-8. Line breaks and tabs pass. Channel names, headers and bodies of
// letters come from whoever published the event, so "dlq list", "dlq show" and
// "replay" print through it. Escapes are written \u001b (\xff for a byte that is not
// UTF-8), which is also valid inside a JSON string: --json output stays JSON.
type escaper struct {
	w    io.Writer
	tail []byte // the start of a character cut by the end of the last Write
}

func newEscaper(w io.Writer) *escaper { return &escaper{w: w} }

func (e *escaper) Write(p []byte) (int, error) {
	buf := append(e.tail, p...)
	e.tail = nil
	out := make([]byte, 0, len(buf))
	for i := 0; i < len(buf); {
		r, size := utf8.DecodeRune(buf[i:])
		switch {
		case r == utf8.RuneError && size <= 1 && !utf8.FullRune(buf[i:]):
			e.tail = append([]byte(nil), buf[i:]...) // completed by the next Write
			i = len(buf)
			continue
		case r == utf8.RuneError && size == 1:
			out = fmt.Appendf(out, `\x%02x`, buf[i])
		case r == '\n' || r == '\t':
			out = append(out, byte(r))
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, buf[i:i+size]...)
		}
		i += size
	}
	if _, err := e.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a character left incomplete at the end, escaped.
func (e *escaper) Flush() error {
	if len(e.tail) == 0 {
		return nil
	}
	var out []byte
	for _, b := range e.tail {
		out = fmt.Appendf(out, `\x%02x`, b)
	}
	e.tail = nil
	_, err := e.w.Write(out)
	return err
}

// escaped runs an operator command with its output escaped.
func escaped(stdout, stderr io.Writer, cmd func(stdout, stderr io.Writer) int) int {
	out, errOut := newEscaper(stdout), newEscaper(stderr)
	code := cmd(out, errOut)
	_ = out.Flush()
	_ = errOut.Flush()
	return code
}

// unescaped runs an operator command with its output as it is.
func unescaped(stdout, stderr io.Writer, cmd func(stdout, stderr io.Writer) int) int {
	return cmd(stdout, stderr)
}
