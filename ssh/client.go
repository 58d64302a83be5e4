package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/user"
	"time"

	"github.com/alkdev/alknet/core"
	gossh "golang.org/x/crypto/ssh"
)

// HalfCloser is a byte stream that can end its write side alone: an SSH
// channel, a TCP connection, a core.Stream.
type HalfCloser interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
	CloseWrite() error
}

// NewClient runs an SSH client over a new stream of conn, which must have
// negotiated ALPN. It authenticates with key and accepts only the host key
// that is conn's node id, which the QUIC handshake has already verified. The
// handshake is bounded by ctx. user is recorded by the server and grants
// nothing; empty means the local user name.
func NewClient(ctx context.Context, conn core.Conn, key core.SecretKey, user string) (*gossh.Client, error) {
	signer, err := gossh.NewSignerFromKey(key.PrivateKey())
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	host, err := gossh.NewPublicKey(conn.RemoteID().PublicKey())
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	if user == "" {
		user = localUser()
	}
	st, err := conn.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Unix(1, 0)) })
	cc, chans, reqs, err := gossh.NewClientConn(st, conn.RemoteID().String(), &gossh.ClientConfig{
		User:              user,
		Auth:              []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback:   gossh.FixedHostKey(host),
		HostKeyAlgorithms: []string{gossh.KeyAlgoED25519},
		ClientVersion:     "SSH-2.0-alknet",
	})
	stop()
	if err != nil {
		_ = st.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ssh handshake: %w", err)
	}
	_ = st.SetDeadline(time.Time{})
	return gossh.NewClient(cc, chans, reqs), nil
}

func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "alknet"
}

// DialTCP opens a direct-tcpip channel through c to host:port. host may be
// a name, which the server resolves (unlike gossh.Client.Dial, which
// resolves it locally).
func DialTCP(ctx context.Context, c *gossh.Client, host string, port uint16) (gossh.Channel, error) {
	type result struct {
		ch  gossh.Channel
		err error
	}
	res := make(chan result, 1)
	go func() {
		ch, reqs, err := c.OpenChannel("direct-tcpip", gossh.Marshal(directPayload{
			Host: host, Port: uint32(port), OrigHost: "127.0.0.1", OrigPort: 0,
		}))
		if err == nil {
			go gossh.DiscardRequests(reqs)
		}
		res <- result{ch, err}
	}()
	select {
	case r := <-res:
		return r.ch, r.err
	case <-ctx.Done():
		go func() {
			if r := <-res; r.ch != nil {
				_ = r.ch.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// Join copies between a and b in both directions until both are done,
// passing each end of stream on as a half-close, then closes both. It is
// what every forwarder does with an accepted connection and its channel.
func Join(a, b HalfCloser) { join(a, b) }

// AsHalfCloser returns c when it has CloseWrite (a TCP connection does), or
// a wrapper whose CloseWrite closes c.
func AsHalfCloser(c net.Conn) HalfCloser { return asHalfCloser(c) }

// IsRefused reports whether err is the server refusing a channel for policy
// (a missing scope or a destination outside the allowlist).
func IsRefused(err error) bool {
	var oe *gossh.OpenChannelError
	return errors.As(err, &oe) && oe.Reason == gossh.Prohibited
}
