package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/glasshouse-dev/glasshouse/internal/imports"
)

// TestImports keeps the package comment's account of the imports true:
// the standard library only.
func TestImports(t *testing.T) { imports.Allowed(t) }

// TestWrite: the files load as a key pair, and the pool trusts the
// certificate for both names.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := Write(t, dir)
	if certFile != filepath.Join(dir, "fullchain.pem") || keyFile != filepath.Join(dir, "privkey.pem") {
		t.Errorf("paths %s, %s", certFile, keyFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"glasshouse.example.com", "127.0.0.1"} {
		if err := pair.Leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate for %s: %v", name, err)
		}
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "glasshouse.example.com"}); err != nil {
		t.Errorf("the returned pool does not trust the certificate: %v", err)
	}
}
