package mix

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/alkdev/alknet/core"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/curve25519"
)

// Sizes of the packet format (SPEC.md, "Packet").
const (
	// Version is the packet version this package builds and unwraps.
	Version = 1
	// MaxHops is the most hops a header can route through.
	MaxHops = 5
	// RoutingSize is the size of one hop's routing information.
	RoutingSize = 64
	// MACSize is the size of a header MAC.
	MACSize = 16
	// slotSize is one hop's share of beta: routing information and the
	// next hop's MAC.
	slotSize = RoutingSize + MACSize
	// BetaSize is the size of the encrypted routing part of the header.
	BetaSize = MaxHops * slotSize
	// ElementSize is the size of an X25519 group element.
	ElementSize = 32
	// HeaderSize is the size of the header: version, epoch, alpha, beta,
	// gamma.
	HeaderSize = 1 + 4 + ElementSize + BetaSize + MACSize
	// PacketSize is the size of every packet on the wire.
	PacketSize = 18432
	// PayloadSize is the size of the Lioness-encrypted payload.
	PayloadSize = PacketSize - HeaderSize
	// payloadTagSize is the zero prefix that the final hop checks.
	payloadTagSize = 16
	// MaxAddrSize is the longest recipient address the payload carries.
	MaxAddrSize = 255
	// payloadFixed is the inner payload's fixed part: zero prefix, address
	// length, envelope length.
	payloadFixed = payloadTagSize + 1 + 4
	// MaxEnvelopeSize is the largest envelope that fits with any address
	// of up to MaxAddrSize bytes; with a shorter address up to
	// PayloadSize-21-len(addr) bytes fit.
	MaxEnvelopeSize = PayloadSize - payloadFixed - MaxAddrSize
	// TagSize is the size of a replay tag.
	TagSize = 32
	// maxDelayField is the largest delay the routing information encodes.
	maxDelayField = time.Duration(1<<32-1) * time.Microsecond
)

// offsets in the packet
const (
	offVersion = 0
	offEpoch   = 1
	offAlpha   = 5
	offBeta    = offAlpha + ElementSize
	offGamma   = offBeta + BetaSize
	offPayload = HeaderSize
)

// Command says what a hop does with a packet once it has peeled it.
type Command byte

const (
	// Relay forwards the packet to the node in Routing.Node.
	Relay Command = 1
	// Deliver hands the envelope to the recipient Routing.Node.
	Deliver Command = 2
	// Drop discards the packet (drop cover traffic).
	Drop Command = 3
	// Loop ends a loop cover packet at the node that sent it.
	Loop Command = 4
	// Reply ends a reply sent with a SURB (specified in SPEC.md, not
	// implemented: a node refuses it).
	Reply Command = 5
)

func (c Command) String() string {
	switch c {
	case Relay:
		return "relay"
	case Deliver:
		return "deliver"
	case Drop:
		return "drop"
	case Loop:
		return "loop"
	case Reply:
		return "reply"
	}
	return fmt.Sprintf("command(%d)", byte(c))
}

// final reports whether c ends the route.
func (c Command) final() bool { return c == Deliver || c == Drop || c == Loop || c == Reply }

// Routing is one hop's routing information, read by that hop only.
type Routing struct {
	Command Command
	// Node is the next hop (Relay), the recipient (Deliver), the sending
	// node (Loop), or zero (Drop).
	Node core.NodeID
	// Delay is how long this hop holds the packet, with microsecond
	// precision, up to about 71 minutes.
	Delay time.Duration
	// SURBID names the reply block (Reply only; zero otherwise).
	SURBID [16]byte
}

func (r Routing) encode(b []byte) {
	_ = b[RoutingSize-1]
	clear(b[:RoutingSize])
	b[0] = byte(r.Command)
	copy(b[1:33], r.Node[:])
	d := r.Delay
	d = min(max(d, 0), maxDelayField)
	binary.BigEndian.PutUint32(b[33:37], uint32(d/time.Microsecond))
	copy(b[37:53], r.SURBID[:])
}

