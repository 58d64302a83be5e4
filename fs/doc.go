// Package fs is the alknet fs module; see SPEC.md.
package fs
