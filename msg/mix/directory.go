package mix

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/alkdev/alknet/core"
)

// Directory limits (SPEC.md, "Directory").
const (
	// MaxDirectorySize bounds an encoded directory; in base64 it fits a
	// call frame (1 MiB), so mix/directory can carry it.
	MaxDirectorySize = 512 << 10
	// MaxDirectoryNodes bounds the nodes a directory lists.
	MaxDirectoryNodes = 256
	// MaxDirectoryEpochs bounds the epochs a directory carries keys for.
	MaxDirectoryEpochs = 48
)

const (
	dirMagic      = "AMXD"
	dirVersion    = 1
	dirSigContext = "alknet/mix/v1 directory\x00"
	dirHeaderSize = 4 + 1 + 32 + 8 + 4 + 4 + 1 + 4 + 1 + 2
	dirKeySize    = 32 + ed25519.SignatureSize
)

// Directory is the signed list of mix nodes that senders route through and
// nodes forward by.
type Directory struct {
	// Authority signs the directory.
	Authority core.NodeID
	// Issued is when it was signed (whole seconds).
	Issued time.Time
	// Period is the epoch period, whole seconds.
	Period time.Duration
	// FirstEpoch and Epochs are the epochs the directory has keys for.
	FirstEpoch uint32
	Epochs     int
	// MeanDelay is the mean per-hop delay senders draw from (microsecond
	// precision).
	MeanDelay time.Duration
	// Layers is the number of layers; a route takes one node of each.
	Layers int
	// Nodes are the mix nodes.
	Nodes []DirNode

	raw []byte
}

// DirNode is one mix node of a directory.
type DirNode struct {
	ID    core.NodeID
	Layer int
	// Addr is the node's host:port.
	Addr string
	// Keys are the node's signed mix keys for FirstEpoch, FirstEpoch+1, ...
	Keys []KeyRecord
}

// Raw returns the signed encoding the directory was parsed from or signed
// into.
func (d *Directory) Raw() []byte { return d.raw }

// Expires returns when the last epoch of the directory ends.
func (d *Directory) Expires() time.Time {
	return EpochStart(d.FirstEpoch+uint32(d.Epochs), d.Period)
}

// Covers reports whether the directory has keys for epoch e.
func (d *Directory) Covers(e uint32) bool {
	return e >= d.FirstEpoch && uint64(e) < uint64(d.FirstEpoch)+uint64(d.Epochs)
}

// Node returns the node with id.
func (d *Directory) Node(id core.NodeID) (DirNode, bool) {
	for _, n := range d.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return DirNode{}, false
}

// Key returns the mix public key of the node for epoch e.
func (n DirNode) Key(d *Directory, e uint32) ([32]byte, bool) {
	if !d.Covers(e) {
		return [32]byte{}, false
	}
	return n.Keys[e-d.FirstEpoch].Public, true
}

// NodeAddr returns the node's dialable address.
func (n DirNode) NodeAddr() core.Addr { return core.Addr{ID: n.ID, Host: n.Addr} }

// validate checks the structure of d (not the signatures).
func (d *Directory) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrDirectory, fmt.Sprintf(format, args...))
	}
	p := d.Period / time.Second
	if p < 1 || p > math.MaxUint32 || d.Period%time.Second != 0 {
		return bad("epoch period %s is not a whole number of seconds", d.Period)
	}
	if d.Epochs < 1 || d.Epochs > MaxDirectoryEpochs {
		return bad("%d epochs (1 to %d)", d.Epochs, MaxDirectoryEpochs)
	}
	if uint64(d.FirstEpoch)+uint64(d.Epochs) > math.MaxUint32 {
		return bad("epochs beyond the last")
	}
	if d.MeanDelay < 0 || d.MeanDelay > maxDelayField {
		return bad("mean delay %s out of range", d.MeanDelay)
	}
	if d.Layers < 1 || d.Layers > MaxHops {
		return bad("%d layers (1 to %d)", d.Layers, MaxHops)
	}
	if len(d.Nodes) < 1 || len(d.Nodes) > MaxDirectoryNodes {
		return bad("%d nodes (1 to %d)", len(d.Nodes), MaxDirectoryNodes)
	}
	perLayer := make([]int, d.Layers)
	seen := make(map[core.NodeID]bool, len(d.Nodes))
	for _, n := range d.Nodes {
		if seen[n.ID] {
			return bad("node %s listed twice", n.ID)
		}
		seen[n.ID] = true
		if n.Layer < 0 || n.Layer >= d.Layers {
			return bad("node %s in layer %d of %d", n.ID, n.Layer, d.Layers)
		}
		perLayer[n.Layer]++
		if err := checkHostPort(n.Addr); err != nil {
			return bad("node %s: %v", n.ID, err)
		}
		if len(n.Keys) != d.Epochs {
			return bad("node %s has %d keys for %d epochs", n.ID, len(n.Keys), d.Epochs)
		}
		for i, k := range n.Keys {
			if k.Node != n.ID || k.Epoch != d.FirstEpoch+uint32(i) || k.Period != uint32(p) {
				return bad("node %s: key %d is for another node, epoch or period", n.ID, i)
			}
		}
	}
	for l, c := range perLayer {
		if c == 0 {
			return bad("layer %d has no node", l)
		}
	}
	return nil
}

