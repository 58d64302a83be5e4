package main

import (
	"fmt"
	"path/filepath"

	"github.com/alkdev/alknet/core"
	"github.com/spf13/cobra"
)

// tlsPair is one [[tls]] table of config.toml: an ordinary X.509
// certificate (ECDSA P-256 or RSA) presented to clients whose TLS server
// name matches one of its DNS names.
type tlsPair struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// acmeConfig is the [acme] table of config.toml.
type acmeConfig struct {
	Domains   []string `toml:"domains"`
	Email     string   `toml:"email"`
	Directory string   `toml:"directory"`
}

// publicFlags are serve's flags for the public face: the TCP+TLS listener
// and certificates chosen by SNI.
type publicFlags struct {
	noTCP     bool
	certs     []string
	keys      []string
	acmeNames []string
	acmeEmail string
}

func (p *publicFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&p.noTCP, "no-tcp", false, "do not listen on TCP+TLS on the same port number (QUIC only)")
	cmd.Flags().StringArrayVar(&p.certs, "tls-cert", nil, "PEM certificate chain presented to clients asking for one of its DNS names (repeatable, pairs with --tls-key)")
	cmd.Flags().StringArrayVar(&p.keys, "tls-key", nil, "PEM private key of the --tls-cert at the same position (repeatable)")
	cmd.Flags().StringArrayVar(&p.acmeNames, "acme-domain", nil, "get a certificate for this DNS name from Let's Encrypt (TLS-ALPN-01: needs the TCP listener on port 443; repeatable)")
	cmd.Flags().StringVar(&p.acmeEmail, "acme-email", "", "contact address for the ACME account")
}

// apply merges the flags into cfg: flag certificates come after the
// [[tls]] ones of config.toml, whose relative paths are relative to the
// config file's folder.
func (p *publicFlags) apply(cfg *fileConfig, configPath, acmeCache string) error {
	if len(p.certs) != len(p.keys) {
		return fmt.Errorf("--tls-cert and --tls-key come in pairs: got %d certificates and %d keys", len(p.certs), len(p.keys))
	}
	cfg.noTCP = p.noTCP
	dir := filepath.Dir(configPath)
	for i, t := range cfg.TLS {
		if t.Cert == "" || t.Key == "" {
			return fmt.Errorf("config %s: tls entry %d needs both cert and key", configPath, i+1)
		}
		cfg.tlsCerts = append(cfg.tlsCerts, core.CertFiles{Cert: relTo(dir, t.Cert), Key: relTo(dir, t.Key)})
	}
	for i := range p.certs {
		cfg.tlsCerts = append(cfg.tlsCerts, core.CertFiles{Cert: p.certs[i], Key: p.keys[i]})
	}
	domains := append(append([]string(nil), cfg.ACME.Domains...), p.acmeNames...)
	if len(domains) > 0 {
		if p.noTCP {
			return fmt.Errorf("acme needs the TCP listener: drop --no-tcp")
		}
		email := cfg.ACME.Email
		if p.acmeEmail != "" {
			email = p.acmeEmail
		}
		cfg.acme = &core.ACMEConfig{Domains: domains, CacheDir: acmeCache, Email: email, DirectoryURL: cfg.ACME.Directory}
	}
	return nil
}

func relTo(dir, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}
