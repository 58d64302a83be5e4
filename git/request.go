package git

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Services a request may name.
const (
	UploadPack  = "git-upload-pack"  // fetch and clone
	ReceivePack = "git-receive-pack" // push
)

// DefaultMaxRequestLine is the request line limit when Config.MaxRequestLine
// is zero: the pkt-line as a whole, its four length digits included.
const DefaultMaxRequestLine = 4096

// Request is the first pkt-line of a stream, as git-daemon frames it:
//
//	git-upload-pack /name.git\0host=example.com\0\0version=2\0
type Request struct {
	Service string   // UploadPack or ReceivePack
	Path    string   // as sent, e.g. "/team/alpha.git"
	Host    string   // the host= parameter; empty when absent
	Extra   []string // extra parameters, e.g. "version=2"
}

// Protocol returns the extra parameters joined by ':' as git passes them in
// GIT_PROTOCOL ("version=2").
func (r Request) Protocol() string { return strings.Join(r.Extra, ":") }

// Encode returns the request as one pkt-line.
func (r Request) Encode() []byte {
	var b bytes.Buffer
	b.WriteString(r.Service)
	b.WriteByte(' ')
	b.WriteString(r.Path)
	b.WriteByte(0)
	if r.Host != "" {
		b.WriteString("host=" + r.Host)
		b.WriteByte(0)
	}
	if len(r.Extra) > 0 {
		b.WriteByte(0)
		for _, e := range r.Extra {
			b.WriteString(e)
			b.WriteByte(0)
		}
	}
	return pktLine(b.Bytes())
}

// pktLine frames payload as one pkt-line.
func pktLine(payload []byte) []byte {
	out := make([]byte, 0, len(payload)+4)
	out = fmt.Appendf(out, "%04x", len(payload)+4)
	return append(out, payload...)
}

// errLine is the pkt-line "ERR <msg>\n" that git prints as
// "fatal: remote error: <msg>".
func errLine(msg string) []byte {
	return pktLine([]byte("ERR " + oneLine(msg) + "\n"))
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

// ReadRequest reads one request pkt-line from r. It reads no byte past the
// line's end, so r may go on to carry the pack protocol. max bounds the
// whole pkt-line (0 means DefaultMaxRequestLine).
func ReadRequest(r *bufio.Reader, max int) (Request, error) {
	if max <= 0 {
		max = DefaultMaxRequestLine
	}
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
	if err != nil {
		return Request{}, fmt.Errorf("%w: bad pkt-line length %q", ErrBadRequest, hdr[:])
	}
	if n <= 4 {
		return Request{}, fmt.Errorf("%w: empty pkt-line", ErrBadRequest)
	}
	if int(n) > max {
		return Request{}, fmt.Errorf("%w: %d bytes, limit %d", ErrRequestTooLong, n, max)
	}
	payload := make([]byte, n-4)
	if _, err := io.ReadFull(r, payload); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return ParseRequest(payload)
}

// ParseRequest parses the payload of a request pkt-line (without its four
// length digits).
func ParseRequest(p []byte) (Request, error) {
	s := string(p)
	// git-daemon tolerates a trailing newline after the path when no
	// parameter follows.
	cmd, rest, hasNUL := strings.Cut(s, "\x00")
	if !hasNUL {
		cmd = strings.TrimSuffix(cmd, "\n")
	}
	svc, path, ok := strings.Cut(cmd, " ")
	if !ok {
		return Request{}, fmt.Errorf("%w: no path", ErrBadRequest)
	}
	if svc != UploadPack && svc != ReceivePack {
		return Request{}, fmt.Errorf("%w: %q", ErrBadService, svc)
	}
	if path == "" || strings.ContainsAny(path, "\n") {
		return Request{}, fmt.Errorf("%w: bad path", ErrBadRequest)
	}
	req := Request{Service: svc, Path: path}
	if !hasNUL {
		return req, nil
	}
	// rest: [host=H\0] [\0 (param\0)*]
	if h, after, ok := strings.Cut(rest, "\x00"); ok && strings.HasPrefix(h, "host=") {
		req.Host = strings.TrimPrefix(h, "host=")
		rest = after
	}
	if rest == "" {
		return req, nil
	}
	if rest[0] != 0 {
		return Request{}, fmt.Errorf("%w: bad parameters", ErrBadRequest)
	}
	rest = rest[1:]
	for rest != "" {
		param, after, ok := strings.Cut(rest, "\x00")
		if !ok {
			return Request{}, fmt.Errorf("%w: unterminated parameter", ErrBadRequest)
		}
		if param != "" {
			req.Extra = append(req.Extra, param)
		}
		rest = after
	}
	return req, nil
}

// ParseCommand parses the command line an ssh client sends for git:
// "git-upload-pack '/name.git'" (also "git upload-pack", and without
// quotes). It returns ok=false for anything else, so that the caller can
// leave the command to the system.
func ParseCommand(cmd string) (service, repoPath string, ok bool) {
	svc, arg, found := strings.Cut(strings.TrimSpace(cmd), " ")
	if !found {
		return "", "", false
	}
	arg = strings.TrimSpace(arg)
	if svc == "git" {
		sub, rest, found := strings.Cut(arg, " ")
		if !found {
			return "", "", false
		}
		svc, arg = "git-"+sub, strings.TrimSpace(rest)
	}
	if svc != UploadPack && svc != ReceivePack {
		return "", "", false
	}
	if len(arg) >= 2 && arg[0] == '\'' && arg[len(arg)-1] == '\'' {
		arg = arg[1 : len(arg)-1]
		if strings.Contains(arg, "'") {
			return "", "", false // shell quoting we do not unpick
		}
	} else if strings.ContainsAny(arg, " '\"\\$`;|&<>") {
		return "", "", false
	}
	if arg == "" {
		return "", "", false
	}
	return svc, arg, true
}
