// Package alkhttp is the alknet http module; see SPEC.md.
package alkhttp
