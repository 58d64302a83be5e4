// Package msg is the alknet msg module; see SPEC.md.
package msg
