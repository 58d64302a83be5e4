package ssh

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// SOCKS5 constants (RFC 1928).
const (
	socksVersion = 5

	SOCKSConnect      byte = 1
	SOCKSBind         byte = 2
	SOCKSUDPAssociate byte = 3

	socksAtypIPv4   = 1
	socksAtypDomain = 3
	socksAtypIPv6   = 4

	socksMethodNone         = 0x00
	socksMethodUnacceptable = 0xff
)

// SOCKS5 reply codes.
const (
	SOCKSSucceeded          byte = 0x00
	SOCKSGeneralFailure     byte = 0x01
	SOCKSNotAllowed         byte = 0x02
	SOCKSNetworkUnreachable byte = 0x03
	SOCKSHostUnreachable    byte = 0x04
	SOCKSConnectionRefused  byte = 0x05
	SOCKSCommandUnsupported byte = 0x07
	SOCKSAddressUnsupported byte = 0x08
)

// SOCKSRequest is a SOCKS5 request: a command and a destination given as
// either an IP address or a domain name.
type SOCKSRequest struct {
	Cmd    byte
	IP     netip.Addr // set for address types IPv4 and IPv6
	Domain string     // set for address type domain (1..255 bytes)
	Port   uint16
}

// Host is the destination host: the domain, or the IP's text.
func (r SOCKSRequest) Host() string {
	if r.Domain != "" {
		return r.Domain
	}
	return r.IP.String()
}

// ReadSOCKSGreeting reads the client's method selection message and
// reports whether it offers "no authentication required". At most 257
// bytes are read.
func ReadSOCKSGreeting(r io.Reader) (noAuth bool, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return false, fmt.Errorf("%w: greeting: %v", ErrSOCKS, err)
	}
	if hdr[0] != socksVersion {
		return false, fmt.Errorf("%w: version %d", ErrSOCKS, hdr[0])
	}
	if hdr[1] == 0 {
		return false, fmt.Errorf("%w: no methods", ErrSOCKS)
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return false, fmt.Errorf("%w: greeting: %v", ErrSOCKS, err)
	}
	for _, m := range methods {
		if m == socksMethodNone {
			return true, nil
		}
	}
	return false, nil
}

// ReadSOCKSRequest reads one request. It reads exactly the request's
// declared length (at most 262 bytes) and nothing more.
func ReadSOCKSRequest(r io.Reader) (SOCKSRequest, error) {
	var req SOCKSRequest
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return req, fmt.Errorf("%w: request: %v", ErrSOCKS, err)
	}
	if hdr[0] != socksVersion {
		return req, fmt.Errorf("%w: version %d", ErrSOCKS, hdr[0])
	}
	if hdr[2] != 0 {
		return req, fmt.Errorf("%w: reserved byte %d", ErrSOCKS, hdr[2])
	}
	req.Cmd = hdr[1]
	var addr []byte
	switch hdr[3] {
	case socksAtypIPv4:
		addr = make([]byte, 4)
	case socksAtypIPv6:
		addr = make([]byte, 16)
	case socksAtypDomain:
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return req, fmt.Errorf("%w: request: %v", ErrSOCKS, err)
		}
		if n[0] == 0 {
			return req, fmt.Errorf("%w: empty domain", ErrSOCKS)
		}
		addr = make([]byte, n[0])
	default:
		return req, fmt.Errorf("%w: address type %d", ErrSOCKSUnsupported, hdr[3])
	}
	if _, err := io.ReadFull(r, addr); err != nil {
		return req, fmt.Errorf("%w: request: %v", ErrSOCKS, err)
	}
	var port [2]byte
	if _, err := io.ReadFull(r, port[:]); err != nil {
		return req, fmt.Errorf("%w: request: %v", ErrSOCKS, err)
	}
	req.Port = binary.BigEndian.Uint16(port[:])
	switch hdr[3] {
	case socksAtypIPv4:
		req.IP = netip.AddrFrom4([4]byte(addr))
	case socksAtypIPv6:
		req.IP = netip.AddrFrom16([16]byte(addr))
	default:
		req.Domain = string(addr)
	}
	return req, nil
}

