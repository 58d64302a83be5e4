// Package examples holds small programs that show how to use alknet from
// your own code:
//
//   - filedrop embeds one handler (alknet/sftp) in a program of its own;
//   - ownprotocol writes a protocol handler of its own and composes it with
//     core.Ping on one endpoint;
//   - webapp mounts a net/http mux on an endpoint in one line (HTTP/3, h2
//     and HTTP/1.1 on one port number).
//
// Each has a test that runs it over real QUIC on loopback.
package examples
