package main

// fsConfig is the [fs] section of config.toml.
type fsConfig struct{}
