package event

import (
	"fmt"
	"strings"
)

// The subject token of a channel. A CMS publishes a channel's events to
// "<prefix>.<token>". The encoding is deterministic and reversible:
//
//   - the bytes A–Z, a–z, 0–9, '-' and '_' stand for themselves;
//   - every other byte is written as '%' and two upper-case hex digits.
//
// So "live-blog-2026" stays "live-blog-2026" and "news.uk/live" becomes
// "news%2Euk%2Flive". The result never holds '.', '*', '>' or white space, so it is one
// NATS subject token. Each channel has exactly one token: Channel rejects any other
// spelling (lower-case hex, an escaped plain byte).

const upperHex = "0123456789ABCDEF"

func plain(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_'
}

// Token returns the subject token of channel.
func Token(channel string) string {
	n := 0
	for i := 0; i < len(channel); i++ {
		if !plain(channel[i]) {
			n++
		}
	}
	if n == 0 {
		return channel
	}
	var b strings.Builder
	b.Grow(len(channel) + 2*n)
	for i := 0; i < len(channel); i++ {
		c := channel[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0xF])
	}
	return b.String()
}

// Channel returns the channel whose token is token.
func Channel(token string) (string, error) {
	if token == "" {
		return "", fmt.Errorf("empty subject token")
	}
	if !strings.Contains(token, "%") {
		for i := 0; i < len(token); i++ {
			if !plain(token[i]) {
				return "", fmt.Errorf("subject token %q: byte %q must be written as %%%02X", token, token[i], token[i])
			}
		}
		return token, nil
	}
	out := make([]byte, 0, len(token))
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case plain(c):
			out = append(out, c)
		case c == '%' && i+2 < len(token):
			hi, lo := unhex(token[i+1]), unhex(token[i+2])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("subject token %q: %q is not an upper-case hex escape", token, token[i:i+3])
			}
			b := byte(hi<<4 | lo)
			if plain(b) {
				return "", fmt.Errorf("subject token %q: %q escapes a byte that must stand for itself", token, token[i:i+3])
			}
			out = append(out, b)
			i += 2
		default:
			return "", fmt.Errorf("subject token %q: byte %q must be written as %%%02X", token, c, c)
		}
	}
	return string(out), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
