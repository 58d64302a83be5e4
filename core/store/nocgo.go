//go:build !cgo

package store

// The store keeps peers in SQLite through github.com/mattn/go-sqlite3,
// which is C code built with cgo. Without cgo (no C compiler on PATH, or
// CGO_ENABLED=0) that driver compiles to a stub that fails only at run time;
// this declaration makes the build fail at once, with a line saying why:
//
//	undefined: SQLite_needs_cgo__install_a_C_compiler_such_as_gcc_and_build_with_CGO_ENABLED_1
var _ = SQLite_needs_cgo__install_a_C_compiler_such_as_gcc_and_build_with_CGO_ENABLED_1
