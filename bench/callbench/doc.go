// Package callbench compares alknet/call with grpc-go on loopback: unary
// round trips (1 and 64 concurrent callers on one connection, p50/p99
// latency, calls per second) and server-streaming items per second. Both
// sides carry the same JSON messages over TLS 1.3 with ed25519 keys. Run
// bench/call.sh; it lives outside go.work (GOWORK=off) so grpc-go stays out
// of the workspace.
package callbench
