package git

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Request
		err  error
	}{
		{"upload", "git-upload-pack /a.git\x00host=h:1\x00", Request{Service: UploadPack, Path: "/a.git", Host: "h:1"}, nil},
		{"v2", "git-upload-pack /a.git\x00host=h\x00\x00version=2\x00", Request{Service: UploadPack, Path: "/a.git", Host: "h", Extra: []string{"version=2"}}, nil},
		{"no host v2", "git-receive-pack /t/b.git\x00\x00version=2\x00", Request{Service: ReceivePack, Path: "/t/b.git", Extra: []string{"version=2"}}, nil},
		{"bare path newline", "git-upload-pack /a.git\n", Request{Service: UploadPack, Path: "/a.git"}, nil},
		{"archive", "git-upload-archive /a.git\x00", Request{}, ErrBadService},
		{"no path", "git-upload-pack\x00", Request{}, ErrBadRequest},
		{"empty path", "git-upload-pack \x00", Request{}, ErrBadRequest},
		{"unterminated extra", "git-upload-pack /a.git\x00host=h\x00\x00version=2", Request{}, ErrBadRequest},
		{"junk after host", "git-upload-pack /a.git\x00host=h\x00x\x00", Request{}, ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequest([]byte(tt.in))
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.True(t, strings.HasPrefix(err.Error(), "alknet/git: "), err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReadRequestFraming(t *testing.T) {
	req := Request{Service: ReceivePack, Path: "/team/a.git", Host: "example.com:4433", Extra: []string{"version=2"}}
	wire := req.Encode()
	// The exact bytes git-daemon reads (see SPEC.md).
	assert.Equal(t, "0042git-receive-pack /team/a.git\x00host=example.com:4433\x00\x00version=2\x00", string(wire))
	br := bufio.NewReader(bytes.NewReader(append(wire, "0000PACK"...)))
	got, err := ReadRequest(br, 0)
	require.NoError(t, err)
	assert.Equal(t, req, got)
	rest := make([]byte, 8)
	n, _ := br.Read(rest)
	assert.Equal(t, "0000PACK", string(rest[:n]), "nothing past the request line is consumed")
	assert.Equal(t, "version=2", got.Protocol())
}

func TestReadRequestLimits(t *testing.T) {
	long := Request{Service: UploadPack, Path: "/" + strings.Repeat("a", 200) + ".git"}.Encode()
	_, err := ReadRequest(bufio.NewReader(bytes.NewReader(long)), 100)
	require.ErrorIs(t, err, ErrRequestTooLong)
	assert.Contains(t, err.Error(), "limit 100")
	for _, in := range []string{"", "00", "zzzz", "0000", "0004", "0010git-up"} {
		_, err := ReadRequest(bufio.NewReader(strings.NewReader(in)), 0)
		require.ErrorIs(t, err, ErrBadRequest, "%q", in)
	}
}

func TestErrLine(t *testing.T) {
	assert.Equal(t, "0014ERR alknet: x y\n", string(errLine("alknet: x\ny")))
}

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in, svc, path string
		ok            bool
	}{
		{"git-upload-pack '/a.git'", UploadPack, "/a.git", true},
		{"git-receive-pack 'team/a.git'", ReceivePack, "team/a.git", true},
		{"git upload-pack '/a.git'", UploadPack, "/a.git", true},
		{"git-upload-pack a.git", UploadPack, "a.git", true},
		{"git-upload-archive '/a.git'", "", "", false},
		{"git-upload-pack 'a'\\''b.git'", "", "", false},
		{"git-upload-pack a.git; rm -rf /", "", "", false},
		{"ls -l", "", "", false},
		{"git-upload-pack", "", "", false},
		{"git-upload-pack ''", "", "", false},
	}
	for _, tt := range tests {
		svc, p, ok := ParseCommand(tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		assert.Equal(t, tt.svc, svc, tt.in)
		assert.Equal(t, tt.path, p, tt.in)
	}
}

// FuzzParseRequest checks that the request parser never reads past the
// declared pkt-line, respects the limit, and that whatever it accepts
// encodes back to a line that parses to the same request.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("0032git-upload-pack /a.git\x00host=h\x00\x00version=2\x00"))
	f.Add([]byte("001fgit-receive-pack /t/b.git\x00"))
	f.Add([]byte("0015git-upload-pack /x\n"))
	f.Add([]byte("ffffgit-upload-pack"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 256
		br := bufio.NewReader(bytes.NewReader(data))
		req, err := ReadRequest(br, limit)
		if err != nil {
			return
		}
		consumed := len(data) - br.Buffered()
		if consumed > limit {
			t.Fatalf("consumed %d bytes, limit %d", consumed, limit)
		}
		if req.Service != UploadPack && req.Service != ReceivePack {
			t.Fatalf("accepted service %q", req.Service)
		}
		again, err := ReadRequest(bufio.NewReader(bytes.NewReader(req.Encode())), 0)
		if err != nil {
			t.Fatalf("re-encoded request does not parse: %v", err)
		}
		if again.Service != req.Service || again.Path != req.Path || again.Host != req.Host || again.Protocol() != req.Protocol() {
			t.Fatalf("round trip: %+v != %+v", again, req)
		}
	})
}
