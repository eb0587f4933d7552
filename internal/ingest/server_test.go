package ingest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/liverelay/liverelay/internal/event"
)

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "liverelay ingest test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// With a certificate and key the ingest speaks HTTPS, and a Pusher client with TLS on
// (its default) triggers into it; a plain-HTTP client gets no answer it can use.
func TestServerTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	store := &fakeStore{}
	h, err := NewHandler(Config{Credentials: testCreds, EventName: "live-page-update", MaxBytes: 4096}, store, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen("127.0.0.1:0", TLS{CertFile: certFile, KeyFile: keyFile}, h, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	c := goClientAt("http://"+s.Addr(), testCreds)
	c.Secure = true
	c.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if err := c.Trigger("c", "live-page-update", update{Renders: map[string]render{}, Removals: []string{"p"}}); err != nil {
		t.Fatalf("Trigger over TLS: %v", err)
	}
	if evs, _ := store.stored(); len(evs) != 1 {
		t.Fatalf("%d events stored, want 1", len(evs))
	}

	plain := goClientAt("http://"+s.Addr(), testCreds)
	if err := plain.Trigger("c", "live-page-update", update{Renders: map[string]render{}, Removals: []string{}}); err == nil {
		t.Error("a plain-HTTP trigger succeeded against the TLS ingest")
	}
	if _, err := Listen("127.0.0.1:0", TLS{CertFile: keyFile, KeyFile: certFile}, h, nil); err == nil {
		t.Error("Listen took a key as certificate")
	}
}

// Stopping the server lets a request that is being stored finish with its 200, and
// takes no new one: the worker closes NATS only after Serve returned.
func TestServeFinishesRequestsOnStop(t *testing.T) {
	storing, release := make(chan struct{}), make(chan struct{})
	store := &fakeStore{fail: func([]event.Event) error {
		close(storing)
		<-release
		return nil
	}}
	h, err := NewHandler(Config{Credentials: testCreds, EventName: "live-page-update", MaxBytes: 4096}, store, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen("127.0.0.1:0", TLS{}, h, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()

	c := goClientAt("http://"+s.Addr(), testCreds)
	answered := make(chan error, 1)
	go func() {
		answered <- c.Trigger("c", "live-page-update", update{Renders: map[string]render{}, Removals: []string{"p"}})
	}()
	<-storing
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v while a request was being stored", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-answered; err != nil {
		t.Errorf("the request being stored at stop: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := goClientAt("http://"+s.Addr(), testCreds).Trigger("c", "live-page-update", update{Renders: map[string]render{}, Removals: []string{}}); err == nil {
		t.Error("a request after the stop was answered")
	}
}
