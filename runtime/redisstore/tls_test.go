package redisstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime/redisstore"
)

// TestTLS: a rediss:// URL names the CA to trust and the client
// certificate a server with tls-auth-clients asks for (tls_ca, tls_cert,
// tls_key); without the client certificate that server refuses.
func TestTLS(t *testing.T) {
	redistest.URL(t) // skips, or fails with FSMC_REQUIRE_REDIS=1, without Redis
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", nil, nil)
	writeCert(t, dir, "server", ca, caKey)
	writeCert(t, dir, "client", ca, caKey)
	tlsPort, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := redistest.NewServer("--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", filepath.Join(dir, "server.pem"),
		"--tls-key-file", filepath.Join(dir, "server.key"), "--tls-ca-cert-file", filepath.Join(dir, "ca.pem"), "--tls-auth-clients", "yes")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Skipf("this redis-server does not serve TLS: %v", err)
	}
	t.Cleanup(func() { srv.Kill(); os.RemoveAll(srv.Dir) })
	ctx := context.Background()
	base := fmt.Sprintf("rediss://127.0.0.1:%d/0?tls_ca=%s", tlsPort, filepath.Join(dir, "ca.pem"))
	client := fmt.Sprintf("&tls_cert=%s&tls_key=%s", filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"))
	store, err := redisstore.Open(ctx, base+client, redisstore.Options{})
	if err != nil {
		t.Fatalf("with the CA and a client certificate: %v", err)
	}
	store.Close()
	if _, err := redisstore.Open(ctx, base, redisstore.Options{}); err == nil {
		t.Fatal("the server took a client without a certificate")
	}
	if _, err := redisstore.Open(ctx, fmt.Sprintf("rediss://127.0.0.1:%d/0", tlsPort)+"?"+client[1:], redisstore.Options{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA, a self-signed server was trusted: %v", err)
	}
	for url, want := range map[string]string{
		base + "&tls_cert=x.pem": "tls_cert and tls_key go together",
		"redis://127.0.0.1:1/0?tls_ca=" + filepath.Join(dir, "ca.pem"):                               "need a rediss:// URL",
		"redis://127.0.0.1:1?addr=127.0.0.1:2&tls_ca=" + filepath.Join(dir, "ca.pem"):                "need a rediss:// URL", // a Cluster
		fmt.Sprintf("rediss://127.0.0.1:%d/0?tls_ca=%s", tlsPort, filepath.Join(dir, "missing.pem")): "tls_ca: open",
	} {
		if _, err := redisstore.Open(ctx, url, redisstore.Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%s) = %v, want %q", url, err, want)
		}
	}
}

// writeCert writes NAME.pem and NAME.key in dir: a CA when parent is
// nil, else a certificate for 127.0.0.1 signed by it.
func writeCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "fsmc test " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, kind string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestTLSToAPlainServer: a rediss:// URL for a server that does not
// speak TLS says so, rather than only that time ran out.
func TestTLSToAPlainServer(t *testing.T) {
	plain := strings.TrimSuffix(strings.TrimPrefix(redistest.URL(t), "redis://"), "/0")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := redisstore.Open(ctx, "rediss://"+plain+"?dial_timeout=500ms", redisstore.Options{})
	if err == nil || !strings.Contains(err.Error(), "does the server take TLS on that port?") {
		t.Fatalf("Open: %v", err)
	}
}
