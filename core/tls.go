package core

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/acme"
)

// selfSignedCert makes a fresh in-memory X.509 certificate for key. It only
// carries the ed25519 public key; nothing in it but the key is trusted.
func selfSignedCert(key SecretKey) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: key.NodeID().String()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(100 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.priv.Public(), key.priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key.priv}, nil
}

// peerNodeID checks that rawCerts holds exactly one self-signed certificate
// with an ed25519 key and returns that key. CA chains and validity dates are
// ignored: the key is the identity.
func peerNodeID(rawCerts [][]byte) (NodeID, error) {
	if len(rawCerts) != 1 {
		return NodeID{}, fmt.Errorf("want one certificate, got %d", len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return NodeID{}, fmt.Errorf("parse certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return NodeID{}, errors.New("certificate key is not ed25519")
	}
	if cert.SignatureAlgorithm != x509.PureEd25519 {
		return NodeID{}, errors.New("certificate is not signed with ed25519")
	}
	if !ed25519.Verify(pub, cert.RawTBSCertificate, cert.Signature) {
		return NodeID{}, errors.New("certificate is not self-signed by its key")
	}
	return NodeIDFromPublicKey(pub)
}

// serverTLS returns the listening TLS config. nextProtos is called per
// handshake so that handlers registered after Serve are offered too. A
// ClientHello whose server name matches a public certificate of certs gets
// that certificate and is not asked for a client certificate; every other
// one gets the node's ed25519 certificate.
func serverTLS(certs *certSet, nextProtos func() []string) *tls.Config {
	base := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{certs.node},
		// A client may show no certificate: it is anonymous and reaches
		// only open ALPNs. One that shows a certificate is verified.
		ClientAuth: tls.RequestClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil
			}
			_, err := peerNodeID(raw)
			return err
		},
		SessionTicketsDisabled: true,
	}
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if certs.acmeChallenge(hello.SupportedProtos) {
			// A TLS-ALPN-01 validation: the CA's handshake only checks
			// the token certificate; the connection then finds no
			// handler and is closed.
			return &tls.Config{
				MinVersion:             tls.VersionTLS12,
				NextProtos:             []string{acme.ALPNProto},
				GetCertificate:         certs.acme.GetCertificate,
				SessionTicketsDisabled: true,
			}, nil
		}
		c := base.Clone()
		c.GetConfigForClient = nil
		c.NextProtos = nextProtos()
		if pub := certs.public(hello.ServerName); pub != nil {
			c.Certificates = []tls.Certificate{*pub}
			// Public-name clients (browsers, resolvers) are anonymous;
			// asking them for a certificate would only prompt users.
			c.ClientAuth = tls.NoClientCert
		} else if certs.acmeFor(hello.ServerName) {
			c.Certificates = nil
			c.GetCertificate = certs.acme.GetCertificate
			c.ClientAuth = tls.NoClientCert
		}
		return c, nil
	}
	return base
}

// clientTLS returns a TLS config that pins the server's key to want.
func clientTLS(cert tls.Certificate, want NodeID, alpn string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		NextProtos:         []string{alpn},
		ServerName:         "alknet",
		InsecureSkipVerify: true, // chain verification is replaced by the key pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			got, err := peerNodeID(raw)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%w: dialed %s, got %s", ErrNodeIDMismatch, want, got)
			}
			return nil
		},
		SessionTicketsDisabled: true,
	}
}
