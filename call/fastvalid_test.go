package call

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fastInner struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

// fastAll exercises every schema shape the inference makes for plain types.
type fastAll struct {
	S   string            `json:"s"`
	I   int               `json:"i"`
	U8  uint8             `json:"u8"`
	F   float64           `json:"f"`
	B   bool              `json:"b"`
	L   []string          `json:"l"`
	A   [2]int            `json:"a"`
	M   map[string]int    `json:"m,omitempty"`
	P   *fastInner        `json:"p"`
	Raw json.RawMessage   `json:"raw"`
	Any any               `json:"any"`
	T   time.Time         `json:"t"`
	Opt string            `json:"opt,omitempty"`
	MM  map[string][]bool `json:"mm,omitempty"`
}

func fastSchemas(t testing.TB) []*jsonschema.Schema {
	var out []*jsonschema.Schema
	for _, f := range []func() (*jsonschema.Schema, error){
		func() (*jsonschema.Schema, error) { return jsonschema.For[fastAll](schemaOptions()) },
		func() (*jsonschema.Schema, error) { return jsonschema.For[fastInner](schemaOptions()) },
		func() (*jsonschema.Schema, error) { return jsonschema.For[ListInput](schemaOptions()) },
		func() (*jsonschema.Schema, error) { return jsonschema.For[[]int](schemaOptions()) },
		func() (*jsonschema.Schema, error) { return jsonschema.For[float64](schemaOptions()) },
		func() (*jsonschema.Schema, error) { return jsonschema.For[*string](schemaOptions()) },
		func() (*jsonschema.Schema, error) { return jsonschema.For[json.RawMessage](schemaOptions()) },
	} {
		s, err := f()
		require.NoError(t, err)
		out = append(out, s)
	}
	return out
}

var fastCorpus = []string{
	`{"s":"x","i":1,"u8":255,"f":1.5,"b":true,"l":["a"],"a":[1,2],"p":{"name":"n","n":3},"raw":{},"any":[1],"t":"2020-01-01T00:00:00Z"}`,
	`{"s":"x","i":1,"u8":256,"f":1.5,"b":true,"l":null,"a":[1,2],"p":null,"raw":1,"any":null,"t":"x"}`,
	`{"s":"x","i":1.5,"u8":1,"f":1,"b":true,"l":[],"a":[1],"p":null,"raw":1,"any":null,"t":"x"}`,
	`{"s":"x","i":1,"u8":-1,"f":1,"b":true,"l":[],"a":[1,2,3],"p":null,"raw":1,"any":null,"t":"x","extra":1}`,
	`{"s":"x","i":1,"u8":0,"f":1,"b":true,"l":[],"a":[1,2],"p":{"name":"n"},"raw":1,"any":null,"t":"x","m":{"k":1.5}}`,
	`{"s":"x","i":1,"u8":0,"f":1,"b":true,"l":[],"a":[1,2],"p":{"name":"n","n":1},"raw":1,"any":null,"t":"x","m":{"k":1},"mm":{"a":[true,1]}}`,
	`{"s":"x","i":1,"u8":-1,"f":1,"b":true,"l":[],"a":[1,2],"p":null,"raw":1,"any":null,"t":"x"}`,
	`{"s":"x","i":1,"u8":1,"f":1,"b":true,"l":[],"a":[1,2,3],"p":null,"raw":1,"any":null,"t":"x"}`,
	`{"s":"x","i":1,"u8":1,"f":1,"b":true,"l":[],"a":[1,2],"p":null,"raw":1,"any":null,"t":"x","x":0}`,
	`{"s":"x","i":1,"u8":1,"f":1,"b":true,"l":[],"a":[1,2],"p":null,"raw":1,"any":null,"t":"x","mm":{"a":[true,1]}}`,
	`{"name":"alknet","n":7}`, `{"name":"alknet","n":7.0}`, `{"name":"alknet","n":"7"}`, `{"name":"alknet"}`,
	`{"name":"alknet","n":7,"N":8}`, `{}`, `null`, `[]`, `[1,2.5]`, `[1,2]`, `1e400`, `"s"`, `1`, `true`,
}

// checkFastSound fails when the fast check accepts a value jsonschema-go
// rejects: the property that makes it safe as an accept filter.
func checkFastSound(t *testing.T, s *jsonschema.Schema, rs *jsonschema.Resolved, f *fastSchema, raw string) bool {
	var v any
	if json.Unmarshal([]byte(raw), &v) != nil {
		return false
	}
	accepted := f.accepts(v)
	err := rs.Validate(v)
	if accepted && err != nil {
		t.Fatalf("fast check accepted %s, jsonschema-go refuses it: %v", raw, err)
	}
	return accepted
}

func TestFastSchemaSound(t *testing.T) {
	accepted := 0
	for _, s := range fastSchemas(t) {
		rs, err := s.Resolve(nil)
		require.NoError(t, err)
		f, ok := compileFast(s)
		require.True(t, ok, "schema %v should compile", s)
		for _, raw := range fastCorpus {
			if checkFastSound(t, s, rs, f, raw) {
				accepted++
			}
		}
	}
	assert.Greater(t, accepted, 10, "the fast path must accept the common valid inputs")
}

func TestFastSchemaAcceptsValid(t *testing.T) {
	s := fastSchemas(t)[1] // fastInner
	f, ok := compileFast(s)
	require.True(t, ok)
	for raw, want := range map[string]bool{
		`{"name":"a","n":1}`: true, `{"name":"a","n":1.0}`: true, `{"name":"a"}`: false,
		`{"name":"a","n":1,"x":0}`: false, `{"name":1,"n":1}`: false, `null`: false,
	} {
		var v any
		require.NoError(t, json.Unmarshal([]byte(raw), &v))
		assert.Equal(t, want, f.accepts(v), raw)
	}
}

func TestFastSchemaRefusesUnknownKeywords(t *testing.T) {
	for _, s := range []*jsonschema.Schema{
		{Type: "string", Pattern: "^a"},
		{Type: "object", Properties: map[string]*jsonschema.Schema{"a": {Enum: []any{"x"}}}},
		{Ref: "#/$defs/x", Defs: map[string]*jsonschema.Schema{"x": {}}},
		{Type: "array", PrefixItems: []*jsonschema.Schema{{}}},
		{Type: "object", PatternProperties: map[string]*jsonschema.Schema{"^a": {}}},
		{AnyOf: []*jsonschema.Schema{{Type: "string"}}},
	} {
		_, ok := compileFast(s)
		assert.False(t, ok, "%+v", s)
	}
}

// FuzzFastSchema checks, for arbitrary JSON input, that the fast check
// never accepts what jsonschema-go refuses, for every inferred schema.
func FuzzFastSchema(f *testing.F) {
	for _, raw := range fastCorpus {
		f.Add([]byte(raw))
	}
	var (
		schemas  = fastSchemas(f)
		resolved []*jsonschema.Resolved
		fast     []*fastSchema
	)
	for _, s := range schemas {
		rs, err := s.Resolve(nil)
		require.NoError(f, err)
		fs, ok := compileFast(s)
		require.True(f, ok)
		resolved, fast = append(resolved, rs), append(fast, fs)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for i, s := range schemas {
			checkFastSound(t, s, resolved[i], fast[i], string(raw))
		}
	})
}
