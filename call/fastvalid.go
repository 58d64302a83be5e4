package call

import (
	"encoding/json"
	"math"
	"slices"

	"github.com/google/jsonschema-go/jsonschema"
)

// fastSchema is a compiled form of the input schemas jsonschema.For infers
// for plain Go types, used to accept valid inputs without the generic
// validator (which reflects over every value and recurses deeply).
//
// It is only ever an accept filter: registry.invoke runs the full
// jsonschema-go validator whenever the fast check fails, and takes that
// validator's verdict and error message. So it is sound as long as every
// instance it accepts is also accepted by jsonschema-go, which holds
// because it understands exactly these keywords, with the semantics of the
// JSON Schema 2020-12 validation vocabulary as jsonschema-go implements
// them for a value decoded by encoding/json into any:
//
//   - type (one or several): "integer" is a float64 without fractional
//     part (jsonschema-go's math.Modf test), and "number" also admits
//     integers;
//   - properties, required, additionalProperties (a schema; false is
//     {"not":{}}), with no patternProperties: keys outside properties are
//     checked against additionalProperties;
//   - items, with no prefixItems: every element is checked;
//   - minimum, maximum (a float64 compares exactly), minItems, maxItems;
//   - true ({}) and false ({"not":{}}) schemas.
//
// A schema using any other keyword (found by looking at its JSON form, so
// keywords added to jsonschema-go later are caught too) does not compile,
// and its inputs always go through the full validator.
type fastSchema struct {
	never      bool     // the false schema
	types      []string // empty: any type
	props      map[string]*fastSchema
	required   []string
	additional *fastSchema // nil: any additional property
	items      *fastSchema // nil: any element
	min, max   *float64
	minItems   *int
	maxItems   *int
}

// fastKeywords are the schema keywords compileFast understands.
var fastKeywords = map[string]bool{
	"type": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "minimum": true, "maximum": true, "minItems": true, "maxItems": true,
	// annotations without effect on validation
	"description": true, "title": true,
}

// compileFast compiles s; ok is false when s uses anything else than the
// keywords above.
func compileFast(s *jsonschema.Schema) (*fastSchema, bool) {
	if s == nil {
		return &fastSchema{}, true
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, false
	}
	switch string(b) {
	case "true", "{}":
		return &fastSchema{}, true
	case "false", `{"not":{}}`:
		return &fastSchema{never: true}, true
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, false
	}
	for k := range keys {
		if !fastKeywords[k] {
			return nil, false
		}
	}
	f := &fastSchema{required: slices.Clone(s.Required), min: s.Minimum, max: s.Maximum, minItems: s.MinItems, maxItems: s.MaxItems}
	if s.Type != "" {
		f.types = []string{s.Type}
	} else {
		f.types = slices.Clone(s.Types)
	}
	for _, t := range f.types {
		switch t {
		case "null", "boolean", "object", "array", "number", "integer", "string":
		default:
			return nil, false
		}
	}
	if len(s.Properties) > 0 {
		f.props = make(map[string]*fastSchema, len(s.Properties))
		for name, ps := range s.Properties {
			c, ok := compileFast(ps)
			if !ok {
				return nil, false
			}
			f.props[name] = c
		}
	}
	if s.AdditionalProperties != nil {
		c, ok := compileFast(s.AdditionalProperties)
		if !ok {
			return nil, false
		}
		f.additional = c
	}
	if s.Items != nil {
		c, ok := compileFast(s.Items)
		if !ok {
			return nil, false
		}
		f.items = c
	}
	return f, true
}

// accepts reports whether v (a value decoded by encoding/json into any)
// is valid; false means "not proven valid", not "invalid".
func (f *fastSchema) accepts(v any) bool {
	if f.never {
		return false
	}
	if len(f.types) > 0 && !f.typeOK(v) {
		return false
	}
	switch x := v.(type) {
	case float64:
		if f.min != nil && x < *f.min || f.max != nil && x > *f.max {
			return false
		}
	case []any:
		if f.minItems != nil && len(x) < *f.minItems || f.maxItems != nil && len(x) > *f.maxItems {
			return false
		}
		if f.items != nil {
			for _, e := range x {
				if !f.items.accepts(e) {
					return false
				}
			}
		}
	case map[string]any:
		for _, r := range f.required {
			if _, ok := x[r]; !ok {
				return false
			}
		}
		for k, e := range x {
			if ps, ok := f.props[k]; ok {
				if !ps.accepts(e) {
					return false
				}
			} else if f.additional != nil && !f.additional.accepts(e) {
				return false
			}
		}
	}
	return true
}

func (f *fastSchema) typeOK(v any) bool {
	var got string
	switch x := v.(type) {
	case nil:
		got = "null"
	case bool:
		got = "boolean"
	case string:
		got = "string"
	case float64:
		if _, frac := math.Modf(x); frac == 0 {
			got = "integer"
		} else {
			got = "number"
		}
	case []any:
		got = "array"
	case map[string]any:
		got = "object"
	default:
		return false
	}
	for _, t := range f.types {
		if t == got || got == "integer" && t == "number" {
			return true
		}
	}
	return false
}