func checkHostPort(s string) error {
	if len(s) == 0 || len(s) > MaxAddrSize {
		return fmt.Errorf("address of %d bytes (1 to %d)", len(s), MaxAddrSize)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("address %q: %v", s, err)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if host == "" || err != nil || pn == 0 || strconv.FormatUint(pn, 10) != port {
		return fmt.Errorf("address %q: want host:port", s)
	}
	return nil
}

// encodeBody encodes everything the authority signs.
func (d *Directory) encodeBody() []byte {
	b := make([]byte, 0, dirHeaderSize+len(d.Nodes)*(36+d.Epochs*dirKeySize))
	b = append(b, dirMagic...)
	b = append(b, dirVersion)
	b = append(b, d.Authority[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(d.Issued.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(d.Period/time.Second))
	b = binary.BigEndian.AppendUint32(b, d.FirstEpoch)
	b = append(b, byte(d.Epochs))
	b = binary.BigEndian.AppendUint32(b, uint32(d.MeanDelay/time.Microsecond))
	b = append(b, byte(d.Layers))
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Nodes)))
	for _, n := range d.Nodes {
		b = append(b, n.ID[:]...)
		b = append(b, byte(n.Layer), byte(len(n.Addr)))
		b = append(b, n.Addr...)
		for _, k := range n.Keys {
			b = append(b, k.Public[:]...)
			b = append(b, k.Signature[:]...)
		}
	}
	return b
}

// SignDirectory validates d, checks every key record's signature, sets
// d.Authority and returns the signed encoding (also kept in d.Raw).
func SignDirectory(authority core.SecretKey, d *Directory) ([]byte, error) {
	d.Authority = authority.NodeID()
	d.Issued = d.Issued.Truncate(time.Second)
	if err := d.validate(); err != nil {
		return nil, err
	}
	for _, n := range d.Nodes {
		for _, k := range n.Keys {
			if err := k.Verify(); err != nil {
				return nil, fmt.Errorf("%w: node %s: %v", ErrDirectory, n.ID, err)
			}
		}
	}
	body := d.encodeBody()
	if len(body)+ed25519.SignatureSize > MaxDirectorySize {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrDirectory, len(body)+ed25519.SignatureSize, MaxDirectorySize)
	}
	sig := authority.Sign(append([]byte(dirSigContext), body...))
	d.raw = append(body, sig...)
	return d.raw, nil
}

