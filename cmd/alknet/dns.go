package main

// dnsConfig is the [dns] section of config.toml.
type dnsConfig struct{}

// dhtConfig is the [dht] section of config.toml.
type dhtConfig struct{}
