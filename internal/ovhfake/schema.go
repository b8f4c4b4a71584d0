package ovhfake

import (
	"embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// The descriptions OVHcloud publishes of the API parts the product calls, trimmed by
// trimschema (schema/SOURCE.md says from where and when). The fake checks every call it serves
// against them: a path or method they lack, a request field they do not name, a response field
// or enum value they do not have is a test failure, so the fake follows the provider, not the
// code.
//
//go:embed schema/*.json
var schemaFiles embed.FS

// Schema is OVHcloud's description of the API: its operations and models.
type Schema struct {
	ops    []Operation
	models map[string]Model
}

// Operation is one method on one path, as the description gives it.
type Operation struct {
	Path, Method, Response string
	NoAuthentication       bool
	Status                 string // PRODUCTION, BETA, DEPRECATED, …
	Params                 []Param
}

// Param is one of an operation's parameters: in the path, the query or the body (a body
// parameter has no name and the body's model as its type).
type Param struct {
	Name, Type, In string
	Required       bool
}

// Model is a named type: an object with properties, or an enum.
type Model struct {
	Properties map[string]Property
	Enum       []string
}

// Property is one field of a model.
type Property struct {
	Type      string
	CanBeNull bool
}

// LoadSchema returns the vendored descriptions, read once.
var LoadSchema = sync.OnceValues(loadSchema)

func loadSchema() (*Schema, error) {
	s := &Schema{models: map[string]Model{}}
	files, err := schemaFiles.ReadDir("schema")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		raw, err := schemaFiles.ReadFile("schema/" + f.Name())
		if err != nil {
			return nil, err
		}
		var d struct {
			APIs []struct {
				Path       string `json:"path"`
				Operations []struct {
					HTTPMethod       string `json:"httpMethod"`
					ResponseType     string `json:"responseType"`
					NoAuthentication bool   `json:"noAuthentication"`
					APIStatus        struct {
						Value string `json:"value"`
					} `json:"apiStatus"`
					Parameters []struct {
						Name      string `json:"name"`
						DataType  string `json:"dataType"`
						ParamType string `json:"paramType"`
						Required  bool   `json:"required"`
					} `json:"parameters"`
				} `json:"operations"`
			} `json:"apis"`
			Models map[string]struct {
				Properties map[string]struct {
					Type      string `json:"type"`
					CanBeNull bool   `json:"canBeNull"`
				} `json:"properties"`
				Enum []any `json:"enum"` // strings, or numbers for a long's enum
			} `json:"models"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("schema/%s: %w", f.Name(), err)
		}
		for _, api := range d.APIs {
			for _, o := range api.Operations {
				op := Operation{Path: api.Path, Method: o.HTTPMethod, Response: o.ResponseType,
					NoAuthentication: o.NoAuthentication, Status: o.APIStatus.Value}
				for _, p := range o.Parameters {
					op.Params = append(op.Params, Param{Name: p.Name, Type: p.DataType, In: p.ParamType, Required: p.Required})
				}
				s.ops = append(s.ops, op)
			}
		}
		for name, m := range d.Models {
			model := Model{Properties: map[string]Property{}}
			for _, e := range m.Enum {
				model.Enum = append(model.Enum, fmt.Sprint(e))
			}
			for p, prop := range m.Properties {
				model.Properties[p] = Property{Type: prop.Type, CanBeNull: prop.CanBeNull}
			}
			s.models[name] = model
		}
	}
	return s, nil
}

// Operation finds the operation that serves method on a concrete path (/vps/vps-1.ovh.net/ips):
// a template's {name} matches any one segment, and the template with the most fixed segments
// wins (/order/cart/{cartId}/vps over /order/cart/{cartId}/{x}).
func (s *Schema) Operation(method, path string) (Operation, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	best, fixed := Operation{}, -1
	for _, op := range s.ops {
		if op.Method != method {
			continue
		}
		tmpl := strings.Split(strings.Trim(op.Path, "/"), "/")
		if len(tmpl) != len(parts) {
			continue
		}
		n := 0
		for i, t := range tmpl {
			if strings.HasPrefix(t, "{") {
				continue
			}
			if t != parts[i] {
				n = -1
				break
			}
			n++
		}
		if n > fixed {
			best, fixed = op, n
		}
	}
	return best, fixed >= 0
}

// Model returns a model by name.
func (s *Schema) Model(name string) (Model, bool) {
	m, ok := s.models[name]
	return m, ok
}

// CheckRequest returns what in a call the description does not allow: an operation it lacks,
// a query parameter or body field it does not name.
func (s *Schema) CheckRequest(method, path string, query []string, body []byte) []string {
	op, ok := s.Operation(method, path)
	if !ok {
		return []string{fmt.Sprintf("%s %s: no such operation in OVHcloud's description", method, path)}
	}
	var problems []string
	for _, q := range query {
		if !slices.ContainsFunc(op.Params, func(p Param) bool { return p.In == "query" && p.Name == q }) {
			problems = append(problems, fmt.Sprintf("%s %s: query parameter %q is not one of the operation's", method, op.Path, q))
		}
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return problems
	}
	var in any
	if err := json.Unmarshal(body, &in); err != nil {
		return append(problems, fmt.Sprintf("%s %s: the body is not JSON: %v", method, op.Path, err))
	}
	i := slices.IndexFunc(op.Params, func(p Param) bool { return p.In == "body" })
	if i < 0 {
		return append(problems, fmt.Sprintf("%s %s: a body, where the operation takes none", method, op.Path))
	}
	if op.Params[i].Name == "" {
		return append(problems, s.CheckValue(method+" "+op.Path+" body", op.Params[i].Type, in)...)
	}
	// A body of named fields: each a parameter of the operation.
	fields, _ := in.(map[string]any)
	for k, v := range fields {
		j := slices.IndexFunc(op.Params, func(p Param) bool { return p.In == "body" && p.Name == k })
		if j < 0 {
			problems = append(problems, fmt.Sprintf("%s %s: body field %q is not one of the operation's", method, op.Path, k))
			continue
		}
		problems = append(problems, s.CheckValue(method+" "+op.Path+" body."+k, op.Params[j].Type, v)...)
	}
	return problems
}

// CheckResponse returns what in an answer to a call the description does not allow.
func (s *Schema) CheckResponse(method, path string, out any) []string {
	op, ok := s.Operation(method, path)
	if !ok {
		return nil // CheckRequest said so
	}
	return s.CheckValue(method+" "+op.Path, op.Response, out)
}

// CheckValue returns how v, decoded from JSON, is not of type typ; at names where v is.
func (s *Schema) CheckValue(at, typ string, v any) []string {
	if v == nil {
		return nil // nullness is not checked: the description marks it loosely
	}
	if elem, ok := strings.CutSuffix(typ, "[]"); ok {
		list, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T where the description has %s", at, v, typ)}
		}
		var problems []string
		for i, e := range list {
			problems = append(problems, s.CheckValue(fmt.Sprintf("%s[%d]", at, i), elem, e)...)
		}
		return problems
	}
	if strings.HasPrefix(typ, "map[") {
		if _, ok := v.(map[string]any); !ok {
			return []string{fmt.Sprintf("%s: %T where the description has %s", at, v, typ)}
		}
		return nil
	}
	want := ""
	switch typ {
	case "void":
		return []string{fmt.Sprintf("%s: %v where the description has no answer (void)", at, v)}
	case "long", "int", "double", "float":
		want = "number"
	case "boolean":
		want = "boolean"
	case "string", "text", "password", "ip", "ipv4", "ipv6", "ipBlock", "datetime", "date", "time", "duration", "uuid":
		want = "string"
	}
	if want != "" {
		if got := kind(v); got != want {
			return []string{fmt.Sprintf("%s: a %s where the description has %s", at, got, typ)}
		}
		return nil
	}
	m, ok := s.models[typ]
	switch {
	case !ok:
		return []string{fmt.Sprintf("%s: type %s is not in the vendored description (run trimschema)", at, typ)}
	case m.Enum != nil:
		if !slices.Contains(m.Enum, fmt.Sprint(v)) {
			return []string{fmt.Sprintf("%s: %v is not one of %s's values %v", at, v, typ, m.Enum)}
		}
		return nil
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return []string{fmt.Sprintf("%s: a %s where the description has the object %s", at, kind(v), typ)}
	}
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		p, ok := m.Properties[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: field %q is not in %s", at, k, typ))
			continue
		}
		problems = append(problems, s.CheckValue(at+"."+k, p.Type, obj[k])...)
	}
	return problems
}

func kind(v any) string {
	switch v.(type) {
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
