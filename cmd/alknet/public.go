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

// publicFlags are serve's flags for the public face: the TCP+TLS listener
// and certificates chosen by SNI.
type publicFlags struct {
	noTCP bool
	certs []string
	keys  []string
}

func (p *publicFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&p.noTCP, "no-tcp", false, "do not listen on TCP+TLS on the same port number (QUIC only)")
	cmd.Flags().StringArrayVar(&p.certs, "tls-cert", nil, "PEM certificate chain presented to clients asking for one of its DNS names (repeatable, pairs with --tls-key)")
	cmd.Flags().StringArrayVar(&p.keys, "tls-key", nil, "PEM private key of the --tls-cert at the same position (repeatable)")
}

// apply merges the flags into cfg: flag certificates come after the
// [[tls]] ones of config.toml, whose relative paths are relative to the
// config file's folder.
func (p *publicFlags) apply(cfg *fileConfig, configPath string) error {
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
	return nil
}

func relTo(dir, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}