func decodeRouting(b []byte) (Routing, error) {
	var r Routing
	r.Command = Command(b[0])
	if r.Command < Relay || r.Command > Reply {
		return Routing{}, fmt.Errorf("%w: command %d", ErrRouting, b[0])
	}
	copy(r.Node[:], b[1:33])
	r.Delay = time.Duration(binary.BigEndian.Uint32(b[33:37])) * time.Microsecond
	copy(r.SURBID[:], b[37:53])
	for _, c := range b[53:RoutingSize] {
		if c != 0 {
			return Routing{}, fmt.Errorf("%w: reserved bytes set", ErrRouting)
		}
	}
	if r.Command == Relay && r.Node.IsZero() {
		return Routing{}, fmt.Errorf("%w: relay to a zero node id", ErrRouting)
	}
	return r, nil
}

// hopKeys are the keys one hop derives from its shared secret.
type hopKeys struct {
	rho [32]byte // ChaCha20 key of the header stream
	mu  [32]byte // BLAKE2b MAC key
	pi  [lionessKeySize]byte
	tau [TagSize]byte // replay tag
}

const kdfPrefix = "alknet/mix/v1 "

// deriveKeys expands the shared secret s into a hop's keys with keyed
// BLAKE2Xb.
func deriveKeys(s *[32]byte) *hopKeys {
	var out [32 + 32 + lionessKeySize + TagSize]byte
	x, err := blake2b.NewXOF(uint32(len(out)), s[:])
	if err != nil {
		panic(err) // fixed sizes: cannot fail
	}
	_, _ = io.WriteString(x, kdfPrefix+"hop keys")
	_, _ = io.ReadFull(x, out[:])
	k := new(hopKeys)
	n := copy(k.rho[:], out[:])
	n += copy(k.mu[:], out[n:])
	n += copy(k.pi[:], out[n:])
	copy(k.tau[:], out[n:])
	clear(out[:])
	return k
}

// blinding returns the blinding scalar for the hop whose element is alpha
// and shared secret s.
func blinding(s *[32]byte, alpha []byte) []byte {
	h, err := blake2b.New256(s[:])
	if err != nil {
		panic(err)
	}
	_, _ = io.WriteString(h, kdfPrefix+"blind")
	h.Write(alpha)
	return h.Sum(nil)
}

// headerStream returns the (MaxHops+1)*slotSize bytes of ChaCha20 keystream
// that hide beta.
func headerStream(k *[32]byte) []byte {
	var nonce [chacha20.NonceSize]byte
	c, err := chacha20.NewUnauthenticatedCipher(k[:], nonce[:])
	if err != nil {
		panic(err)
	}
	out := make([]byte, BetaSize+slotSize)
	c.XORKeyStream(out, out)
	return out
}

// headerMAC is BLAKE2b-128 keyed with mu over version, epoch, alpha and
// beta. Alpha is covered too (the paper's MAC covers beta only) because
// X25519 ignores the top bit of an element: without it, that bit could be
// flipped unnoticed.
func headerMAC(mu *[32]byte, version byte, epoch, alpha, beta []byte) []byte {
	h, err := blake2b.New(MACSize, mu[:])
	if err != nil {
		panic(err)
	}
	h.Write([]byte{version})
	h.Write(epoch)
	h.Write(alpha)
	h.Write(beta)
	return h.Sum(nil)
}

func xorInto(dst, src []byte) {
	subtle.XORBytes(dst, dst, src)
}

// x25519 multiplies point by scalar, refusing the all-zero result.
func x25519(scalar, point []byte) ([]byte, error) {
	out, err := curve25519.X25519(scalar, point)
	if err != nil {
		return nil, ErrBadElement
	}
	return out, nil
}

// Hop is one node of a route as the sender sees it.
type Hop struct {
	Node core.NodeID
	// Key is the node's X25519 mix public key for the packet's epoch.
	Key [32]byte
	// Delay is how long this hop is asked to hold the packet.
	Delay time.Duration
}

// Message is what the final hop hands on: the recipient's address hint and
// the sealed envelope.
type Message struct {
	// Addr is the recipient's host:port (or empty: the deliverer resolves
	// the node id itself). At most MaxAddrSize bytes.
	Addr string
	// Envelope is the sealed message, opaque to the mix network.
	Envelope []byte
}

