package broker

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// A data folder the server cannot use, or a listen address already taken, fails the
// start at once with the real cause and the setting to change, instead of a 30 s wait
// that blames the port.
func TestEmbeddedStartFailsAtOnceWithTheCause(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name string
		cfg  EmbeddedConfig
		want []string
		root bool // the case holds for root too
	}{
		{"data dir is a file", EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: file}, []string{"LIVE_DATA_DIR", "not a directory"}, true},
		{"data dir under a file", EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: filepath.Join(file, "sub")}, []string{"LIVE_DATA_DIR", "not a directory"}, true},
		{"data dir not writable", EmbeddedConfig{Listen: "127.0.0.1:0", DataDir: readOnlyDir(t)}, []string{"LIVE_DATA_DIR", "permission denied"}, false},
		{"listen address in use", EmbeddedConfig{Listen: busy.Addr().String(), DataDir: t.TempDir()}, []string{"LIVE_EMBEDDED_LISTEN", busy.Addr().String(), "address already in use"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.root && os.Geteuid() == 0 {
				t.Skip("root may write anywhere")
			}
			start := time.Now()
			e, err := StartEmbedded(tt.cfg, zaptest.NewLogger(t))
			took := time.Since(start)
			if err == nil {
				e.Shutdown()
				t.Fatal("the server started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if took > 5*time.Second {
				t.Errorf("failed after %v, want at once", took.Round(time.Millisecond))
			}
		})
	}
}

func readOnlyDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	return dir
}

// The embedded server refuses to listen beyond loopback with no authentication, and
// says what to set; with a token or a user and password it starts, and only clients
// that present them get in.
func TestEmbeddedRefusesAnOpenListenAddress(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		e, err := StartEmbedded(EmbeddedConfig{Listen: listen, DataDir: t.TempDir()}, zaptest.NewLogger(t))
		if err == nil {
			e.Shutdown()
			t.Fatalf("listen %s: the server started with no authentication", listen)
		}
		for _, w := range []string{"LIVE_EMBEDDED_LISTEN", "LIVE_EMBEDDED_TOKEN", "LIVE_EMBEDDED_USER", "LIVE_EMBEDDED_PASSWORD"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("listen %s: error %q does not name %s", listen, err, w)
			}
		}
	}

	tests := []struct {
		name  string
		cfg   EmbeddedConfig
		good  Auth
		wrong Auth
	}{
		{"token", EmbeddedConfig{Token: "t0ken"}, Auth{Token: "t0ken"}, Auth{Token: "other"}},
		{"user and password", EmbeddedConfig{User: "relay", Password: "pa55"}, Auth{User: "relay", Password: "pa55"}, Auth{User: "relay", Password: "other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Listen, cfg.DataDir = "0.0.0.0:0", t.TempDir()
			e, err := StartEmbedded(cfg, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Shutdown()
			nc, err := Connect(e.ClientURL(), "test", tt.good, zaptest.NewLogger(t))
			if err != nil {
				t.Fatalf("with the credentials: %v", err)
			}
			nc.Close()
			for _, a := range []Auth{{}, tt.wrong} {
				if nc, err := Connect(e.ClientURL(), "test", a, zaptest.NewLogger(t)); err == nil {
					nc.Close()
					t.Errorf("a client with %+v got in", a)
				}
			}
		})
	}
}

func TestLoopback(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:4222": true, "127.0.0.2:1": true, "[::1]:4222": true, "localhost:4222": true, "LOCALHOST:1": true,
		"0.0.0.0:4222": false, ":4222": false, "[::]:4222": false, "10.0.0.5:4222": false, "nats:4222": false, "127.0.0.1": false,
	} {
		if got := Loopback(listen); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", listen, got, want)
		}
	}
}
