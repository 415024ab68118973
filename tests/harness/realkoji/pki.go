package realkoji

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// pki is the hub's throwaway certificate authority: it signs the server
// certificate (CN=localhost) and client certificates whose CN is a Koji
// user or host name.
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool

	mu     sync.Mutex
	serial int64
}

func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kojibot test CA", Organization: []string{"kojibot tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &pki{dir: dir, caCert: cert, caKey: key, pool: x509.NewCertPool(), serial: 1}
	p.pool.AddCert(cert)
	if err := writePEM(p.caPath(), 0o644, pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pki) caPath() string { return filepath.Join(p.dir, "ca.crt") }

// issue signs a certificate for cn (a server certificate for localhost
// when server is true) and writes name.crt, name.key and name.pem
// (certificate then key, as the koji CLI wants) into the directory.
func (p *pki) issue(name, cn string, server bool) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	p.mu.Lock()
	p.serial++
	serial := p.serial
	p.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"kojibot tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	certBlock := pem.Block{Type: "CERTIFICATE", Bytes: der}
	keyBlock := pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}
	base := filepath.Join(p.dir, name)
	if err := writePEM(base+".crt", 0o644, certBlock); err != nil {
		return tls.Certificate{}, err
	}
	if err := writePEM(base+".key", 0o600, keyBlock); err != nil {
		return tls.Certificate{}, err
	}
	if err := writePEM(base+".pem", 0o600, certBlock, keyBlock); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(pem.EncodeToMemory(&certBlock), pem.EncodeToMemory(&keyBlock))
}

func writePEM(path string, mode os.FileMode, blocks ...pem.Block) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	for _, b := range blocks {
		if err := pem.Encode(f, &b); err != nil {
			f.Close()
			return fmt.Errorf("realkoji: %s: %w", path, err)
		}
	}
	return f.Close()
}