// encodePayload lays out the inner payload: zero prefix, address, envelope,
// zero padding.
func encodePayload(m Message) ([]byte, error) {
	if len(m.Addr) > MaxAddrSize {
		return nil, fmt.Errorf("%w: address of %d bytes (limit %d)", ErrTooLarge, len(m.Addr), MaxAddrSize)
	}
	if room := PayloadSize - payloadFixed - len(m.Addr); len(m.Envelope) > room {
		return nil, fmt.Errorf("%w: envelope of %d bytes (room for %d)", ErrTooLarge, len(m.Envelope), room)
	}
	p := make([]byte, PayloadSize)
	i := payloadTagSize
	p[i] = byte(len(m.Addr))
	i++
	i += copy(p[i:], m.Addr)
	binary.BigEndian.PutUint32(p[i:], uint32(len(m.Envelope)))
	i += 4
	copy(p[i:], m.Envelope)
	return p, nil
}

// decodePayload checks the zero prefix and reads the message out of a
// decrypted inner payload.
func decodePayload(p []byte) (Message, error) {
	if len(p) != PayloadSize {
		return Message{}, ErrPacketSize
	}
	var zero [payloadTagSize]byte
	if subtle.ConstantTimeCompare(p[:payloadTagSize], zero[:]) != 1 {
		return Message{}, ErrPayloadCorrupt
	}
	i := payloadTagSize
	n := int(p[i])
	i++
	addr := string(p[i : i+n])
	i += n
	m := int(binary.BigEndian.Uint32(p[i:]))
	i += 4
	if m > len(p)-i {
		return Message{}, fmt.Errorf("%w: envelope length %d beyond the payload", ErrPayloadCorrupt, m)
	}
	for _, c := range p[i+m:] {
		if c != 0 {
			return Message{}, fmt.Errorf("%w: padding not zero", ErrPayloadCorrupt)
		}
	}
	return Message{Addr: addr, Envelope: append([]byte(nil), p[i:i+m]...)}, nil
}

// NewPacket builds a packet for epoch that travels hops in order; the last
// hop acts on final (whose Delay is ignored: each hop's delay comes from
// its Hop). rand supplies the ephemeral key and the padding.
func NewPacket(rand io.Reader, epoch uint32, hops []Hop, final Routing, m Message) ([]byte, error) {
	if len(hops) == 0 || len(hops) > MaxHops {
		return nil, fmt.Errorf("%w: %d hops (1 to %d)", ErrRoute, len(hops), MaxHops)
	}
	if !final.Command.final() {
		return nil, fmt.Errorf("%w: final command %s", ErrRouting, final.Command)
	}
	inner, err := encodePayload(m)
	if err != nil {
		return nil, err
	}
	nu := len(hops)
	var x [32]byte
	if _, err := io.ReadFull(rand, x[:]); err != nil {
		return nil, fmt.Errorf("alknet/mix: random: %w", err)
	}
	// Group elements, shared secrets and keys per hop. alpha_i is the base
	// point times x and every earlier blinding factor; s_i is hop i's key
	// times the same scalars.
	scalars := [][]byte{x[:]}
	alphas := make([][]byte, nu)
	keys := make([]*hopKeys, nu)
	for i, h := range hops {
		a := curve25519.Basepoint
		s := h.Key[:]
		for _, sc := range scalars {
			if a, err = x25519(sc, a); err != nil {
				return nil, err
			}
			if s, err = x25519(sc, s); err != nil {
				return nil, fmt.Errorf("hop %d key: %w", i, err)
			}
		}
		alphas[i] = a
		var ss [32]byte
		copy(ss[:], s)
		keys[i] = deriveKeys(&ss)
		scalars = append(scalars, blinding(&ss, a))
		clear(ss[:])
	}
	streams := make([][]byte, nu)
	for i := range hops {
		streams[i] = headerStream(&keys[i].rho)
	}
	// Filler: what the earlier hops' decryption appends, so that the MACs
	// of later hops cover it.
	var phi []byte
	for i := 1; i < nu; i++ {
		phi = append(phi, make([]byte, slotSize)...)
		xorInto(phi, streams[i-1][(MaxHops+1-i)*slotSize:])
	}
	var ep [4]byte
	binary.BigEndian.PutUint32(ep[:], epoch)

	// The last hop's beta: its routing information, a zero MAC, random
	// padding, all encrypted, then the filler.
	plainLen := (MaxHops - nu + 1) * slotSize
	plain := make([]byte, plainLen)
	fin := final
	fin.Delay = hops[nu-1].Delay
	fin.encode(plain)
	if _, err := io.ReadFull(rand, plain[slotSize:]); err != nil {
		return nil, fmt.Errorf("alknet/mix: random: %w", err)
	}
	xorInto(plain, streams[nu-1][:plainLen])
	beta := append(plain, phi...)
	gamma := headerMAC(&keys[nu-1].mu, Version, ep[:], alphas[nu-1], beta)
	for i := nu - 2; i >= 0; i-- {
		next := make([]byte, BetaSize)
		Routing{Command: Relay, Node: hops[i+1].Node, Delay: hops[i].Delay}.encode(next)
		copy(next[RoutingSize:], gamma)
		copy(next[slotSize:], beta[:BetaSize-slotSize])
		xorInto(next, streams[i][:BetaSize])
		beta = next
		gamma = headerMAC(&keys[i].mu, Version, ep[:], alphas[i], beta)
	}
	pkt := make([]byte, PacketSize)
	pkt[offVersion] = Version
	copy(pkt[offEpoch:], ep[:])
	copy(pkt[offAlpha:], alphas[0])
	copy(pkt[offBeta:], beta)
	copy(pkt[offGamma:], gamma)
	payload := pkt[offPayload:]
	copy(payload, inner)
	for i := nu - 1; i >= 0; i-- {
		lionessEncrypt(&keys[i].pi, payload)
	}
	return pkt, nil
}

