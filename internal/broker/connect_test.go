package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"
)

func startAuthServer(t *testing.T, opts server.Options) string {
	t.Helper()
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", server.RANDOM_PORT, true, true
	srv, err := server.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

// Each way of authenticating reaches a server that demands it, and the wrong secret
// is refused with an error that does not repeat the secret.
func TestConnectAuthenticates(t *testing.T) {
	seed, pub := newNKey(t)
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		server server.Options
		good   Auth
		bad    Auth
	}{
		{"token", server.Options{Authorization: "s3cr3t-token"}, Auth{Token: "s3cr3t-token"}, Auth{Token: "wrong-token"}},
		{"user and password", server.Options{Username: "relay", Password: "s3cr3t-pass"}, Auth{User: "relay", Password: "s3cr3t-pass"}, Auth{User: "relay", Password: "wrong-pass"}},
		{"nkey", server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}}, Auth{NKeyFile: seedFile}, Auth{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := startAuthServer(t, tt.server)
			nc, err := Connect(url, "test", tt.good, zap.NewNop())
			if err != nil {
				t.Fatalf("with the right credentials: %v", err)
			}
			nc.Close()
			_, err = Connect(url, "test", tt.bad, zap.NewNop())
			if err == nil {
				t.Fatal("the wrong credentials were accepted")
			}
			for _, secret := range []string{tt.bad.Token, tt.bad.Password} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Fatalf("the error repeats the secret: %v", err)
				}
			}
		})
	}
}

func newNKey(t *testing.T) (seed []byte, public string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ = kp.Seed()
	public, _ = kp.PublicKey()
	return seed, public
}
