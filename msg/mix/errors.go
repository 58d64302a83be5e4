package mix

import "errors"

var (
	// ErrPacketSize reports a packet that is not exactly PacketSize bytes.
	ErrPacketSize = errors.New("alknet/mix: packet is not the fixed size")
	// ErrVersion reports a packet of a version this package does not speak.
	ErrVersion = errors.New("alknet/mix: unknown packet version")
	// ErrEpoch reports a packet for an epoch whose key this node does not
	// hold (too old, too far ahead).
	ErrEpoch = errors.New("alknet/mix: packet epoch out of range")
	// ErrBadMAC reports a header whose MAC does not verify: the header was
	// changed, or it was not made for this node's key.
	ErrBadMAC = errors.New("alknet/mix: header MAC mismatch")
	// ErrBadElement reports a group element that yields the all-zero shared
	// secret (a low-order point).
	ErrBadElement = errors.New("alknet/mix: bad group element")
	// ErrRouting reports routing information with an unknown command or
	// non-zero reserved bytes.
	ErrRouting = errors.New("alknet/mix: bad routing information")
	// ErrReplay reports a packet whose tag was seen before in its epoch.
	ErrReplay = errors.New("alknet/mix: replayed packet")
	// ErrPayloadCorrupt reports a final payload whose integrity prefix is
	// not zero: the payload was changed somewhere on the route.
	ErrPayloadCorrupt = errors.New("alknet/mix: payload corrupted in transit")
	// ErrTooLarge reports an envelope or address that does not fit the
	// payload.
	ErrTooLarge = errors.New("alknet/mix: message too large for a packet")
	// ErrRoute reports a route that cannot be built: no hops, too many, or
	// a layer of the directory without a usable node.
	ErrRoute = errors.New("alknet/mix: no usable route")
	// ErrDirectory reports a directory that does not decode or verify.
	ErrDirectory = errors.New("alknet/mix: invalid directory")
	// ErrKeyRecord reports a mix key record that does not decode or verify.
	ErrKeyRecord = errors.New("alknet/mix: invalid mix key record")
	// ErrQueueFull reports a packet dropped because the delay queue is full.
	ErrQueueFull = errors.New("alknet/mix: queue full")
	// ErrUnknownHop reports a next hop that the directory does not list.
	ErrUnknownHop = errors.New("alknet/mix: next hop not in directory")
	// ErrRejected reports a packet the next hop refused; the status code
	// follows in the message.
	ErrRejected = errors.New("alknet/mix: packet rejected by the next hop")
	// ErrNoDeliver reports a final packet at a node that has no delivery
	// configured.
	ErrNoDeliver = errors.New("alknet/mix: this node does not deliver")
	// ErrClosed reports use of a node after Run returned.
	ErrClosed = errors.New("alknet/mix: node closed")
)
