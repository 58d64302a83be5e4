package main

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// extension is one module's part of the binary: its commands, its serve
// flags, its services and what it starts once the node is up. A module's
// file in this package adds itself with addExtension from an init function,
// so that modules are wired side by side without editing serve.go or
// root.go.
type extension struct {
	// name identifies the extension in logs and errors ("fs", "dns").
	name string
	// commands returns the extension's top-level commands. May be nil.
	commands func(g *globals) []*cobra.Command
	// serveFlags adds flags to `alknet serve`; apply folds them into the
	// loaded config before the node starts. Either may be nil.
	serveFlags func(fs *pflag.FlagSet)
	apply      func(cfg *fileConfig) error
	// services builds the extension's handlers; nil entries (or a nil
	// result) mean disabled by configuration. Services are registered
	// after the built-in ones and before the endpoint serves.
	services func(env *serveEnv) ([]*service, error)
	// started runs once the endpoint is serving (listeners of its own,
	// publishing). It must return promptly; work it starts runs until ctx
	// is done. ctx ends when the node begins to shut down.
	started func(ctx context.Context, env *serveEnv) error
}

var extensions []extension

// addExtension registers x; called from init functions.
func addExtension(x extension) { extensions = append(extensions, x) }
