package core

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Addr is a node address: the pinned node id and a UDP host:port.
// Its text form is "<nodeid>@<host>:<port>".
type Addr struct {
	ID   NodeID
	Host string // host:port; IPv6 hosts in brackets
}

// String returns "<nodeid>@<host>:<port>".
func (a Addr) String() string { return a.ID.String() + "@" + a.Host }

// URL returns "alknet://<nodeid>@<host>:<port>/<path>".
func (a Addr) URL(path string) string {
	return "alknet://" + a.String() + "/" + strings.TrimPrefix(path, "/")
}

// ParseAddr parses "<nodeid>@<host>:<port>" (the node id in z-base-32 or hex)
// or the URL form "alknet://<nodeid>@<host>:<port>[/path]" (the path is
// ignored; use ParseURL to keep it).
func ParseAddr(s string) (Addr, error) {
	if strings.HasPrefix(s, "alknet://") {
		a, _, err := ParseURL(s)
		return a, err
	}
	return parseAddr(s)
}

func parseAddr(s string) (Addr, error) {
	idPart, hostPart, ok := strings.Cut(s, "@")
	if !ok {
		return Addr{}, fmt.Errorf("%w: %q: want <nodeid>@<host>:<port>", ErrInvalidAddr, s)
	}
	id, err := ParseNodeID(idPart)
	if err != nil {
		return Addr{}, fmt.Errorf("%w: %q: %v", ErrInvalidAddr, s, err)
	}
	host, port, err := net.SplitHostPort(hostPart)
	if err != nil {
		return Addr{}, fmt.Errorf("%w: %q: %v", ErrInvalidAddr, s, err)
	}
	if host == "" || strings.ContainsAny(host, "@/ \t\r\n") {
		return Addr{}, fmt.Errorf("%w: %q: bad host", ErrInvalidAddr, s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || strconv.FormatUint(p, 10) != port {
		return Addr{}, fmt.Errorf("%w: %q: bad port %q", ErrInvalidAddr, s, port)
	}
	return Addr{ID: id, Host: net.JoinHostPort(host, port)}, nil
}

// ParseURL parses "alknet://<nodeid>@<host>:<port>/<path>" and returns the
// address and the path (with its leading slash, "/" when absent).
func ParseURL(s string) (Addr, string, error) {
	rest, ok := strings.CutPrefix(s, "alknet://")
	if !ok {
		return Addr{}, "", fmt.Errorf("%w: %q: want alknet://<nodeid>@<host>:<port>/<path>", ErrInvalidAddr, s)
	}
	authority, path := rest, "/"
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	a, err := parseAddr(authority)
	if err != nil {
		return Addr{}, "", err
	}
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	return a, path, nil
}
