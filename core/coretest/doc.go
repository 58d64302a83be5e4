// Package coretest helps handler authors test without setup: Pipe gives an
// in-memory connected pair of core.Conn, and NewPair starts two real
// endpoints on loopback.
package coretest
