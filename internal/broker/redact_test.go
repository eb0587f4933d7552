package broker

import (
	"strings"
	"testing"

	"go.uber.org/zap"
)

// A connect error names every server of the list with its credentials hidden, even
// when the client's own error quotes a URL.
func TestConnectErrorHidesEveryURLsCredentials(t *testing.T) {
	for _, list := range []string{
		"nats://alice:hunter1@127.0.0.1:1,nats://bob:hunter2@127.0.0.1:2",
		"nats://127.0.0.1:1, nats://tok-hunter2@127.0.0.1:2",
		"nats://alice:hunter1@127.0.0.1:1,nats://bob:hunter2@127.0.0.1:port",
		"alice:hunter1@127.0.0.1:1,bob:hunter2@127.0.0.1:2",
	} {
		_, err := Connect(list, "test", Auth{}, zap.NewNop())
		if err == nil {
			t.Fatalf("Connect(%q) succeeded", list)
		}
		if msg := err.Error(); strings.Contains(msg, "hunter") {
			t.Errorf("Connect(%q): error shows a credential: %s", list, msg)
		}
		if !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("Connect(%q): error does not name the servers: %v", list, err)
		}
	}
}

// Redact hides the credentials of one URL or of each URL of a list.
func TestRedactHidesURLCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"nats://user:pass@host:4222":            "nats://***@host:4222",
		"nats://token@host:4222":                "nats://***@host:4222",
		"nats://host:4222":                      "nats://host:4222",
		"nats://a:p@h1:4222,nats://b:q@h2:4222": "nats://***@h1:4222,nats://***@h2:4222",
		"nats://h1:4222, tok@h2:4222":           "nats://h1:4222, ***@h2:4222",
		"nats://h1:4222":                        "nats://h1:4222",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
