package ssh

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

func TestParsePayloads(t *testing.T) {
	ok := gossh.Marshal(directPayload{"localhost", 22, "127.0.0.1", 5000})
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"valid", ok, true},
		{"empty", nil, false},
		{"truncated", ok[:len(ok)-2], false},
		{"trailing", append(append([]byte{}, ok...), 0), false},
		{"length past end", []byte{0, 0, 1, 0, 'a'}, false},
		{"port 0", gossh.Marshal(directPayload{"localhost", 0, "", 0}), false},
		{"port 65536", gossh.Marshal(directPayload{"localhost", 65536, "", 0}), false},
		{"empty host", gossh.Marshal(directPayload{"", 22, "", 0}), false},
		{"long host", gossh.Marshal(directPayload{strings.Repeat("a", 256), 22, "", 0}), false},
		{"nul in host", gossh.Marshal(directPayload{"local\x00host", 22, "", 0}), false},
	} {
		_, err := parseDirect(tc.in)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadRequest)) {
			t.Errorf("direct %s: %v", tc.name, err)
		}
	}
	fwd := gossh.Marshal(forwardPayload{"", 0})
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"any address, port 0", fwd, true},
		{"loopback", gossh.Marshal(forwardPayload{"127.0.0.1", 8080}), true},
		{"empty", nil, false},
		{"truncated", fwd[:6], false},
		{"trailing", append(append([]byte{}, fwd...), 1, 2), false},
		{"port 65536", gossh.Marshal(forwardPayload{"", 65536}), false},
		{"long addr", gossh.Marshal(forwardPayload{strings.Repeat("a", 256), 1}), false},
		{"newline in addr", gossh.Marshal(forwardPayload{"a\nb", 1}), false},
	} {
		_, err := parseForward(tc.in)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadRequest)) {
			t.Errorf("forward %s: %v", tc.name, err)
		}
	}
}

// FuzzParseDirect checks that an accepted direct-tcpip payload is exactly
// its four fields (it re-encodes to the same bytes) within the limits.
func FuzzParseDirect(f *testing.F) {
	f.Add(gossh.Marshal(directPayload{"localhost", 22, "127.0.0.1", 5000}))
	f.Add(gossh.Marshal(directPayload{"::1", 65535, "", 0}))
	f.Add([]byte{0, 0, 0, 1, 'a', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseDirect(b)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error not ErrBadRequest: %v", err)
			}
			return
		}
		if p.Host == "" || len(p.Host) > maxHostLen || p.Port == 0 || p.Port > 65535 {
			t.Fatalf("accepted out of limits: %+v", p)
		}
		if enc := gossh.Marshal(p); !bytes.Equal(enc, b) {
			t.Fatalf("accepted %x, which re-encodes as %x", b, enc)
		}
	})
}

// FuzzParseForward is FuzzParseDirect for tcpip-forward payloads.
func FuzzParseForward(f *testing.F) {
	f.Add(gossh.Marshal(forwardPayload{"", 0}))
	f.Add(gossh.Marshal(forwardPayload{"localhost", 8080}))
	f.Add(gossh.Marshal(forwardPayload{"::1%lo", 65535}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseForward(b)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error not ErrBadRequest: %v", err)
			}
			return
		}
		if len(p.Addr) > maxHostLen || p.Port > 65535 {
			t.Fatalf("accepted out of limits: %+v", p)
		}
		if enc := gossh.Marshal(p); !bytes.Equal(enc, b) {
			t.Fatalf("accepted %x, which re-encodes as %x", b, enc)
		}
	})
}
