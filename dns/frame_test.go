package dns

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadQuery(t *testing.T) {
	msg := bytes.Repeat([]byte{0xab}, 300)
	framed := AppendMessage(nil, msg)
	require.Equal(t, []byte{0x01, 0x2c}, framed[:2])

	got, err := ReadQuery(bytes.NewReader(framed), 4096)
	require.NoError(t, err)
	assert.Equal(t, msg, got)

	cases := []struct {
		name  string
		in    []byte
		limit int
		want  error
	}{
		{"over the limit", framed, 299, ErrFrameTooLarge},
		{"FIN inside the message", framed[:100], 4096, ErrShortFrame},
		{"FIN inside the prefix", framed[:1], 4096, ErrShortFrame},
		{"FIN before anything", nil, 4096, ErrShortFrame},
		{"two messages", append(bytes.Clone(framed), framed...), 4096, ErrTrailingData},
		{"one trailing byte", append(bytes.Clone(framed), 0), 4096, ErrTrailingData},
		{"empty message", []byte{0, 0}, 4096, ErrEmptyFrame},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadQuery(bytes.NewReader(c.in), c.limit)
			assert.ErrorIs(t, err, c.want)
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadMessageOverLimitReadsNoBody(t *testing.T) {
	// A length over the limit fails before the body is read.
	in := append([]byte{0xff, 0xff}, bytes.Repeat([]byte{1}, 65535)...)
	cr := &countingReader{r: bytes.NewReader(in)}
	_, err := ReadMessage(cr, 512)
	require.ErrorIs(t, err, ErrFrameTooLarge)
	assert.Equal(t, 2, cr.n)
	assert.Contains(t, err.Error(), "65535 bytes (limit 512)")
}

// FuzzReadQuery checks the DoQ framing of one stream: a query is accepted
// exactly when the stream is one 2-byte length, that many bytes (1 to the
// limit) and nothing else; re-framing it gives the input back.
func FuzzReadQuery(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 3}, uint16(512))
	f.Add([]byte{0, 3, 1, 2}, uint16(512))
	f.Add([]byte{0, 3, 1, 2, 3, 4}, uint16(512))
	f.Add([]byte{0xff, 0xff}, uint16(512))
	f.Add([]byte{0, 0}, uint16(512))
	f.Add([]byte{0}, uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		got, err := ReadQuery(bytes.NewReader(in), int(limit))
		valid := len(in) >= 2 && int(in[0])<<8|int(in[1]) == len(in)-2 && len(in) > 2 && len(in)-2 <= int(limit)
		if err != nil {
			if valid {
				t.Fatalf("valid frame refused: %v", err)
			}
			if !errors.Is(err, ErrShortFrame) && !errors.Is(err, ErrTrailingData) && !errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, ErrEmptyFrame) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !valid {
			t.Fatalf("invalid frame accepted: %x", in)
		}
		if !bytes.Equal(AppendMessage(nil, got), in) {
			t.Fatalf("round trip differs")
		}
	})
}

// FuzzDoQQuery checks what the server does with the message of a DoQ
// stream: it is refused exactly when it is not a query with ID 0 (or
// carries edns-tcp-keepalive); an accepted one gets an answer with ID 0, the
// same question, at most 65535 bytes, padded to 468-byte blocks when the
// query had EDNS(0).
func FuzzDoQQuery(f *testing.F) {
	for _, q := range []*mdns.Msg{
		query("www.example.test", mdns.TypeA, true),
		query("nope.example.test", mdns.TypeAAAA, false),
		query("x.wild.example.test", mdns.TypeANY, true),
		query("big.example.test", mdns.TypeTXT, true),
	} {
		q.Id = 0
		b, _ := q.Pack()
		f.Add(b)
	}
	srv, err := NewServer(Config{Handler: NewResolver(mustZones(f, bigZone(), "example.test."), nil)})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, wire []byte) {
		q, err := unpackDoQQuery(wire)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrNonZeroID) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if q.Id != 0 || q.Response {
			t.Fatalf("accepted id %d response %v", q.Id, q.Response)
		}
		resp := srv.answer(context.Background(), &Request{Msg: q, Transport: TransportDoQ})
		out, err := packDoQ(resp)
		if err != nil {
			return // a question that cannot be echoed (miekg refuses to pack it)
		}
		if len(out) > MaxMessageSize {
			t.Fatalf("answer of %d bytes", len(out))
		}
		back := new(mdns.Msg)
		if err := back.Unpack(out); err != nil {
			t.Fatalf("answer does not unpack: %v", err)
		}
		if back.Id != 0 || !back.Response {
			t.Fatalf("answer id %d response %v", back.Id, back.Response)
		}
		if len(q.Question) == 1 && (len(back.Question) != 1 || back.Question[0] != q.Question[0]) {
			t.Fatalf("question %v answered as %v", q.Question, back.Question)
		}
		if q.IsEdns0() != nil && len(out)%paddingBlock != 0 && len(out)+paddingBlock < MaxMessageSize {
			t.Fatalf("EDNS(0) answer of %d bytes is not padded", len(out))
		}
	})
}
