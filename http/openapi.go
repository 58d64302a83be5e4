package alkhttp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/alkdev/alknet/call"
	"github.com/google/jsonschema-go/jsonschema"
)

// openAPI serves GET /openapi.json: an OpenAPI 3.1 document of the
// gateway, listing only the operations the caller may use.
func (g *Gateway) openAPI(w http.ResponseWriter, r *http.Request) {
	c, ok := g.subject(w, r, Caller(r))
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, OpenAPI(g.cfg.Registry.Allowed(c)))
}

// OpenAPI returns the OpenAPI 3.1 document of a gateway serving specs:
// for each query and mutation POST /v1/call/<name>, for each query and
// subscription GET /v1/subscribe/<name> (Server-Sent Events), and the
// fixed endpoints. Request and response schemas are the operations' own
// JSON Schemas (draft 2020-12, the dialect of OpenAPI 3.1).
func OpenAPI(specs []call.Spec) map[string]any {
	errResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{
			"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}},
		}}
	}
	errs := map[string]any{
		"400": errResp("Bad request, or an error code the operation declares"),
		"401": errResp("No credential, or an invalid one (FORBIDDEN)"),
		"403": errResp("The caller may not use the operation (FORBIDDEN)"),
		"404": errResp("No such operation for this caller (NOT_FOUND)"),
		"422": errResp("The input does not match the schema (INVALID_INPUT)"),
		"500": errResp("The operation failed (INTERNAL)"),
		"503": errResp("Too busy, or shutting down (UNAVAILABLE)"),
		"504": errResp("The operation timed out (TIMEOUT)"),
	}
	withErrors := func(ok map[string]any) map[string]any {
		out := map[string]any{"200": ok}
		for k, v := range errs {
			out[k] = v
		}
		return out
	}
	jsonContent := func(s any) map[string]any {
		return map[string]any{"application/json": map[string]any{"schema": s}}
	}
	paths := map[string]any{
		"/v1/services": map[string]any{"get": map[string]any{
			"operationId": "gateway.services", "summary": "Operations the caller may use.", "tags": []string{"gateway"},
			"responses": withErrors(map[string]any{"description": "services/list output", "content": jsonContent(map[string]any{"type": "object"})}),
		}},
		"/v1/services/{op}": map[string]any{"get": map[string]any{
			"operationId": "gateway.schema", "summary": "One operation's description and schemas.", "tags": []string{"gateway"},
			"parameters": []any{map[string]any{"name": "op", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}},
			"responses":  withErrors(map[string]any{"description": "services/schema output", "content": jsonContent(map[string]any{"type": "object"})}),
		}},
		"/v1/batch": map[string]any{"post": map[string]any{
			"operationId": "gateway.batch", "summary": "Run several queries and mutations; answers in order.", "tags": []string{"gateway"},
			"requestBody": map[string]any{"required": true, "content": jsonContent(map[string]any{
				"type": "array", "items": map[string]any{"type": "object", "required": []string{"id", "operationId"}, "properties": map[string]any{
					"id": map[string]any{"type": "string"}, "operationId": map[string]any{"type": "string"}, "input": map[string]any{},
				}},
			})},
			"responses": withErrors(map[string]any{"description": "one result per call", "content": jsonContent(map[string]any{
				"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
					"id": map[string]any{"type": "string"}, "output": map[string]any{}, "error": map[string]any{"$ref": "#/components/schemas/Error"},
				}},
			})}),
		}},
	}
	for _, s := range specs {
		input, output := schemaOrAny(s.Input), schemaOrAny(s.Output)
		tag := s.Name
		if i := strings.IndexByte(tag, '/'); i > 0 {
			tag = tag[:i]
		}
		if s.Kind != call.KindSubscription {
			paths["/v1/call/"+s.Name] = map[string]any{"post": map[string]any{
				"operationId": s.Name, "summary": s.Description, "tags": []string{tag},
				"x-alknet-kind": string(s.Kind),
				"requestBody":   map[string]any{"required": false, "content": jsonContent(input)},
				"responses":     withErrors(map[string]any{"description": "the output", "content": jsonContent(output)}),
			}}
		}
		if s.Kind != call.KindMutation {
			paths["/v1/subscribe/"+s.Name] = map[string]any{"get": map[string]any{
				"operationId": s.Name + "#events", "summary": s.Description, "tags": []string{tag},
				"x-alknet-kind": string(s.Kind),
				"parameters": []any{map[string]any{"name": "input", "in": "query", "required": false,
					"content": jsonContent(input)}},
				"responses": withErrors(map[string]any{
					"description": "Server-Sent Events: one data line per output (its JSON), then event call.completed or call.error",
					"content": map[string]any{"text/event-stream": map[string]any{
						"schema": map[string]any{"type": "string"}, "x-alknet-item-schema": output,
					}},
				}),
			}}
		}
	}
	return map[string]any{
		"openapi":           "3.1.0",
		"info":              map[string]any{"title": "alknet call gateway", "version": "1"},
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"servers":           []any{map[string]any{"url": "/"}},
		"security":          []any{map[string]any{"bearer": []string{}}, map[string]any{}},
		"paths":             paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "a peer token (alk_...); a pinned TLS client certificate works too"},
			},
			"schemas": map[string]any{"Error": map[string]any{
				"type": "object", "required": []string{"code", "message"},
				"properties": map[string]any{
					"code":      map[string]any{"type": "string"},
					"message":   map[string]any{"type": "string"},
					"retryable": map[string]any{"type": "boolean"},
					"details":   map[string]any{},
				},
			}},
		},
	}
}

// schemaOrAny returns s as a JSON value for embedding (any value when nil).
// A schema that refers to its own definitions ($ref "#/$defs/...") gets an
// $id, so that its references resolve inside it and not against the
// OpenAPI document.
func schemaOrAny(s *jsonschema.Schema) any {
	if s == nil {
		return map[string]any{}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return map[string]any{}
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return map[string]any{}
	}
	if _, ok := m["$defs"]; ok {
		if _, has := m["$id"]; !has {
			sum := sha256.Sum256(b)
			m["$id"] = "urn:alknet:schema:" + hex.EncodeToString(sum[:16])
		}
	}
	return m
}
