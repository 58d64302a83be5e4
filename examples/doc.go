// Package examples holds small programs that show how to use alknet from
// your own code: ownprotocol writes a protocol handler and composes it with
// core.Ping on one endpoint.
package examples