// PacketEpoch returns the epoch a packet was built for, or an error when
// it has the wrong size or version.
func PacketEpoch(pkt []byte) (uint32, error) {
	if len(pkt) != PacketSize {
		return 0, fmt.Errorf("%w: %d bytes", ErrPacketSize, len(pkt))
	}
	if pkt[offVersion] != Version {
		return 0, fmt.Errorf("%w: %d", ErrVersion, pkt[offVersion])
	}
	return binary.BigEndian.Uint32(pkt[offEpoch:]), nil
}

// Unwrapped is what a hop learns from a packet.
type Unwrapped struct {
	// Epoch is the packet's epoch.
	Epoch uint32
	// Tag is the packet's replay tag for this hop.
	Tag [TagSize]byte
	// Routing is this hop's routing information.
	Routing Routing
	// Packet is the packet for the next hop (Relay only), PacketSize bytes.
	Packet []byte
	// Message is the final payload (Deliver, Loop, Drop).
	Message Message
}

// Unwrap peels one layer off pkt with the hop's X25519 private key priv
// for the packet's epoch. seen is called with the replay tag once the MAC
// verifies and before the payload is decrypted; an error from it (ErrReplay)
// aborts. pkt is modified in place and becomes Unwrapped.Packet for a
// relay.
func Unwrap(priv *[32]byte, pkt []byte, seen func(epoch uint32, tag [TagSize]byte) error) (*Unwrapped, error) {
	epoch, err := PacketEpoch(pkt)
	if err != nil {
		return nil, err
	}
	alpha := pkt[offAlpha:offBeta]
	sb, err := x25519(priv[:], alpha)
	if err != nil {
		return nil, err
	}
	var s [32]byte
	copy(s[:], sb)
	defer clear(s[:])
	k := deriveKeys(&s)
	beta := pkt[offBeta:offGamma]
	gamma := pkt[offGamma:offPayload]
	want := headerMAC(&k.mu, pkt[offVersion], pkt[offEpoch:offAlpha], alpha, beta)
	if subtle.ConstantTimeCompare(want, gamma) != 1 {
		return nil, ErrBadMAC
	}
	u := &Unwrapped{Epoch: epoch, Tag: k.tau}
	if seen != nil {
		if err := seen(epoch, k.tau); err != nil {
			return nil, err
		}
	}
	b := make([]byte, BetaSize+slotSize)
	copy(b, beta)
	xorInto(b, headerStream(&k.rho))
	r, err := decodeRouting(b[:RoutingSize])
	if err != nil {
		return nil, err
	}
	u.Routing = r
	if r.Command == Reply {
		return nil, fmt.Errorf("%w: reply blocks are not implemented", ErrRouting)
	}
	payload := pkt[offPayload:]
	lionessDecrypt(&k.pi, payload)
	if r.Command.final() {
		m, err := decodePayload(payload)
		if err != nil {
			return nil, err
		}
		u.Message = m
		return u, nil
	}
	next, err := x25519(blinding(&s, alpha), alpha)
	if err != nil {
		return nil, err
	}
	copy(pkt[offAlpha:], next)
	copy(pkt[offGamma:], b[RoutingSize:slotSize])
	copy(pkt[offBeta:offGamma], b[slotSize:])
	u.Packet = pkt
	return u, nil
}
