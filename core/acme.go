package core

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ACMEConfig gets and renews public certificates from an ACME CA (RFC 8555)
// through the TLS-ALPN-01 challenge (RFC 8737). The CA checks the challenge
// over TCP on port 443, so the endpoint must run the TCP listener
// (Config.ListenTCP) on port 443, or behind something that forwards it.
// Certificates are fetched on the first handshake that names a domain and
// renewed in the background.
type ACMEConfig struct {
	// Domains are the DNS names to get certificates for. Required.
	Domains []string
	// CacheDir keeps the ACME account key and the certificates across
	// restarts (files of mode 0600). Required.
	CacheDir string
	// Email is the contact address given to the CA; empty gives none.
	Email string
	// DirectoryURL is the CA's ACME directory. Empty means Let's Encrypt's
	// production directory.
	DirectoryURL string
}

// newACME builds the autocert manager of cfg, or nil when cfg is nil.
func newACME(cfg *ACMEConfig) (*autocert.Manager, error) {
	if cfg == nil {
		return nil, nil
	}
	if len(cfg.Domains) == 0 {
		return nil, fmt.Errorf("%w: acme needs at least one domain", ErrTLSCert)
	}
	if cfg.CacheDir == "" {
		return nil, fmt.Errorf("%w: acme needs a cache directory", ErrTLSCert)
	}
	var domains []string
	for _, d := range cfg.Domains {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if !strings.Contains(d, ".") || strings.ContainsAny(d, "*/ ") {
			return nil, fmt.Errorf("%w: acme domain %q is not a full dns name", ErrTLSCert, d)
		}
		domains = append(domains, d)
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(cfg.CacheDir),
		HostPolicy: autocert.HostWhitelist(domains...),
		Email:      cfg.Email,
	}
	if cfg.DirectoryURL != "" {
		m.Client = &acme.Client{DirectoryURL: cfg.DirectoryURL}
	}
	return m, nil
}

// acmeFor reports whether the ClientHello is for an ACME-managed name.
func (s *certSet) acmeFor(serverName string) bool {
	if s == nil || s.acme == nil || serverName == "" {
		return false
	}
	return s.acme.HostPolicy(nil, strings.ToLower(strings.TrimSuffix(serverName, "."))) == nil
}

// acmeChallenge reports whether the ClientHello is a TLS-ALPN-01
// validation by the CA.
func (s *certSet) acmeChallenge(protos []string) bool {
	return s != nil && s.acme != nil && slices.Contains(protos, acme.ALPNProto)
}
