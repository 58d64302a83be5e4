// Package dns is the alknet dns module; see SPEC.md.
package dns
