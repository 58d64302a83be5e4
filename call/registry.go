package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/alkdev/alknet/core"
	"github.com/google/jsonschema-go/jsonschema"
)

// Kind says how an operation answers.
type Kind string

const (
	// KindQuery reads and answers once.
	KindQuery Kind = "query"
	// KindMutation changes state and answers once.
	KindMutation Kind = "mutation"
	// KindSubscription answers with any number of items, then call.completed.
	KindSubscription Kind = "subscription"
)

// Visibility says who may call an operation.
type Visibility string

const (
	// External operations are listed and callable from the wire.
	External Visibility = "external"
	// Internal operations are callable only in-process through
	// Registry.Call; from the wire they do not exist (NOT_FOUND).
	Internal Visibility = "internal"
)

// Options describe an operation beyond its name and types.
type Options struct {
	// Description is shown by services/list and services/schema.
	Description string
	// Visibility defaults to External.
	Visibility Visibility
	// Access gates the operation. It is checked against the direct caller's
	// identity, or the identity of a valid auth_token; never against
	// forwarded_for. The zero value allows anyone the ALPN gate let in.
	Access core.AccessControl
	// Errors lists the codes beyond the standard ones that the operation may
	// return. A handler error with an undeclared code reaches the caller as
	// INTERNAL.
	Errors []string
	// Timeout bounds one call. Zero means the server's Config.CallTimeout
	// for queries and mutations and none for subscriptions; negative means
	// none.
	Timeout time.Duration
}

// Access is the wire form of an operation's AccessControl.
type Access struct {
	RequiredScopes []string `json:"requiredScopes,omitempty"`
	AnyScopes      []string `json:"anyScopes,omitempty"`
	ResourceType   string   `json:"resourceType,omitempty"`
	ResourceAction string   `json:"resourceAction,omitempty"`
}

func accessOf(a core.AccessControl) *Access {
	if a.IsOpen() {
		return nil
	}
	return &Access{RequiredScopes: a.RequiredScopes, AnyScopes: a.AnyScopes, ResourceType: a.ResourceType, ResourceAction: a.ResourceAction}
}

func (a *Access) control() core.AccessControl {
	if a == nil {
		return core.AccessControl{}
	}
	return core.AccessControl{RequiredScopes: a.RequiredScopes, AnyScopes: a.AnyScopes, ResourceType: a.ResourceType, ResourceAction: a.ResourceAction}
}

// Spec is the full description of an operation, as services/schema returns
// it. Input and Output are JSON Schemas (draft 2020-12) derived from the Go
// types.
type Spec struct {
	Name        string             `json:"name"`
	Kind        Kind               `json:"kind"`
	Visibility  Visibility         `json:"visibility"`
	Description string             `json:"description,omitempty"`
	Errors      []string           `json:"errors,omitempty"`
	Access      *Access            `json:"access,omitempty"`
	Input       *jsonschema.Schema `json:"input,omitempty"`
	Output      *jsonschema.Schema `json:"output,omitempty"`
}

// Summary is one entry of services/list.
type Summary struct {
	Name        string  `json:"name"`
	Kind        Kind    `json:"kind"`
	Description string  `json:"description,omitempty"`
	Access      *Access `json:"access,omitempty"`
}

// handlerFunc runs one call: it decodes raw input and calls emit once per
// output (once for queries and mutations).
type handlerFunc func(ctx context.Context, input json.RawMessage, emit func(any) error) error

type entry struct {
	spec       Spec
	acl        core.AccessControl
	timeout    time.Duration
	declared   map[string]bool
	validator  *jsonschema.Resolved // nil: no validation (imported operations)
	fast       *fastSchema          // nil: always the full validator
	nullObject bool                 // null or missing input means {}
	fn         handlerFunc
	owner      any                 // who may remove it (the hub that imported it); nil = permanent
	gate       *core.AccessControl // a hub's own gate on an imported operation, checked before acl
}

