package core

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// CertFiles names an ordinary X.509 certificate for Config.TLSCerts.
type CertFiles struct {
	// Cert is a PEM file: the leaf certificate first, then any
	// intermediates. Its DNS SANs are the names it is presented for.
	Cert string
	// Key is a PEM file with the leaf's private key: ECDSA P-256 or RSA
	// (at least 2048 bits), PKCS#8, SEC 1 or PKCS#1.
	Key string
}

// certCheckInterval is how often, at most, a handshake checks whether a
// public certificate's files changed.
const certCheckInterval = time.Second

// publicCert is one configured certificate, re-read when its files change.
type publicCert struct {
	files CertFiles
	log   *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	names   []string
	certMod time.Time
	keyMod  time.Time
	checked time.Time
}

// loadCert reads and checks a certificate and key pair.
func loadCert(f CertFiles) (*tls.Certificate, []string, error) {
	c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrTLSCert, f.Cert, err)
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrTLSCert, f.Cert, err)
		}
	}
	switch k := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, nil, fmt.Errorf("%w: %s: ecdsa key is not p-256", ErrTLSCert, f.Cert)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, nil, fmt.Errorf("%w: %s: rsa key shorter than 2048 bits", ErrTLSCert, f.Cert)
		}
	default:
		return nil, nil, fmt.Errorf("%w: %s: key is neither ecdsa p-256 nor rsa", ErrTLSCert, f.Cert)
	}
	var names []string
	for _, n := range leaf.DNSNames {
		names = append(names, strings.ToLower(strings.TrimSuffix(n, ".")))
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("%w: %s: certificate has no dns names", ErrTLSCert, f.Cert)
	}
	c.Leaf = leaf
	return &c, names, nil
}

func modTimes(f CertFiles) (time.Time, time.Time, error) {
	ci, err := os.Stat(f.Cert)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	ki, err := os.Stat(f.Key)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return ci.ModTime(), ki.ModTime(), nil
}

func newPublicCert(f CertFiles, log *slog.Logger) (*publicCert, error) {
	cm, km, err := modTimes(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTLSCert, err)
	}
	c, names, err := loadCert(f)
	if err != nil {
		return nil, err
	}
	return &publicCert{files: f, log: log, cert: c, names: names, certMod: cm, keyMod: km, checked: time.Now()}, nil
}

// current returns the certificate and its names, re-reading the files when
// their modification times changed (checked at most once per
// certCheckInterval). A reload that fails keeps the previous certificate.
func (p *publicCert) current() (*tls.Certificate, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.checked) < certCheckInterval {
		return p.cert, p.names
	}
	p.checked = now
	cm, km, err := modTimes(p.files)
	if err != nil {
		p.log.Warn("tls certificate files unreadable; keeping the loaded one", "cert", p.files.Cert, "err", err)
		return p.cert, p.names
	}
	if cm.Equal(p.certMod) && km.Equal(p.keyMod) {
		return p.cert, p.names
	}
	c, names, err := loadCert(p.files)
	if err != nil {
		// A cert and key written one after the other do not match for a
		// moment: try again on a later handshake.
		p.log.Warn("tls certificate reload failed; keeping the loaded one", "cert", p.files.Cert, "err", err)
		return p.cert, p.names
	}
	p.cert, p.names, p.certMod, p.keyMod = c, names, cm, km
	p.log.Info("tls certificate reloaded", "cert", p.files.Cert, "names", strings.Join(names, ","))
	return p.cert, p.names
}

// matchName reports whether a server name matches a certificate name: the
// same name, or a wildcard "*.example.com" that stands for one label.
func matchName(pattern, name string) bool {
	if pattern == name {
		return true
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		_, parent, found := strings.Cut(name, ".")
		return found && parent == rest && !strings.HasPrefix(name, ".")
	}
	return false
}

// certSet chooses the server certificate of a handshake.
type certSet struct {
	node tls.Certificate
	pub  []*publicCert
	acme *autocert.Manager // nil unless Config.ACME
}

func newCertSet(node tls.Certificate, files []CertFiles, acmeCfg *ACMEConfig, log *slog.Logger) (*certSet, error) {
	m, err := newACME(acmeCfg)
	if err != nil {
		return nil, err
	}
	s := &certSet{node: node, acme: m}
	for _, f := range files {
		p, err := newPublicCert(f, log)
		if err != nil {
			return nil, err
		}
		s.pub = append(s.pub, p)
	}
	return s, nil
}

// public returns the public certificate whose names match the ClientHello's
// server name, or nil: then the node's ed25519 certificate is presented.
func (s *certSet) public(serverName string) *tls.Certificate {
	if s == nil || serverName == "" {
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(serverName, "."))
	for _, p := range s.pub {
		c, names := p.current()
		for _, n := range names {
			if matchName(n, name) {
				return c
			}
		}
	}
	return nil
}
