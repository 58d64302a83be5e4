package fs

import (
	"encoding/base32"
	"fmt"
	"strings"

	"github.com/alkdev/alknet/core"
)

// TicketPrefix starts every ticket.
const TicketPrefix = "alknet:blob:"

// Limits of a ticket.
const (
	// MaxTicketLength bounds a ticket string, in characters.
	MaxTicketLength = 4096
	// MaxTicketAddrs is the most addresses a ticket carries.
	MaxTicketAddrs = 16

	ticketVersion = 1
)

var ticketEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Ticket is everything needed to fetch a blob or a collection: the node
// (pinned by its id), where to reach it and what to ask for. Its text form
// (String, ParseTicket; SPEC.md, "Tickets") is one string to paste.
type Ticket struct {
	Node core.NodeID
	// Addrs are the node's host:port addresses, most preferred first.
	Addrs []string
	Hash  Hash
	// Collection says the hash names a collection, not a single file.
	Collection bool
}

// NodeAddrs returns the ticket's addresses as dialable node addresses.
func (t Ticket) NodeAddrs() []core.Addr {
	out := make([]core.Addr, 0, len(t.Addrs))
	for _, h := range t.Addrs {
		out = append(out, core.Addr{ID: t.Node, Host: h})
	}
	return out
}

// String returns "alknet:blob:" and the lowercase base32 (RFC 4648, no
// padding) of the binary ticket.
func (t Ticket) String() string {
	b := []byte{ticketVersion, 0}
	if t.Collection {
		b[1] = 1
	}
	b = append(b, t.Hash[:]...)
	b = append(b, t.Node[:]...)
	b = append(b, byte(len(t.Addrs)))
	for _, a := range t.Addrs {
		b = append(b, byte(len(a)))
		b = append(b, a...)
	}
	return TicketPrefix + ticketEncoding.EncodeToString(b)
}

// ParseTicket parses a ticket. It accepts upper or lower case after the
// prefix, and checks every address.
func ParseTicket(s string) (Ticket, error) {
	if len(s) > MaxTicketLength {
		return Ticket{}, fmt.Errorf("%w: %d characters (limit %d)", ErrBadTicket, len(s), MaxTicketLength)
	}
	rest, ok := strings.CutPrefix(s, TicketPrefix)
	if !ok {
		return Ticket{}, fmt.Errorf("%w: does not start with %q", ErrBadTicket, TicketPrefix)
	}
	b, err := ticketEncoding.DecodeString(strings.ToLower(rest))
	if err != nil {
		return Ticket{}, fmt.Errorf("%w: not base32", ErrBadTicket)
	}
	d := decoder{b: b}
	if v := d.u8(); v != ticketVersion {
		return Ticket{}, fmt.Errorf("%w: version %d (this program knows %d)", ErrBadTicket, v, ticketVersion)
	}
	var t Ticket
	switch d.u8() {
	case 0:
	case 1:
		t.Collection = true
	default:
		return Ticket{}, fmt.Errorf("%w: unknown format", ErrBadTicket)
	}
	t.Hash = d.hash()
	t.Node = core.NodeID(d.take(32))
	n := int(d.u8())
	if n > MaxTicketAddrs {
		return Ticket{}, fmt.Errorf("%w: %d addresses (limit %d)", ErrBadTicket, n, MaxTicketAddrs)
	}
	for range n {
		h := d.str8()
		if d.err != nil {
			break
		}
		a, err := core.ParseAddr(t.Node.String() + "@" + h)
		if err != nil || a.Host != h {
			return Ticket{}, fmt.Errorf("%w: bad address %q", ErrBadTicket, h)
		}
		t.Addrs = append(t.Addrs, h)
	}
	if d.err != nil {
		return Ticket{}, fmt.Errorf("%w: truncated", ErrBadTicket)
	}
	if len(d.b) != 0 {
		return Ticket{}, fmt.Errorf("%w: %d trailing bytes", ErrBadTicket, len(d.b))
	}
	if t.Node.IsZero() {
		return Ticket{}, fmt.Errorf("%w: no node id", ErrBadTicket)
	}
	return t, nil
}
