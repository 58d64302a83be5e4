package call

import (
	"context"

	"github.com/alkdev/alknet/core"
)

// Caller describes who made the call a handler is serving.
type Caller struct {
	// Identity is the subject of every access check: the direct caller's
	// identity from the peer table, or the identity of a valid auth_token.
	// Nil means anonymous.
	Identity *core.Identity
	// Node is the direct caller's node id (zero for in-process calls).
	Node core.NodeID
	// ByToken reports that Identity came from the request's auth_token.
	ByToken bool
	// ForwardedFor is the original caller a hub named when it forwarded the
	// call. It is information only: it never authorizes anything.
	ForwardedFor *ForwardedFor
}

func (c *Caller) subject() *core.Identity {
	if c == nil {
		return nil
	}
	return c.Identity
}

type callerKey struct{}

// CallerFromContext returns the caller of the call ctx belongs to, or nil
// outside a call.
func CallerFromContext(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// WithCaller returns ctx carrying c; Registry.Call then checks access
// against c. Servers set it for every call; tests and embedding programs
// use it to act as a given caller.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

type tokenKey struct{}

// WithAuthToken returns ctx whose outgoing calls (Peer.Call, Peer.Subscribe)
// carry token as auth_token. The callee then authorizes the token's
// identity instead of this node's.
func WithAuthToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, tokenKey{}, token)
}

func authTokenFrom(ctx context.Context) string {
	t, _ := ctx.Value(tokenKey{}).(string)
	return t
}
