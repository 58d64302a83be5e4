// Package soak is the home of alknet's load, fault and bad-input suite
// (`make soak`, in cmd/soak) and of the lossy UDP proxy it uses (package
// lossy, command cmd/lossyproxy).
//
// The suite runs outside `make test`, on loopback only (127.0.0.1), bounded
// in time and count by its SOAK_* knobs, and stops by itself. It drives the
// real `alknet` binary, OpenSSH and the exported client packages, and
// prints one row per check. It is a test harness: nothing in it is meant
// to be imported, and it is not published as a module.
package soak
