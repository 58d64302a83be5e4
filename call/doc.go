// Package call is the call protocol of alknet, served on the ALPN
// "alknet/call": typed operations (queries, mutations, subscriptions) with
// JSON envelopes in length-prefixed frames. Calls are named by ids scoped to
// the connection: a stream may carry one call or many, and an abort may
// come on any stream.
//
// A Registry holds operations registered with Go types (Query, Mutation,
// Subscription); their JSON Schemas are derived from the types and every
// input is validated before the handler runs. A Server serves a registry as
// a core.ProtocolHandler; a Peer is one connection from either side: it
// serves its registry and calls the remote's (Call, Subscribe). A Hub imports
// the operations of connected peers and forwards calls to them.
//
// Security: every operation has a core.AccessControl checked against the
// direct caller's identity (or a valid auth_token's), never against the
// forwarded_for a hub adds. Internal operations are unreachable from the
// wire. Frames are limited to 1 MiB (configurable up to 64 MiB), and each
// connection to a budget of bytes being read and decoded; calls in flight
// are limited per connection and per stream; every call has a
// deadline (30 s) unless it is a subscription; cancellation follows a call
// across nodes. Messages on the wire are codes plus text safe to show;
// internal errors stay in the log. The wire format is in SPEC.md.
package call
