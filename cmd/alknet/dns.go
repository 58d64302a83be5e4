package main

// dnsConfig is the [dns] section of config.toml.
type dnsConfig struct{}