// decodeDirectory parses the structure of a signed directory without
// checking signatures. It never allocates ahead of the bytes it has.
func decodeDirectory(b []byte) (*Directory, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrDirectory, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxDirectorySize {
		return nil, bad("%d bytes (limit %d)", len(b), MaxDirectorySize)
	}
	if len(b) < dirHeaderSize+ed25519.SignatureSize {
		return nil, bad("truncated (%d bytes)", len(b))
	}
	if string(b[:4]) != dirMagic {
		return nil, bad("not a mix directory")
	}
	if b[4] != dirVersion {
		return nil, bad("version %d", b[4])
	}
	d := &Directory{}
	copy(d.Authority[:], b[5:37])
	issued := binary.BigEndian.Uint64(b[37:45])
	if issued > math.MaxInt64/2 {
		return nil, bad("issue time out of range")
	}
	d.Issued = time.Unix(int64(issued), 0)
	d.Period = time.Duration(binary.BigEndian.Uint32(b[45:49])) * time.Second
	d.FirstEpoch = binary.BigEndian.Uint32(b[49:53])
	d.Epochs = int(b[53])
	d.MeanDelay = time.Duration(binary.BigEndian.Uint32(b[54:58])) * time.Microsecond
	d.Layers = int(b[58])
	count := int(binary.BigEndian.Uint16(b[59:61]))
	if count > MaxDirectoryNodes {
		return nil, bad("%d nodes (limit %d)", count, MaxDirectoryNodes)
	}
	body := b[:len(b)-ed25519.SignatureSize]
	rest := body[dirHeaderSize:]
	for i := 0; i < count; i++ {
		if len(rest) < 34 {
			return nil, bad("node %d truncated", i)
		}
		var n DirNode
		copy(n.ID[:], rest[:32])
		n.Layer = int(rest[32])
		al := int(rest[33])
		rest = rest[34:]
		if len(rest) < al+d.Epochs*dirKeySize {
			return nil, bad("node %d truncated", i)
		}
		n.Addr = string(rest[:al])
		rest = rest[al:]
		n.Keys = make([]KeyRecord, d.Epochs)
		for j := range n.Keys {
			k := &n.Keys[j]
			k.Node = n.ID
			k.Period = uint32(d.Period / time.Second)
			k.Epoch = d.FirstEpoch + uint32(j)
			copy(k.Public[:], rest[:32])
			copy(k.Signature[:], rest[32:dirKeySize])
			rest = rest[dirKeySize:]
		}
		d.Nodes = append(d.Nodes, n)
	}
	if len(rest) != 0 {
		return nil, bad("%d trailing bytes", len(rest))
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	d.raw = b
	return d, nil
}

// ParseDirectory decodes a signed directory and verifies it: the
// authority's signature (the directory must name authority as its signer)
// and every node's signature on its mix keys.
func ParseDirectory(b []byte, authority core.NodeID) (*Directory, error) {
	d, err := decodeDirectory(b)
	if err != nil {
		return nil, err
	}
	if d.Authority != authority {
		return nil, fmt.Errorf("%w: signed by %s, not the authority %s", ErrDirectory, d.Authority, authority)
	}
	body, sig := b[:len(b)-ed25519.SignatureSize], b[len(b)-ed25519.SignatureSize:]
	if !ed25519.Verify(authority.PublicKey(), append([]byte(dirSigContext), body...), sig) {
		return nil, fmt.Errorf("%w: bad authority signature", ErrDirectory)
	}
	for _, n := range d.Nodes {
		for _, k := range n.Keys {
			if err := k.Verify(); err != nil {
				return nil, fmt.Errorf("%w: node %s: %v", ErrDirectory, n.ID, err)
			}
		}
	}
	d.raw = slices.Clone(b)
	return d, nil
}

// Route picks one node of each layer uniformly at random, layer 0 first.
func (d *Directory) Route(rand io.Reader) ([]DirNode, error) {
	route := make([]DirNode, 0, d.Layers)
	for l := 0; l < d.Layers; l++ {
		var in []DirNode
		for _, n := range d.Nodes {
			if n.Layer == l {
				in = append(in, n)
			}
		}
		if len(in) == 0 {
			return nil, fmt.Errorf("%w: layer %d is empty", ErrRoute, l)
		}
		i, err := randIntn(rand, len(in))
		if err != nil {
			return nil, err
		}
		route = append(route, in[i])
	}
	return route, nil
}

// randIntn returns a uniform integer in [0, n) read from rand.
func randIntn(rand io.Reader, n int) (int, error) {
	if n <= 1 {
		return 0, nil
	}
	limit := math.MaxUint64 - math.MaxUint64%uint64(n)
	var b [8]byte
	for {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return 0, fmt.Errorf("alknet/mix: random: %w", err)
		}
		v := binary.BigEndian.Uint64(b[:])
		if v < limit {
			return int(v % uint64(n)), nil
		}
	}
}

// ExpDelay draws a delay from the exponential distribution with the given
// mean, reading 8 bytes from rand.
func ExpDelay(rand io.Reader, mean time.Duration) (time.Duration, error) {
	if mean <= 0 {
		return 0, nil
	}
	var b [8]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return 0, fmt.Errorf("alknet/mix: random: %w", err)
	}
	// u is uniform in (0, 1]: 53 random bits, plus one.
	u := float64(binary.BigEndian.Uint64(b[:])>>11+1) / (1 << 53)
	d := -math.Log(u) * float64(mean)
	return time.Duration(min(d, float64(maxDelayField))), nil
}
