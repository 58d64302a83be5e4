package main

// httpConfig is the [http] section of config.toml.
type httpConfig struct{}
