package alkhttp

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/alkdev/alknet/core"
)

// CallerInfo is who made a request, as alknet knows it.
type CallerInfo struct {
	// Identity is the caller's identity: the identity of its bearer token
	// when it sent one, else the identity of its TLS client certificate
	// (a pinned peer). Nil means anonymous.
	Identity *core.Identity
	// Node is the key of the TLS client certificate; zero when the client
	// showed none (browsers, curl).
	Node core.NodeID
	// ByToken reports that Identity came from an Authorization: Bearer
	// token.
	ByToken bool
	// BadToken reports an Authorization header that names no known peer
	// (or is not a bearer token). Identity is then nil: a request with a
	// bad credential never falls back to the connection's identity.
	BadToken bool
}

// Anonymous reports whether the caller has no identity.
func (c CallerInfo) Anonymous() bool { return c.Identity == nil }

type callerKey struct{}

// WithCaller returns r carrying c as its caller, for tests and for
// programs that authenticate requests on their own; Caller then reports c.
func WithCaller(r *http.Request, c CallerInfo) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, &c))
}

// Caller reports who made r: the identity of its bearer token
// (Authorization: Bearer alk_..., resolved through Options.Identities),
// else the identity of the TLS client certificate of its connection, else
// anonymous. Outside a Server (or WithCaller) every request is anonymous.
func Caller(r *http.Request) CallerInfo {
	if c, ok := r.Context().Value(callerKey{}).(*CallerInfo); ok {
		return *c
	}
	ci := connInfoFrom(r.Context())
	var out CallerInfo
	if ci != nil {
		out.Node = ci.conn.RemoteID()
	}
	if auth, ok := r.Header["Authorization"]; ok {
		token, ok := bearerToken(auth)
		var ids core.IdentityProvider
		if ci != nil {
			ids = ci.s.opts.Identities
		}
		if !ok || ids == nil {
			out.BadToken = true
			return out
		}
		id, found := ids.IdentityByToken([]byte(token))
		if !found {
			out.BadToken = true
			return out
		}
		out.Identity, out.ByToken = id, true
		return out
	}
	if ci != nil {
		out.Identity = ci.conn.Identity()
	}
	return out
}

// maxTokenLen bounds the bearer token looked up (tokens are 36 bytes).
const maxTokenLen = 512

// bearerToken returns the token of a single "Bearer <token>" header.
func bearerToken(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxTokenLen {
		return "", false
	}
	return token, true
}

// Require returns a handler that lets through only callers acl allows
// (checked against Caller(r).Identity) and answers the others with 401
// (no identity: no credential, an unknown key or a bad token; with
// WWW-Authenticate) or 403 (an identity acl refuses), with an error
// object as the body: {"code":"FORBIDDEN","message":...}.
func Require(acl core.AccessControl, h http.Handler) http.Handler {
	if acl.IsOpen() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := Caller(r)
		if err := acl.Check(c.Identity); err != nil {
			writeDenied(w, r, c, err.Error())
			return
		}
		h.ServeHTTP(w, r)
	})
}

// writeDenied answers a refused request: 401 with a challenge when the
// caller has no identity, else 403.
func writeDenied(w http.ResponseWriter, r *http.Request, c CallerInfo, reason string) {
	if c.Identity == nil {
		challenge := `Bearer realm="alknet"`
		if c.BadToken {
			challenge += `, error="invalid_token"`
			reason = "invalid bearer token"
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeError(w, r, http.StatusUnauthorized, "FORBIDDEN", reason)
		return
	}
	writeError(w, r, http.StatusForbidden, "FORBIDDEN", reason)
}

// errorBody is the call error object, the body of every error answer.
type errorBody struct {
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	Retryable bool            `json:"retryable"`
	Details   json.RawMessage `json:"details,omitempty"`
}

// writeError answers with status and an error object.
func writeError(w http.ResponseWriter, _ *http.Request, status int, code, message string) {
	writeJSON(w, status, errorBody{Code: code, Message: message, Retryable: code == "TIMEOUT" || code == "UNAVAILABLE"})
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"code":"INTERNAL","message":"internal error","retryable":false}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// marshal encodes v as JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

// identitiesOf returns the IdentityProvider of the Server r came through.
func identitiesOf(r *http.Request) core.IdentityProvider {
	if ci := connInfoFrom(r.Context()); ci != nil {
		return ci.s.opts.Identities
	}
	return nil
}
