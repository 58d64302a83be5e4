package main

// dhtConfig is the [dht] section of config.toml.
type dhtConfig struct{}