// allowed checks id against the operation's gates: the importing hub's
// own, then the operation's access.
func (e *entry) allowed(id *core.Identity) error {
	if e.gate != nil {
		if err := e.gate.Check(id); err != nil {
			return err
		}
	}
	return e.acl.Check(id)
}

// Registry holds the operations a node serves. It is safe for concurrent
// use; operations may be added and removed while serving.
type Registry struct {
	mu      sync.RWMutex
	ops     map[string]*entry
	log     *slog.Logger
	metrics atomic.Pointer[metricsBox] // see SetMetrics
}

// NewRegistry returns a registry holding the discovery operations
// services/list and services/schema. logger receives handler panics and
// undeclared error codes; nil is silent.
func NewRegistry(logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{ops: make(map[string]*entry), log: logger}
	Query(r, "services/list", r.list, Options{Description: "Operations the caller may use."})
	Query(r, "services/schema", r.schema, Options{Description: "The full description of one operation, with its input and output JSON Schemas.", Errors: nil})
	return r
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+$`)

// ValidName reports whether name is a registry name: two or more
// slash-separated segments of letters, digits, '_', '.', '-', with no
// leading slash ("ns/op").
func ValidName(name string) bool { return len(name) <= 256 && nameRE.MatchString(name) }

// Query registers a query. It panics when name is invalid or taken or the
// types have no JSON Schema (programmer errors, like http.ServeMux).
func Query[In, Out any](r *Registry, name string, fn func(context.Context, In) (Out, error), opts Options) {
	mustRegister[In, Out](r, name, KindQuery, opts, unary(fn))
}

// Mutation registers a mutation; see Query.
func Mutation[In, Out any](r *Registry, name string, fn func(context.Context, In) (Out, error), opts Options) {
	mustRegister[In, Out](r, name, KindMutation, opts, unary(fn))
}

// Subscription registers a subscription: fn calls emit once per item and
// returns nil to complete. emit blocks while the caller is slow (stream
// flow control) and returns an error once the call is over; fn should then
// return.
func Subscription[In, Out any](r *Registry, name string, fn func(ctx context.Context, in In, emit func(Out) error) error, opts Options) {
	mustRegister[In, Out](r, name, KindSubscription, opts, func(ctx context.Context, raw json.RawMessage, emit func(any) error) error {
		in, err := decodeInput[In](raw)
		if err != nil {
			return err
		}
		return fn(ctx, in, func(o Out) error { return emit(o) })
	})
}

func unary[In, Out any](fn func(context.Context, In) (Out, error)) handlerFunc {
	return func(ctx context.Context, raw json.RawMessage, emit func(any) error) error {
		in, err := decodeInput[In](raw)
		if err != nil {
			return err
		}
		out, err := fn(ctx, in)
		if err != nil {
			return err
		}
		return emit(out)
	}
}

func decodeInput[In any](raw json.RawMessage) (In, error) {
	var in In
	if err := json.Unmarshal(raw, &in); err != nil {
		return in, NewError(CodeInvalidInput, "input does not match the operation's type").WithDetails(map[string]string{"reason": clip(err.Error())})
	}
	return in, nil
}

func mustRegister[In, Out any](r *Registry, name string, kind Kind, opts Options, fn handlerFunc) {
	in, err := jsonschema.For[In](schemaOptions())
	if err != nil {
		panic(fmt.Sprintf("alknet/call: %s: input schema: %v", name, err))
	}
	out, err := jsonschema.For[Out](schemaOptions())
	if err != nil {
		panic(fmt.Sprintf("alknet/call: %s: output schema: %v", name, err))
	}
	rs, err := in.Resolve(nil)
	if err != nil {
		panic(fmt.Sprintf("alknet/call: %s: input schema: %v", name, err))
	}
	e := newEntry(name, kind, opts, in, out, fn)
	e.validator = rs
	if f, ok := compileFast(in); ok {
		e.fast = f
	}
	e.nullObject = in.Type == "object"
	if err := r.add(e); err != nil {
		panic(err.Error())
	}
}

// schemaOptions maps types whose JSON form the inference cannot see:
// json.RawMessage is any JSON value, a *jsonschema.Schema is an object.
func schemaOptions() *jsonschema.ForOptions {
	return &jsonschema.ForOptions{TypeSchemas: map[reflect.Type]*jsonschema.Schema{
		reflect.TypeFor[json.RawMessage]():   {},
		reflect.TypeFor[jsonschema.Schema](): {Type: "object"},
	}}
}

func newEntry(name string, kind Kind, opts Options, in, out *jsonschema.Schema, fn handlerFunc) *entry {
	vis := opts.Visibility
	if vis == "" {
		vis = External
	}
	e := &entry{
		spec: Spec{
			Name: name, Kind: kind, Visibility: vis, Description: opts.Description,
			Errors: slices.Clone(opts.Errors), Access: accessOf(opts.Access), Input: in, Output: out,
		},
		acl: opts.Access, timeout: opts.Timeout, fn: fn, declared: map[string]bool{},
	}
	for _, c := range opts.Errors {
		e.declared[c] = true
	}
	return e
}

func (r *Registry) add(e *entry) error {
	if !ValidName(e.spec.Name) {
		return fmt.Errorf("%w: %q", ErrInvalidName, e.spec.Name)
	}
	switch e.spec.Kind {
	case KindQuery, KindMutation, KindSubscription:
	default:
		return fmt.Errorf("alknet/call: %s: unknown kind %q", e.spec.Name, e.spec.Kind)
	}
	if e.spec.Visibility != External && e.spec.Visibility != Internal {
		return fmt.Errorf("alknet/call: %s: unknown visibility %q", e.spec.Name, e.spec.Visibility)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.ops[e.spec.Name]; dup {
		return fmt.Errorf("%w: %s", ErrDuplicate, e.spec.Name)
	}
	r.ops[e.spec.Name] = e
	return nil
}

// remove deletes name if owner registered it.
func (r *Registry) remove(name string, owner any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.ops[name]; ok && e.owner != nil && e.owner == owner {
		delete(r.ops, name)
	}
}

func (r *Registry) lookup(name string) (*entry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.ops[name]
	return e, ok
}

// Names returns every registered operation name, internal ones included,
// sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.ops))
	for n := range r.ops {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Spec returns the description of name (internal operations included).
func (r *Registry) Spec(name string) (Spec, bool) {
	e, ok := r.lookup(name)
	if !ok {
		return Spec{}, false
	}
	return e.spec, true
}

// ListInput is the input of services/list.
type ListInput struct{}

// ListOutput is the output of services/list.
type ListOutput struct {
	Operations []Summary `json:"operations"`
}

// SchemaInput is the input of services/schema.
type SchemaInput struct {
	Name string `json:"name"`
}

// list is services/list: external operations the caller passes the ACL of.
func (r *Registry) list(ctx context.Context, _ ListInput) (ListOutput, error) {
	subject := CallerFromContext(ctx).subject()
	r.mu.RLock()
	out := ListOutput{Operations: []Summary{}}
	for _, e := range r.ops {
		if e.spec.Visibility != External || e.allowed(subject) != nil {
			continue
		}
		out.Operations = append(out.Operations, Summary{Name: e.spec.Name, Kind: e.spec.Kind, Description: e.spec.Description, Access: e.spec.Access})
	}
	r.mu.RUnlock()
	sort.Slice(out.Operations, func(i, j int) bool { return out.Operations[i].Name < out.Operations[j].Name })
	return out, nil
}

// schema is services/schema. An operation the caller may not use is
// reported as NOT_FOUND, like one that does not exist.
func (r *Registry) schema(ctx context.Context, in SchemaInput) (Spec, error) {
	name := strings.TrimPrefix(in.Name, "/")
	e, ok := r.lookup(name)
	if !ok || e.spec.Visibility != External || e.allowed(CallerFromContext(ctx).subject()) != nil {
		return Spec{}, NewError(CodeNotFound, "no operation %s", name)
	}
	return e.spec, nil
}

// Call runs the operation name in-process (internal operations included)
// and decodes its output into out (nil discards it). The call inherits
// ctx: its deadline, its cancellation (aborting the parent aborts the
// child) and its caller. When ctx carries a caller (inside a handler), the
// operation's Access is checked against that caller; plain program code
// without a caller is trusted. A subscription fails with
// INVALID_OPERATION_TYPE.
func (r *Registry) Call(ctx context.Context, name string, in, out any) error {
	e, ok := r.lookup(name)
	if !ok {
		return NewError(CodeNotFound, "no operation %s", name)
	}
	if e.spec.Kind == KindSubscription {
		return NewError(CodeInvalidOperationType, "%s is a subscription", name)
	}
	if c := CallerFromContext(ctx); c != nil {
		if err := e.allowed(c.subject()); err != nil {
			return NewError(CodeForbidden, "%s", err.Error())
		}
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return NewError(CodeInvalidInput, "encode input: %v", err)
	}
	var result any
	err = r.invoke(ctx, e, raw, func(v any) error { result = v; return nil })
	if err != nil {
		return r.publicError(ctx, e, err)
	}
	if out == nil {
		return nil
	}
	b, err := json.Marshal(result)
	if err != nil {
		return NewError(CodeInternal, "encode output: %v", err)
	}
	return json.Unmarshal(b, out)
}

// invoke validates raw against the input schema and runs the handler,
// turning a panic into INTERNAL.
func (r *Registry) invoke(ctx context.Context, e *entry, raw json.RawMessage, emit func(any) error) (err error) {
	raw, err = e.check(raw)
	if err != nil {
		return err
	}
	return r.run(ctx, e, raw, emit)
}

// check returns raw with null or missing input made {} for object inputs,
// or INVALID_INPUT when it does not match the input schema.
func (e *entry) check(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if e.nullObject {
			raw = emptyObject
		} else if len(raw) == 0 {
			raw = json.RawMessage("null")
		}
	}
	if e.validator != nil {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, NewError(CodeInvalidInput, "input is not JSON").WithDetails(map[string]string{"reason": clip(err.Error())})
		}
		// The fast check only accepts; on failure the full validator
		// decides and words the error (see fastSchema).
		if e.fast == nil || !e.fast.accepts(v) {
			if err := e.validator.Validate(v); err != nil {
				return nil, NewError(CodeInvalidInput, "input does not match the schema of %s", e.spec.Name).WithDetails(map[string]string{"reason": clip(err.Error())})
			}
		}
	}
	return raw, nil
}

// run runs the handler on checked input, turning a panic into INTERNAL.
func (r *Registry) run(ctx context.Context, e *entry, raw json.RawMessage, emit func(any) error) (err error) {
	if m := r.metricsOf(); m != nil {
		start := time.Now()
		defer func() { m.Operation(e.spec.Name, outcome(ctx, err), time.Since(start)) }()
	}
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("operation panic", "op", e.spec.Name, "err", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = NewError(CodeInternal, "internal error")
		}
	}()
	return e.fn(ctx, raw, emit)
}

// publicError maps a handler error to what may cross the wire: a declared
// or standard *Error as is, a deadline as TIMEOUT, anything else INTERNAL
// (logged, since its text may hold internal detail).
func (r *Registry) publicError(ctx context.Context, e *entry, err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		if standardCodes[ce.Code] || e.declared[ce.Code] {
			return ce
		}
		r.log.Warn("operation returned an undeclared code", "op", e.spec.Name, "code", ce.Code)
		return NewError(CodeInternal, "internal error")
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return NewError(CodeTimeout, "%s timed out", e.spec.Name)
	}
	r.log.Warn("operation failed", "op", e.spec.Name, "err", err)
	return NewError(CodeInternal, "internal error")
}

// clipMax is the most bytes of caller input an error message echoes.
const clipMax = 256

// clip bounds a message that may echo caller input, cutting at a rune
// boundary.
func clip(s string) string {
	if len(s) <= clipMax {
		return s
	}
	cut := clipMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("... (%d bytes)", len(s))
}
