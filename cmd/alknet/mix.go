package main

// mixConfig is the [mix] section of config.toml.
type mixConfig struct{}
