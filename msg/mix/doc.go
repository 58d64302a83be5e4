// Package mix is a Sphinx mix network for alknet messages, served on the
// ALPN alknet/mix.
//
// A sender wraps a sealed msg envelope in a fixed-size Sphinx packet
// (Danezis and Goldberg, 2009) routed through one mix node per layer of a
// signed directory. Each node peels one layer with its per-epoch X25519 mix
// key, learns only the previous and the next hop, holds the packet for the
// delay the sender chose for it (exponentially distributed: a Poisson mix as
// in Loopix), and passes it on; the last node hands the envelope to the
// recipient's msg delivery through a Deliver callback, so this package does
// not depend on the msg package.
//
// The format is in SPEC.md: every packet is PacketSize bytes, a header for
// up to MaxHops hops and a payload encrypted with Lioness (ChaCha20 and
// keyed BLAKE2b), so that a changed bit anywhere turns the final payload to
// noise, which the last hop detects. Replay tags are kept per epoch in the
// node database (ReplayStore) and survive restarts. Queues are bounded and
// every drop is counted (Node.Stats).
//
// Security posture: the mix network hides who talks to whom from an
// observer who does not control every hop of a route; it does not hide that
// a node sends or receives mix traffic (cover traffic at configurable rates
// blurs when). Mix keys are derived from the node key: whoever steals a node
// key can unwrap that node's layer of recorded past packets, so mix
// forward secrecy is bounded by the life of the node key. The envelope's
// confidentiality and sender authentication come from the msg layer.
package mix