// AppendSOCKSRequest appends the wire form of req to b. It is the inverse
// of ReadSOCKSRequest; a domain longer than 255 bytes is truncated.
func AppendSOCKSRequest(b []byte, req SOCKSRequest) []byte {
	b = append(b, socksVersion, req.Cmd, 0)
	switch {
	case req.Domain != "":
		d := req.Domain
		if len(d) > 255 {
			d = d[:255]
		}
		b = append(b, socksAtypDomain, byte(len(d)))
		b = append(b, d...)
	case req.IP.Is4():
		a := req.IP.As4()
		b = append(b, socksAtypIPv4)
		b = append(b, a[:]...)
	default:
		a := req.IP.As16()
		b = append(b, socksAtypIPv6)
		b = append(b, a[:]...)
	}
	return binary.BigEndian.AppendUint16(b, req.Port)
}

// writeSOCKSReply sends a reply with an all-zero bound address: the
// connection is carried over SSH, so no local address means anything.
func writeSOCKSReply(w io.Writer, code byte) error {
	_, err := w.Write([]byte{socksVersion, code, 0, socksAtypIPv4, 0, 0, 0, 0, 0, 0})
	return err
}

// SOCKSServer is a SOCKS5 server (RFC 1928: no authentication, CONNECT,
// IPv4, IPv6 and domain names) that hands each connection to Dial, such as
// a direct-tcpip channel of an SSH connection. Domain names are passed to
// Dial unresolved.
type SOCKSServer struct {
	// Dial connects to host:port. A *gossh.OpenChannelError or
	// ErrDestinationDenied picks the SOCKS reply code.
	Dial func(ctx context.Context, host string, port uint16) (HalfCloser, error)
	// Logger receives one line per refused or failed request, without the
	// destination. Nil is silent.
	Logger *slog.Logger
	// HandshakeTimeout bounds reading the greeting and the request. Zero
	// means 10s.
	HandshakeTimeout time.Duration
}

// Serve accepts SOCKS clients on ln until ctx is cancelled or ln fails,
// then closes ln and every open connection and waits for them.
func (s *SOCKSServer) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.ServeConn(ctx, c)
		}()
	}
}

// ServeConn serves one SOCKS client connection and closes it.
func (s *SOCKSServer) ServeConn(ctx context.Context, c net.Conn) error {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	noAuth, err := ReadSOCKSGreeting(c)
	if err != nil {
		_ = c.Close()
		return err
	}
	if !noAuth {
		_, _ = c.Write([]byte{socksVersion, socksMethodUnacceptable})
		_ = c.Close()
		return fmt.Errorf("%w: client offers no acceptable method", ErrSOCKSUnsupported)
	}
	if _, err := c.Write([]byte{socksVersion, socksMethodNone}); err != nil {
		_ = c.Close()
		return err
	}
	req, err := ReadSOCKSRequest(c)
	if err != nil {
		if errors.Is(err, ErrSOCKSUnsupported) {
			_ = writeSOCKSReply(c, SOCKSAddressUnsupported)
		}
		_ = c.Close()
		return err
	}
	if req.Cmd != SOCKSConnect {
		_ = writeSOCKSReply(c, SOCKSCommandUnsupported)
		_ = c.Close()
		return fmt.Errorf("%w: command %d", ErrSOCKSUnsupported, req.Cmd)
	}
	_ = c.SetDeadline(time.Time{})
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	remote, err := s.Dial(dctx, req.Host(), req.Port)
	cancel()
	if err != nil {
		code := socksCode(err)
		log.Info("socks connect failed", "code", code)
		_ = writeSOCKSReply(c, code)
		_ = c.Close()
		return err
	}
	if err := writeSOCKSReply(c, SOCKSSucceeded); err != nil {
		_ = remote.Close()
		_ = c.Close()
		return err
	}
	join(asHalfCloser(c), remote)
	return nil
}

// socksCode maps a dial error to a SOCKS5 reply code.
func socksCode(err error) byte {
	var oe *gossh.OpenChannelError
	switch {
	case errors.Is(err, ErrDestinationDenied):
		return SOCKSNotAllowed
	case errors.As(err, &oe) && oe.Reason == gossh.Prohibited:
		return SOCKSNotAllowed
	case errors.As(err, &oe) && oe.Reason == gossh.ConnectionFailed:
		return SOCKSConnectionRefused
	default:
		return SOCKSGeneralFailure
	}
}
