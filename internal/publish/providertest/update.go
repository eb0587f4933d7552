package providertest

import (
	"strings"
	"testing"
)

// UpdateOfSize is a live-page update of exactly n bytes, most of its content
// characters that encoding/json would escape: it tests a provider's size limit where
// the escaping costs the most. It fails t when n is too small for an update.
func UpdateOfSize(t testing.TB, n int) []byte {
	t.Helper()
	prefix, suffix := `{"renders":{"a":{"show":true,"content":"`, `"}},"removals":[]}`
	if n < len(prefix)+len(suffix) {
		t.Fatalf("test data of %d bytes: an update has at least %d", n, len(prefix)+len(suffix))
	}
	// A cut through an é leaves one stray byte, replaced by one "x".
	content := strings.ToValidUTF8(strings.Repeat("<&>é", n)[:n-len(prefix)-len(suffix)], "x")
	data := prefix + content + suffix
	if len(data) != n {
		t.Fatalf("test data of %d bytes, want %d", len(data), n)
	}
	return []byte(data)
}
