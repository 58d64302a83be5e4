package main

// msgConfig is the [msg] section of config.toml.
type msgConfig struct{}
