package event

import (
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	tests := []struct{ channel, token string }{
		{"live-blog-2026", "live-blog-2026"},
		{"news.uk/live", "news%2Euk%2Flive"},
		{"a*b>c d", "a%2Ab%3Ec%20d"},
		{"%", "%25"},
		{"café", "caf%C3%A9"},
		{"private-encrypted=x@y,z;w", "private-encrypted%3Dx%40y%2Cz%3Bw"},
	}
	for _, tt := range tests {
		t.Run(tt.channel, func(t *testing.T) {
			tok := Token(tt.channel)
			if tok != tt.token {
				t.Fatalf("Token(%q) = %q, want %q", tt.channel, tok, tt.token)
			}
			if strings.ContainsAny(tok, ".*> \t") {
				t.Fatalf("token %q is not one subject token", tok)
			}
			ch, err := Channel(tok)
			if err != nil || ch != tt.channel {
				t.Fatalf("Channel(%q) = %q, %v", tok, ch, err)
			}
		})
	}
}

func TestChannelRejectsNonCanonicalTokens(t *testing.T) {
	for _, tok := range []string{"", "a%2e", "%41", "a%2", "a%", "a.b", "a b", "a%zz", "é"} {
		if ch, err := Channel(tok); err == nil {
			t.Errorf("Channel(%q) = %q, want an error", tok, ch)
		}
	}
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"live-blog", "a.b", "%", "café", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := Token(s)
		if s == "" {
			return
		}
		ch, err := Channel(tok)
		if err != nil || ch != s {
			t.Fatalf("Channel(Token(%q)) = %q, %v", s, ch, err)
		}
		if strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("token %q is not one subject token", tok)
		}
	})
}
