// Package lossy is a UDP proxy that impairs the datagrams it forwards: it
// drops, duplicates and reorders them at configured rates, in both
// directions. It stands between a QUIC client and a node to check that
// transfers stay byte-exact on a bad network.
//
// Each client source address gets its own upstream socket, so the node sees
// one address per client as it would through a NAT. The proxy is a test
// tool: it does not parse what it forwards, and it listens where it is told
// (use a loopback address).
package lossy
